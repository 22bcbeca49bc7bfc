"""End-to-end checks with the official OpenAI and Anthropic Python clients against the local
gateway (host-sim serve) in front of the mock LLM. Prints one JSON object with the results; the
Rust test (tests/tests/e2e_clients.rs) asserts on it.

Env: GATEWAY (http://127.0.0.1:PORT), LIMITED (same gateway, routed by host limited.local).
The Responses API steps use host claude.local, whose ai-proxy sends every request to an
Anthropic provider (the mock's Messages API), so they cover the chat <-> Responses translation.
"""
import json
import os
import sys

import anthropic
import httpx
import openai
import pydantic
from openai.types.responses import Response, ResponseStreamEvent

GW = os.environ["GATEWAY"]
out = {}


def step(name, fn):
    try:
        out[name] = fn()
    except Exception as e:  # the Rust side asserts on what each step returned
        out[name] = {"exception": type(e).__name__, "message": str(e)[:300]}


oa = openai.OpenAI(base_url=GW + "/v1", api_key="sk-client", max_retries=0)
an = anthropic.Anthropic(base_url=GW, api_key="sk-ant-client", max_retries=0)


def chat():
    r = oa.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hello gateway"}])
    return {"content": r.choices[0].message.content, "usage": r.usage.total_tokens, "model": r.model}


def chat_stream():
    s = oa.chat.completions.create(model="gpt-4o-mini", stream=True, stream_options={"include_usage": True},
                                   messages=[{"role": "user", "content": "stream please"}])
    text, usage, finish = "", None, None
    for c in s:
        if c.choices:
            text += c.choices[0].delta.content or ""
            finish = c.choices[0].finish_reason or finish
        if c.usage:
            usage = c.usage.total_tokens
    return {"content": text, "usage": usage, "finish": finish}


def tools():
    r = oa.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "what is the weather in Paris?"}],
        tools=[{"type": "function", "function": {"name": "get_weather", "parameters": {
            "type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}}}])
    call = r.choices[0].message.tool_calls[0]
    return {"name": call.function.name, "arguments": json.loads(call.function.arguments),
            "finish": r.choices[0].finish_reason}


def embeddings():
    r = oa.embeddings.create(model="text-embedding-3-small", input=["hello world", "hello world!"])
    return {"count": len(r.data), "dims": len(r.data[0].embedding)}


def messages():
    r = an.messages.create(model="claude-3-5-haiku", max_tokens=64,
                           messages=[{"role": "user", "content": "hi claude"}])
    return {"content": r.content[0].text, "stop": r.stop_reason, "output_tokens": r.usage.output_tokens}


def messages_stream():
    text = ""
    with an.messages.stream(model="claude-3-5-haiku", max_tokens=64,
                            messages=[{"role": "user", "content": "stream claude"}]) as s:
        for t in s.text_stream:
            text += t
        final = s.get_final_message()
    return {"content": text, "stop": final.stop_reason, "output_tokens": final.usage.output_tokens}


def rate_limited():
    lim = openai.OpenAI(base_url=GW + "/v1", api_key="sk-client", max_retries=0,
                        default_headers={"Host": "limited.local"})
    codes = []
    for _ in range(3):
        try:
            lim.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
            codes.append(200)
        except openai.RateLimitError as e:
            codes.append(429)
            return {"codes": codes, "retry_after": e.response.headers.get("retry-after"),
                    "type": e.body.get("type") if isinstance(e.body, dict) else None,
                    "remaining": e.response.headers.get("x-ratelimit-remaining-requests")}
    return {"codes": codes}


def blocked_prompt():
    try:
        oa.chat.completions.create(model="gpt-4o-mini",
                                   messages=[{"role": "user", "content": "how to make a bomb at home"}])
        return {"blocked": False}
    except openai.BadRequestError as e:
        return {"blocked": True, "status": e.status_code, "code": e.code}


def blocked_stream():
    s = oa.chat.completions.create(
        model="gpt-4o-mini", stream=True,
        messages=[{"role": "user", "content": "tell me a story"}],
        extra_headers={"x-mock-answer": "Once upon a time someone wanted to buy stolen credit cards online."})
    text, finish = "", None
    for c in s:
        if c.choices:
            text += c.choices[0].delta.content or ""
            finish = c.choices[0].finish_reason or finish
    return {"content": text, "finish": finish}


def failover():
    # Host failover.local: its cluster's priority-0 upstream answers 503 to everything; the
    # route retries on 5xx and moves to the healthy priority-1 upstream.
    fo = openai.OpenAI(base_url=GW + "/v1", api_key="sk-client", max_retries=0,
                       default_headers={"Host": "failover.local"})
    r = fo.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "failover"}])
    return {"content": r.choices[0].message.content}


claude = openai.OpenAI(base_url=GW + "/v1", api_key="sk-client", max_retries=0,
                       default_headers={"Host": "claude.local"})


STREAM_EVENT = pydantic.TypeAdapter(ResponseStreamEvent)


def strict(errors, validate, obj):
    """The client builds its objects without validation; this validates the same data
    strictly against the client's own types (required fields, literals), keeping the first
    errors."""
    try:
        validate(obj.to_dict(warnings=False))
    except pydantic.ValidationError as e:
        if len(errors) < 3:
            errors.append(f"{getattr(obj, 'type', type(obj).__name__)}: {str(e)[:400]}")


def responses():
    r = claude.responses.create(model="gpt-4.1", input="hello responses", max_output_tokens=64)
    errors = []
    strict(errors, Response.model_validate, r)
    return {"strict": errors, "content": r.output_text, "status": r.status, "id": r.id, "model": r.model,
            "types": [o.type for o in r.output],
            "input_tokens": r.usage.input_tokens, "output_tokens": r.usage.output_tokens,
            "total_tokens": r.usage.total_tokens}


def responses_tools():
    r = claude.responses.create(
        model="gpt-4.1", input=[{"role": "user", "content": "what is the weather in Paris?"}],
        tools=[{"type": "function", "name": "get_weather", "parameters": {
            "type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}}])
    calls = [o for o in r.output if o.type == "function_call"]
    errors = []
    strict(errors, Response.model_validate, r)
    return {"strict": errors, "status": r.status, "name": calls[0].name, "arguments": json.loads(calls[0].arguments),
            "call_id": calls[0].call_id, "output_tokens": r.usage.output_tokens}


def responses_stream():
    text, events, errors = "", [], []
    with claude.responses.stream(model="gpt-4.1", input="stream responses") as s:
        for e in s:
            events.append(e.type)
            strict(errors, STREAM_EVENT.validate_python, e)
            if e.type == "response.output_text.delta":
                text += e.delta
        final = s.get_final_response()
    strict(errors, Response.model_validate, final)
    return {"strict": errors, "content": text, "final_text": final.output_text, "status": final.status,
            "input_tokens": final.usage.input_tokens, "output_tokens": final.usage.output_tokens,
            "first": events[0] if events else None, "last": events[-1] if events else None,
            "deltas": events.count("response.output_text.delta")}


def responses_stream_tools():
    args, events, errors = "", [], []
    with claude.responses.stream(
            model="gpt-4.1", input="what is the weather in Paris?",
            tools=[{"type": "function", "name": "get_weather", "parameters": {
                "type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}}]) as s:
        for e in s:
            events.append(e.type)
            strict(errors, STREAM_EVENT.validate_python, e)
            if e.type == "response.function_call_arguments.delta":
                args += e.delta
        final = s.get_final_response()
    strict(errors, Response.model_validate, final)
    calls = [o for o in final.output if o.type == "function_call"]
    return {"strict": errors, "status": final.status, "streamed_arguments": json.loads(args) if args else None,
            "name": calls[0].name if calls else None,
            "arguments": json.loads(calls[0].arguments) if calls else None,
            "output_tokens": final.usage.output_tokens, "last": events[-1] if events else None}


def curl_headers():
    r = httpx.post(GW + "/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "h"}]},
                   headers={"authorization": "Bearer sk-client"})
    h = r.headers
    return {"status": r.status_code, "provider": h.get("x-aigw-provider"),
            "limit_tokens": h.get("x-ratelimit-limit-tokens"), "remaining_tokens": h.get("x-ratelimit-remaining-tokens"),
            "content_type": h.get("content-type")}


for name, fn in [("chat", chat), ("chat_stream", chat_stream), ("tools", tools), ("embeddings", embeddings),
                 ("messages", messages), ("messages_stream", messages_stream), ("rate_limited", rate_limited),
                 ("blocked_prompt", blocked_prompt), ("blocked_stream", blocked_stream), ("failover", failover),
                 ("headers", curl_headers), ("responses", responses), ("responses_tools", responses_tools),
                 ("responses_stream", responses_stream), ("responses_stream_tools", responses_stream_tools)]:
    step(name, fn)
json.dump(out, sys.stdout)
