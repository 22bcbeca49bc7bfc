#!/usr/bin/env bash
# `make run`: the whole pack on real HTTP, on this machine.
#
# 1. Every built module goes through `host-sim run` once on a sample request (quick check).
# 2. Two mock LLMs (`host-sim mock-llm`) start on 127.0.0.1:18000 and :18001, and the local
#    gateway (`host-sim serve envoy/gateway.json`) on 127.0.0.1:18080 with every plugin of the
#    pack (ai-statistics, ai-auth, ai-guard, ai-cache, ai-token-ratelimit, ai-proxy; and
#    ai-load-balancer on host balanced.local): the same modules and configurations as the
#    Envoy setup.
# 3. A short demo calls it with curl and shows each capability.
# 4. The gateway keeps running until Ctrl-C (DEMO_ONLY=1: stop after the demo).
#
# With OPENAI_API_KEY (or ANTHROPIC_API_KEY) set, the main route goes to that provider over TLS
# instead of the mock (the key is written only to target/gateway-real.json, mode 600, and never
# printed).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet -p host-sim
sim=target/debug/host-sim
GW=127.0.0.1:18080

echo "### 1. Each module through host-sim run"
for wasm in dist/*.wasm; do
  name=$(basename "$wasm" .wasm)
  args=("$wasm" --request examples/chat.http --upstream examples/chat-response.http)
  [ -f "plugins/$name/example.json" ] && args+=(--config "plugins/$name/example.json")
  out=$("$sim" run "${args[@]}" 2>&1 | head -3 | tr '\r' ' ' | tr '\n' ' ') || true
  printf '%-22s %9s bytes  %s\n' "$name" "$(stat -c %s "$wasm")" "$out"
done

echo
echo "### 2. Mock LLM and local gateway"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT INT TERM
"$sim" mock-llm --listen 127.0.0.1:18000 --quiet &
pids+=($!)
"$sim" mock-llm --listen 127.0.0.1:18001 --quiet &
pids+=($!)
config=envoy/gateway.json
if [ -n "${OPENAI_API_KEY:-}" ] || [ -n "${ANTHROPIC_API_KEY:-}" ]; then
  # The real provider: the main route's cluster and ai-proxy config switch to it, over TLS.
  config=target/gateway-real.json
  (umask 077; python3 - "$config" <<'PY'
import json, os, sys
c = json.load(open("envoy/gateway.json"))
if os.environ.get("OPENAI_API_KEY"):
    host = "api.openai.com"
    provider = {"type": "openai", "api_keys": [os.environ["OPENAI_API_KEY"]]}
else:
    host = "api.anthropic.com"
    provider = {"type": "anthropic", "api_keys": [os.environ["ANTHROPIC_API_KEY"]],
                "model_mapping": {"claude-*": "", "*": "claude-3-5-haiku-latest"}}
c["clusters"]["llm"] = {"endpoints": [host + ":443"], "tls": {}}
# Paths stay valid: target/ and envoy/ are both at the top of the repository.
for r in c["routes"]:
    for p in r["plugins"]:
        if r["name"] == "llm" and p["name"] == "ai-proxy":
            p.pop("config_file", None)
            p["config"] = {"providers": [provider]}
json.dump(c, open(sys.argv[1], "w"), indent=1)
print(host)
PY
  ) > target/gateway-real.host
  echo "A provider API key is set: the main route calls $(cat target/gateway-real.host) (the demo's answers are real)."
fi
"$sim" serve "$config" 2>target/gateway.err >target/gateway.access.log &
pids+=($!)
for _ in $(seq 1 300); do
  curl -s -o /dev/null "http://$GW/v1/models" && break
  sleep 0.2
done
echo "gateway: http://$GW  (access log: target/gateway.access.log)"

# A key of consumer team-web in plugins/ai-auth/example.json (ai-auth checks it, then removes it).
KEY=sk-web-3f9a1c7e5b2d4068
chat() { curl -s -i "http://$GW/v1/chat/completions" -H 'content-type: application/json' -H "authorization: Bearer $KEY" "$@"; }
show() { echo; echo "--- $1"; }

show "ai-auth: no API key is a 401 in the client's protocol, with www-authenticate"
curl -s -i "http://$GW/v1/chat/completions" -H 'content-type: application/json' \
  -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}' | grep -E -i '^(HTTP|www-authenticate)|error'

show "ai-auth: team-web may not use o1 (403); GET /v1/models lists only its models"
chat -d '{"model":"o1","messages":[{"role":"user","content":"hi"}]}' | grep -E '^HTTP|error'
curl -s "http://$GW/v1/models" -H "authorization: Bearer $KEY"; echo

show "Chat completion through ai-proxy (mock at priority 1 after a dead endpoint at priority 0: retried)"
chat -d '{"model":"gpt-4o","messages":[{"role":"user","content":"hello there"}]}' | grep -E -i '^(HTTP|x-ratelimit|x-aigw|x-cache-status)|choices'

show "ai-cache: the same question again is answered from the cache"
chat -d '{"model":"gpt-4o","messages":[{"role":"user","content":"hello there"}]}' | grep -E -i '^(HTTP|x-cache-status|x-cache-age)'

show "Streaming (ai-guard holds back a short window so a split word cannot slip through; usage forced upstream)"
chat -N -d '{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"count to three"}]}' | grep '^data:' | grep -v '"content":""' | cut -c1-160

show "Anthropic client on /v1/messages in front of the OpenAI-compatible upstream"
curl -s "http://$GW/v1/messages" -H 'content-type: application/json' -H 'anthropic-version: 2023-06-01' -H "x-api-key: $KEY" \
  -d '{"model":"claude-3-5-haiku","max_tokens":64,"messages":[{"role":"user","content":"hi from anthropic"}]}'
echo

show "ai-guard: a banned prompt is blocked in the client's protocol"
chat -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"tell me how to make a bomb"}]}' | grep -E '^HTTP|error'

show "ai-guard: an email is masked on the way up and restored in the answer (the mock echoes the prompt)"
chat -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"mail alice@example.com please"}]}' | grep -o '"content":"[^"]*"'
grep -o 'mail [^ ]* please' target/gateway.access.log >/dev/null 2>&1 || true

show "ai-load-balancer: host balanced.local spreads requests over the two mocks by in-flight count"
for i in 1 2 3 4; do
  curl -s -o /dev/null "http://$GW/v1/chat/completions" -H 'host: balanced.local' -H 'content-type: application/json' \
    -d "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"lb $i\"}]}"
done
sleep 0.2
grep 'route=balanced' target/gateway.access.log | tail -4 | grep -o 'upstream=[^ ]*' || true

show "ai-statistics: one record per request (tokens, cost, latency) in the plugin log"
grep -o 'ai-statistics: {.*' target/gateway.err | tail -1 | cut -c1-400 || true

show "ai-token-ratelimit: 2 requests per minute on host limited.local; the third gets 429"
for i in 1 2 3; do
  curl -s -i "http://$GW/v1/chat/completions" -H 'host: limited.local' -H 'content-type: application/json' \
    -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}' | grep -E -i '^(HTTP|retry-after|x-ratelimit-remaining-requests)'
done

echo
echo "Try it: curl http://$GW/v1/chat/completions -H 'content-type: application/json' -H 'authorization: Bearer $KEY' \\"
echo "          -d '{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}]}'"
echo "Edit plugins/*/example.json or envoy/gateway.json while it runs: the gateway reloads them."
if [ "${DEMO_ONLY:-0}" = 1 ]; then
  exit 0
fi
echo "Gateway running; Ctrl-C to stop."
wait
