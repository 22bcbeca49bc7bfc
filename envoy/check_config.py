#!/usr/bin/env python3
"""Validates Envoy YAML files against Envoy's API (the xds-protos package).

Every Bootstrap (envoy.yaml) and ECDS file (a DiscoveryResponse of TypedExtensionConfig) is
parsed with google.protobuf.json_format.ParseDict, which rejects unknown or misspelled fields at
any depth, including inside typed_config. Prints one JSON line per wasm filter found:
{"file", "name", "module", "config"} so the caller can check each config with the plugin itself.
Exit status 1 on the first invalid file, with the reason.
"""
import json
import sys

import yaml
from google.protobuf import json_format

# Resolve every Any type the shipped files use.
import envoy.config.bootstrap.v3.bootstrap_pb2 as bootstrap_pb2  # noqa: F401
import envoy.config.core.v3.extension_pb2  # noqa: F401
import envoy.extensions.access_loggers.stream.v3.stream_pb2  # noqa: F401
import envoy.extensions.access_loggers.file.v3.file_pb2  # noqa: F401
import envoy.extensions.clusters.dynamic_forward_proxy.v3.cluster_pb2  # noqa: F401
import envoy.extensions.filters.http.router.v3.router_pb2  # noqa: F401
import envoy.extensions.filters.http.upstream_codec.v3.upstream_codec_pb2  # noqa: F401
import envoy.extensions.filters.http.wasm.v3.wasm_pb2 as wasm_pb2  # noqa: F401
import envoy.extensions.filters.network.http_connection_manager.v3.http_connection_manager_pb2  # noqa: F401
import envoy.extensions.retry.priority.previous_priorities.v3.previous_priorities_config_pb2  # noqa: F401
import envoy.extensions.upstreams.http.v3.http_protocol_options_pb2  # noqa: F401
import envoy.extensions.wasm.v3.wasm_pb2  # noqa: F401
import envoy.service.discovery.v3.discovery_pb2 as discovery_pb2
import google.protobuf.wrappers_pb2  # noqa: F401

WASM = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"


def wasm_filters(node, out):
    """Collects every embedded wasm filter config (any depth)."""
    if isinstance(node, dict):
        tc = node.get("typed_config")
        if isinstance(tc, dict) and tc.get("@type") == WASM:
            cfg = tc.get("config", {})
            code = cfg.get("vm_config", {}).get("code", {}).get("local", {})
            value = cfg.get("configuration", {}).get("value", "")
            out.append({"name": cfg.get("name", node.get("name", "")),
                        "module": code.get("filename", ""), "config": value})
        for v in node.values():
            wasm_filters(v, out)
    elif isinstance(node, list):
        for v in node:
            wasm_filters(v, out)


PHASES = {"AUTHN", "AUTHZ", "STATS", "UNSPECIFIED_PHASE"}


def wasm_plugin(path, doc):
    """Checks a Higress WasmPlugin resource and returns its plugin config as Higress would
    deliver it: defaultConfig plus `_rules_` built from matchRules."""
    if doc.get("apiVersion") != "extensions.higress.io/v1alpha1":
        raise ValueError("apiVersion: expected extensions.higress.io/v1alpha1")
    spec = doc.get("spec") or {}
    allowed = {"url", "phase", "priority", "defaultConfig", "defaultConfigDisable", "matchRules",
               "failStrategy", "imagePullPolicy", "imagePullSecret", "sha256", "pluginName"}
    for k in spec:
        if k not in allowed:
            raise ValueError(f"spec.{k}: unknown field")
    if spec.get("phase", "UNSPECIFIED_PHASE") not in PHASES:
        raise ValueError(f"spec.phase: expected one of {sorted(PHASES)}")
    if not isinstance(spec.get("priority", 0), int):
        raise ValueError("spec.priority: expected an integer")
    if spec.get("failStrategy", "FAIL_OPEN") not in ("FAIL_OPEN", "FAIL_CLOSE"):
        raise ValueError("spec.failStrategy: expected FAIL_OPEN or FAIL_CLOSE")
    url = spec.get("url", "")
    module = url.rsplit("/", 1)[-1].split(":", 1)[0]
    if not module.endswith(".wasm"):
        module += ".wasm"
    config = dict(spec.get("defaultConfig") or {})
    rules = []
    for i, r in enumerate(spec.get("matchRules") or []):
        rule = dict(r.get("config") or {})
        keys = {"ingress": "_match_route_", "domain": "_match_domain_", "service": "_match_service_"}
        matched = False
        for k, v in keys.items():
            if k in r:
                rule[v] = r[k]
                matched = True
        if not matched:
            raise ValueError(f"spec.matchRules[{i}]: needs ingress, domain or service")
        rules.append(rule)
    if rules:
        config["_rules_"] = rules
    return {"name": doc.get("metadata", {}).get("name", ""), "module": module,
            "config": json.dumps(config)}


def main(paths):
    for path in paths:
        with open(path) as f:
            doc = yaml.safe_load(f)
        if doc.get("kind") == "WasmPlugin":
            try:
                w = wasm_plugin(path, doc)
            except ValueError as e:
                print(f"{path}: {e}", file=sys.stderr)
                return 1
            w["file"] = path
            print(json.dumps(w))
            continue
        if "static_resources" in doc or "admin" in doc:
            msg = bootstrap_pb2.Bootstrap()
        elif "resources" in doc:
            msg = discovery_pb2.DiscoveryResponse()
        else:
            print(f"{path}: not an Envoy bootstrap or ECDS file", file=sys.stderr)
            return 1
        try:
            json_format.ParseDict(doc, msg)
        except json_format.ParseError as e:
            print(f"{path}: {e}", file=sys.stderr)
            return 1
        found = []
        wasm_filters(doc, found)
        for w in found:
            w["file"] = path
            print(json.dumps(w))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
