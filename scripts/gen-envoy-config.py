#!/usr/bin/env python3
"""Writes the per-plugin Envoy ECDS files (envoy/ecds/<plugin>.yaml) and Higress WasmPlugin
resources (envoy/higress/<plugin>.yaml) from plugins/<plugin>/example.json, so the configuration we
ship is the configuration the tests check. Run it after changing an example config; the
envoy_config test fails when the files are stale.

Usage: scripts/gen-envoy-config.py [--check]
"""
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# plugin -> (Higress phase, priority, ECDS resource names)
PLUGINS = {
    "ai-statistics": ("STATS", 900, ["ai-statistics"]),
    "ai-auth": ("AUTHN", 800, ["ai-auth"]),
    "ai-guard": ("AUTHN", 700, ["ai-guard"]),
    "ai-cache": ("AUTHZ", 600, ["ai-cache"]),
    "ai-token-ratelimit": ("AUTHZ", 500, ["ai-token-ratelimit"]),
    "ai-load-balancer": ("UNSPECIFIED_PHASE", 200, []),
    "ai-proxy": ("UNSPECIFIED_PHASE", 100, ["ai-proxy", "ai-proxy-upstream"]),
}
# Envoy filters configured from another example than their plugin's: the Envoy stack runs
# several replicas, so ai-token-ratelimit keeps its counters in the rate limit service there
# (mode rls; envoy/ratelimit/config.yaml is the service's side of the same limits).
ENVOY_EXAMPLES = {"ai-token-ratelimit": "ai-token-ratelimit-rls"}


def indent(text, n):
    pad = " " * n
    return "\n".join(pad + line if line else line for line in text.splitlines())


def ecds(name, module, config):
    return f"""# ECDS resource for the {name} filter, served from a file: edit it and Envoy swaps the
# configuration in without a restart. Generated from plugins/{module}/example*.json by
# scripts/gen-envoy-config.py.
resources:
- "@type": type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig
  name: {name}
  typed_config:
    "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
    config:
      name: {name}
      root_id: {name}
      failure_policy: FAIL_CLOSED
      vm_config:
        vm_id: aigw
        runtime: envoy.wasm.runtime.v8
        code:
          local:
            filename: /etc/envoy/wasm/{module}.wasm
      configuration:
        "@type": type.googleapis.com/google.protobuf.StringValue
        value: |
{indent(json.dumps(config, indent=2, ensure_ascii=False), 10)}
"""


def higress(module, phase, priority, config):
    body = json.dumps(config, indent=2, ensure_ascii=False)
    return f"""# Higress WasmPlugin for {module}. Generated from plugins/{module}/example.json by
# scripts/gen-envoy-config.py. Push the module to a registry first (see envoy/README.md).
apiVersion: extensions.higress.io/v1alpha1
kind: WasmPlugin
metadata:
  name: {module}
  namespace: higress-system
spec:
  url: oci://registry.example.com/aigw/{module}:0.1.0
  phase: {phase}
  priority: {priority}
  failStrategy: FAIL_CLOSE
  defaultConfig:
{indent(body, 4)}
  matchRules:
  - ingress:
    - default/llm-internal
    config:
{indent(body, 6)}
"""


def example_path(name):
    """plugins/<plugin>/example.json, or plugins/<plugin>/example-<variant>.json for the
    variants <plugin>-upstream and <plugin>-rls."""
    for variant in ("upstream", "rls"):
        if name.endswith("-" + variant):
            plugin = name[: -len(variant) - 1]
            return os.path.join(ROOT, "plugins", plugin, f"example-{variant}.json")
    return os.path.join(ROOT, "plugins", name, "example.json")


def main():
    check = "--check" in sys.argv
    stale = []
    for module, (phase, prio, names) in PLUGINS.items():
        src = example_path(module)
        if not os.path.exists(src):
            continue
        with open(src) as f:
            config = json.load(f)
        outputs = {}
        for name in names:
            # A filter with its own example (e.g. ai-proxy-upstream) uses it.
            own = example_path(name)
            cfg = config
            if name in ENVOY_EXAMPLES:
                own = example_path(ENVOY_EXAMPLES[name])
            if (name != module or name in ENVOY_EXAMPLES) and os.path.exists(own):
                with open(own) as f:
                    cfg = json.load(f)
            outputs[os.path.join(ROOT, "envoy", "ecds", f"{name}.yaml")] = ecds(name, module, cfg)
        outputs[os.path.join(ROOT, "envoy", "higress", f"{module}.yaml")] = higress(module, phase, prio, config)
        for path, text in outputs.items():
            old = open(path).read() if os.path.exists(path) else None
            if old != text:
                stale.append(os.path.relpath(path, ROOT))
                if not check:
                    with open(path, "w") as f:
                        f.write(text)
    if check and stale:
        print("stale (run scripts/gen-envoy-config.py): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
