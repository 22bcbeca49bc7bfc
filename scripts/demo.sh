#!/usr/bin/env bash
# `make run`: the whole pack on real HTTP, on this machine.
#
# 1. Every built module goes through `host-sim run` once on a sample request (quick check).
# 2. The mock LLM (`host-sim mock-llm`) starts on 127.0.0.1:18000, and the local gateway
#    (`host-sim serve envoy/gateway.json`) on 127.0.0.1:18080 with ai-guard, ai-token-ratelimit
#    and ai-proxy in front of it: the same modules and configurations as the Envoy setup.
# 3. A short demo calls it with curl and shows each capability.
# 4. The gateway keeps running until Ctrl-C (DEMO_ONLY=1: stop after the demo).
#
# Real providers need TLS, which the local gateway does not speak: point Envoy
# (envoy/envoy.yaml) at them instead.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet -p host-sim
sim=target/debug/host-sim
GW=127.0.0.1:18080

echo "### 1. Each module through host-sim run"
for wasm in dist/*.wasm; do
  name=$(basename "$wasm" .wasm)
  args=("$wasm" --request examples/chat.http --upstream examples/chat-response.http)
  [ -f "examples/$name.json" ] && args+=(--config "examples/$name.json")
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
"$sim" serve envoy/gateway.json 2>target/gateway.err >target/gateway.access.log &
pids+=($!)
for _ in $(seq 1 300); do
  curl -s -o /dev/null "http://$GW/v1/models" && break
  sleep 0.2
done
echo "gateway: http://$GW  (access log: target/gateway.access.log)"

chat() { curl -s -i "http://$GW/v1/chat/completions" -H 'content-type: application/json' -H 'authorization: Bearer demo-client' "$@"; }
show() { echo; echo "--- $1"; }

show "Chat completion through ai-proxy (mock at priority 1 after a dead endpoint at priority 0: retried)"
chat -d '{"model":"gpt-4","messages":[{"role":"user","content":"hello there"}]}' | grep -E -i '^(HTTP|x-ratelimit|x-aigw)|choices'

show "Streaming (ai-guard holds back a short window so a split word cannot slip through; usage forced upstream)"
chat -N -d '{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"count to three"}]}' | grep '^data:' | grep -v '"content":""' | cut -c1-160

show "Anthropic client on /v1/messages in front of the OpenAI-compatible upstream"
curl -s "http://$GW/v1/messages" -H 'content-type: application/json' -H 'anthropic-version: 2023-06-01' \
  -d '{"model":"claude-3-5-haiku","max_tokens":64,"messages":[{"role":"user","content":"hi from anthropic"}]}'
echo

show "ai-guard: a banned prompt is blocked in the client's protocol"
chat -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"tell me how to make a bomb"}]}' | grep -E '^HTTP|error'

show "ai-guard: an email is masked on the way up and restored in the answer (the mock echoes the prompt)"
chat -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"mail alice@example.com please"}]}' | grep -o '"content":"[^"]*"'
grep -o 'mail [^ ]* please' target/gateway.access.log >/dev/null 2>&1 || true

show "ai-token-ratelimit: 2 requests per minute on host limited.local; the third gets 429"
for i in 1 2 3; do
  curl -s -i "http://$GW/v1/chat/completions" -H 'host: limited.local' -H 'content-type: application/json' \
    -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}' | grep -E -i '^(HTTP|retry-after|x-ratelimit-remaining-requests)'
done

echo
echo "Try it: curl http://$GW/v1/chat/completions -H 'content-type: application/json' \\"
echo "          -d '{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}]}'"
echo "Edit examples/*.json or envoy/gateway.json while it runs: the gateway reloads them."
if [ "${DEMO_ONLY:-0}" = 1 ]; then
  exit 0
fi
echo "Gateway running; Ctrl-C to stop."
wait
