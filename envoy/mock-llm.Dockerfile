# syntax=docker/dockerfile:1
#
# Mock LLM server (OpenAI, Anthropic, Gemini, Bedrock shapes + vLLM-style /metrics) for the
# compose setup and demos. Build from the repository root:
#
#   docker build -f envoy/mock-llm.Dockerfile -t aigw/mock-llm .
#   docker run --rm -p 8000:8000 aigw/mock-llm
#
# Extra flags replace the default command, so repeat --listen when adding some, e.g.
#   command: ["--listen", "0.0.0.0:8000", "--ttft-ms", "200", "--tokens-per-sec", "40"]

# ---- build -------------------------------------------------------------------------------
# wasmtime 48 (a host-sim dependency) needs Rust 1.95 or newer.
FROM rust:1.95-bookworm AS build
WORKDIR /src

# Every workspace member's manifest must be present for cargo to load the workspace, so copy
# the member trees (not target/ or dist/).
COPY Cargo.toml Cargo.lock ./
COPY sdk ./sdk
COPY plugins ./plugins
COPY host-sim ./host-sim
COPY tests ./tests

RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p host-sim --bin host-sim \
    && install -m 0755 target/release/host-sim /usr/local/bin/host-sim

# ---- runtime -----------------------------------------------------------------------------
FROM debian:bookworm-slim AS runtime

# tini as PID 1 so `docker stop` (SIGTERM) ends the server at once.
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home mock

COPY --from=build /usr/local/bin/host-sim /usr/local/bin/host-sim

USER 10001
EXPOSE 8000

# GET /health answers 200; checked with bash's /dev/tcp (no curl in the slim image).
HEALTHCHECK --interval=5s --timeout=2s --start-period=2s --retries=5 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8000 && printf 'GET /health HTTP/1.0\\r\\n\\r\\n' >&3 && head -n1 <&3 | grep -q ' 200 '"]

ENTRYPOINT ["/usr/bin/tini", "--", "host-sim", "mock-llm"]
CMD ["--listen", "0.0.0.0:8000"]
