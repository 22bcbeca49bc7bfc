# Two commands do everything on a fresh machine: `make run` and `make test`.
# Both install what is missing first (`make setup`).

CARGO ?= cargo

.PHONY: setup build schema package test run bench fuzz lint clean

setup:
	@scripts/setup.sh

build: setup
	@scripts/build-wasm.sh

# dist/<plugin>.schema.json: each plugin's configuration schema, from its Rust config types.
schema:
	@scripts/config-schemas.sh

# A Higress plugin image per plugin (OCI image layout) in dist/oci/<plugin>/ (and
# dist/oci/<plugin>-higress/ for the higress builds); see README "Packaging".
package: build schema
	$(CARGO) run --quiet -p aigw-package -- --root . --dist dist --out dist/oci

test: build
	$(CARGO) test --workspace --quiet
	@scripts/test-compose.sh
	@scripts/test-wasm.sh

run: build
	@scripts/demo.sh

bench: build
	$(CARGO) bench --quiet -p aigw-sdk --bench parse
	$(CARGO) run --quiet --release -p aigw-tests --bin bench
	$(CARGO) run --quiet --release -p aigw-tests --bin lb_sim

# Every fuzz target of tests/fuzz for FUZZ_SECONDS (default 600) each; see README "Fuzzing".
fuzz:
	@FUZZ_SECONDS=$(or $(FUZZ_SECONDS),600) scripts/fuzz.sh $(FUZZ_TARGETS)

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

clean:
	$(CARGO) clean
	rm -rf dist
