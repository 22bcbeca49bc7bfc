//! Finding the text fields of one client-dialect event (see the module docs).
//!
//! The event is read by a small JSON walker made for the three dialects instead of serde: one
//! pass over the bytes that checks the whole event is JSON (the grammar as serde_json reads it:
//! string escapes, no control characters in strings, numbers, literals, nesting at most 128 deep,
//! nothing after the value), decodes only the keys and strings the dialects use, and skips every
//! other value without decoding or copying it. Chat chunks (the common case) are read in that one
//! pass: each choice's fields are listed as soon as the choice is read.
//!
//! Text must never escape checking, so the walker is strict where serde would have been, and
//! stricter where serde let text through unlisted:
//! - keys are compared after JSON unescaping (`"con\u0074ent"` is `content`);
//! - a known key repeated in one object is an error (a duplicate could hide a value);
//! - a known field of the wrong type (`"choices": {}`, `"delta": "x"` in a chat choice or an
//!   Anthropic `content_block_delta`) is an error, and so is a top-level value that is not an
//!   object;
//! - a text string that cannot be decoded (invalid UTF-8, a lone surrogate escape) is an error.
//!
//! An error tells the caller to check the data as plain text.

use super::{End, Field, Lane, Located, Part, RawMeta};
use crate::llm::stream::Channel;
use crate::llm::Api;
use std::borrow::Cow;

use super::walk::{decode, fail, Cur, Error, Raw, Seen};

/// Every top-level field any of the three dialects uses. Raw spans are read once the kind is
/// known (`delta` is a string in Responses and an object in Anthropic events).
#[derive(Default)]
struct Wire<'a> {
    kind: Option<Cow<'a, str>>,
    id: Option<Raw>,
    model: Option<Raw>,
    created: Option<Raw>,
    object: Option<Raw>,
    /// `choices` was there (not `null`); its fields are already listed.
    chat: bool,
    index: Option<Raw>,
    delta: Option<Raw>,
    content_block: Option<Raw>,
    message: Option<Raw>,
    output_index: Option<Raw>,
    content_index: Option<Raw>,
    summary_index: Option<Raw>,
    item_id: Option<Cow<'a, str>>,
    text: Option<Raw>,
    refusal: Option<Raw>,
    arguments: Option<Raw>,
    part: Option<Raw>,
    item: Option<Raw>,
    response: Option<Raw>,
}

/// An Anthropic `content_block` (start) or `delta` (delta event).
#[derive(Default)]
struct BlockW<'a> {
    kind: Option<Cow<'a, str>>,
    text: Option<Raw>,
    thinking: Option<Raw>,
    partial_json: Option<Raw>,
}

#[derive(Default)]
struct PartW {
    text: Option<Raw>,
    refusal: Option<Raw>,
}

#[derive(Default)]
struct ItemW {
    content: Option<Vec<PartW>>,
    summary: Option<Vec<PartW>>,
    arguments: Option<Raw>,
}

#[derive(Default)]
struct ResponseW {
    id: Option<Raw>,
    model: Option<Raw>,
    created_at: Option<Raw>,
    output: Option<Vec<ItemW>>,
}

/// A chat choice's `delta`.
#[derive(Default)]
struct DeltaW {
    content: Option<Raw>,
    reasoning_content: Option<Raw>,
    reasoning: Option<Raw>,
    refusal: Option<Raw>,
    /// `(index, function.arguments)` of each tool call: the first inline, the others in `more`
    /// (no allocation for the usual single call).
    first_tool: Option<(Option<Raw>, Option<Raw>)>,
    more_tools: Vec<(Option<Raw>, Option<Raw>)>,
}

fn wire<'a>(c: &mut Cur<'a>, found: &mut Located<'a>) -> Result<Wire<'a>, Error> {
    let mut w = Wire::default();
    let mut seen = Seen::default();
    c.object(|c, key| {
        match key {
            b"type" => {
                seen.once(0)?;
                w.kind = c.text()?;
            }
            b"id" => w.id = c.raw_field(&mut seen, 1)?,
            b"model" => w.model = c.raw_field(&mut seen, 2)?,
            b"created" => w.created = c.raw_field(&mut seen, 3)?,
            b"object" => w.object = c.raw_field(&mut seen, 4)?,
            b"choices" => {
                seen.once(5)?;
                if !c.null() {
                    c.array(|c, pos| choice(c, pos, found))?;
                    w.chat = true;
                }
            }
            b"index" => w.index = c.raw_field(&mut seen, 6)?,
            b"delta" => w.delta = c.raw_field(&mut seen, 7)?,
            b"content_block" => w.content_block = c.raw_field(&mut seen, 8)?,
            b"message" => w.message = c.raw_field(&mut seen, 9)?,
            b"output_index" => w.output_index = c.raw_field(&mut seen, 10)?,
            b"content_index" => w.content_index = c.raw_field(&mut seen, 11)?,
            b"summary_index" => w.summary_index = c.raw_field(&mut seen, 12)?,
            b"item_id" => {
                seen.once(13)?;
                w.item_id = c.text()?;
            }
            b"text" => w.text = c.raw_field(&mut seen, 14)?,
            b"refusal" => w.refusal = c.raw_field(&mut seen, 15)?,
            b"arguments" => w.arguments = c.raw_field(&mut seen, 16)?,
            b"part" => w.part = c.raw_field(&mut seen, 17)?,
            b"item" => w.item = c.raw_field(&mut seen, 18)?,
            b"response" => w.response = c.raw_field(&mut seen, 19)?,
            _ => {
                c.value()?;
            }
        }
        Ok(())
    })?;
    Ok(w)
}

fn block<'a>(c: &mut Cur<'a>) -> Result<BlockW<'a>, Error> {
    let mut b = BlockW::default();
    let mut seen = Seen::default();
    c.object(|c, key| {
        match key {
            b"type" => {
                seen.once(0)?;
                b.kind = c.text()?;
            }
            b"text" => b.text = c.raw_field(&mut seen, 1)?,
            b"thinking" => b.thinking = c.raw_field(&mut seen, 2)?,
            b"partial_json" => b.partial_json = c.raw_field(&mut seen, 3)?,
            _ => {
                c.value()?;
            }
        }
        Ok(())
    })?;
    Ok(b)
}

fn part(c: &mut Cur<'_>) -> Result<PartW, Error> {
    let mut p = PartW::default();
    let mut seen = Seen::default();
    c.object(|c, key| {
        match key {
            b"text" => p.text = c.raw_field(&mut seen, 0)?,
            b"refusal" => p.refusal = c.raw_field(&mut seen, 1)?,
            _ => {
                c.value()?;
            }
        }
        Ok(())
    })?;
    Ok(p)
}

fn item(c: &mut Cur<'_>) -> Result<ItemW, Error> {
    let mut it = ItemW::default();
    let mut seen = Seen::default();
    c.object(|c, key| {
        match key {
            b"content" => {
                seen.once(0)?;
                it.content = c.list(part)?;
            }
            b"summary" => {
                seen.once(1)?;
                it.summary = c.list(part)?;
            }
            b"arguments" => it.arguments = c.raw_field(&mut seen, 2)?,
            _ => {
                c.value()?;
            }
        }
        Ok(())
    })?;
    Ok(it)
}

fn response(c: &mut Cur<'_>) -> Result<ResponseW, Error> {
    let mut r = ResponseW::default();
    let mut seen = Seen::default();
    c.object(|c, key| {
        match key {
            b"id" => r.id = c.raw_field(&mut seen, 0)?,
            b"model" => r.model = c.raw_field(&mut seen, 1)?,
            b"created_at" => r.created_at = c.raw_field(&mut seen, 2)?,
            b"output" => {
                seen.once(3)?;
                r.output = c.list(item)?;
            }
            _ => {
                c.value()?;
            }
        }
        Ok(())
    })?;
    Ok(r)
}

/// One tool call of a chat delta: `(index, function.arguments)`.
fn tool(c: &mut Cur<'_>) -> Result<(Option<Raw>, Option<Raw>), Error> {
    let (mut index, mut args) = (None, None);
    let mut seen = Seen::default();
    c.object(|c, key| {
        match key {
            b"index" => index = c.raw_field(&mut seen, 0)?,
            b"function" => {
                seen.once(1)?;
                if !c.null() {
                    let mut inner = Seen::default();
                    c.object(|c, key| {
                        if key == b"arguments" {
                            inner.once(0)?;
                            args = c.raw()?;
                        } else {
                            c.value()?;
                        }
                        Ok(())
                    })?;
                }
            }
            _ => {
                c.value()?;
            }
        }
        Ok(())
    })?;
    Ok((index, args))
}

fn delta(c: &mut Cur<'_>) -> Result<DeltaW, Error> {
    let mut d = DeltaW::default();
    let mut seen = Seen::default();
    c.object(|c, key| {
        match key {
            b"content" => d.content = c.raw_field(&mut seen, 0)?,
            b"reasoning_content" => d.reasoning_content = c.raw_field(&mut seen, 1)?,
            b"reasoning" => d.reasoning = c.raw_field(&mut seen, 2)?,
            b"refusal" => d.refusal = c.raw_field(&mut seen, 3)?,
            b"tool_calls" => {
                seen.once(4)?;
                if !c.null() {
                    c.array(|c, _| {
                        let t = tool(c)?;
                        if d.first_tool.is_none() {
                            d.first_tool = Some(t);
                        } else {
                            d.more_tools.push(t);
                        }
                        Ok(())
                    })?;
                }
            }
            _ => {
                c.value()?;
            }
        }
        Ok(())
    })?;
    Ok(d)
}

/// Reads one chat choice and lists its fields and end.
fn choice<'a>(c: &mut Cur<'a>, pos: usize, found: &mut Located<'a>) -> Result<(), Error> {
    let (mut index_raw, mut text, mut finish) = (None, None, None);
    let mut d: Option<DeltaW> = None;
    let mut seen = Seen::default();
    c.object(|c, key| {
        match key {
            b"index" => index_raw = c.raw_field(&mut seen, 0)?,
            b"text" => text = c.raw_field(&mut seen, 1)?,
            b"delta" => {
                seen.once(2)?;
                d = c.opt(delta)?;
            }
            b"finish_reason" => finish = c.raw_field(&mut seen, 3)?,
            _ => {
                c.value()?;
            }
        }
        Ok(())
    })?;
    let data = c.b;
    let choice = index(data, index_raw, u32::try_from(pos).unwrap_or(u32::MAX));
    let lane = |block, part| Lane {
        api: Api::ChatCompletions,
        choice,
        block,
        part,
    };
    let out = &mut found.fields;
    push(out, field(data, text, lane(0, Part::Legacy))?);
    if let Some(d) = &d {
        for (raw, channel) in [
            (d.content, Channel::Content),
            (d.reasoning_content, Channel::Reasoning),
            (d.reasoning, Channel::Reasoning),
            (d.refusal, Channel::Refusal),
        ] {
            push(out, field(data, raw, lane(0, Part::Text(channel)))?);
        }
        for (k, (i, args)) in d.first_tool.iter().chain(&d.more_tools).enumerate() {
            let block = index(data, *i, u32::try_from(k).unwrap_or(u32::MAX));
            push(out, field(data, *args, lane(block, Part::ToolArgs))?);
        }
    }
    if finish.is_some() {
        found.ends.push(End::Choice(choice));
    }
    Ok(())
}

/// Finds the text fields of one event's `data` (see the module docs). An error means the data
/// is not JSON of a shape this module reads (a caller that must not let text through
/// unchecked should then check the data as plain text).
pub fn locate(data: &[u8]) -> Result<Located<'_>, serde_json::Error> {
    if u32::try_from(data.len()).is_err() {
        return Err(fail("event too large"));
    }
    let mut found = Located::default();
    let mut c = Cur {
        b: data,
        i: 0,
        depth: 0,
    };
    let wire = wire(&mut c, &mut found)?;
    c.ws();
    if c.i != data.len() {
        return Err(fail("trailing characters"));
    }
    let kind = wire.kind.as_deref().unwrap_or("");
    let other_dialect = kind.starts_with("response.")
        || kind.starts_with("message_")
        || kind.starts_with("content_block_");
    if wire.chat && other_dialect {
        // Chat choices next to an Anthropic or Responses event type: a client of either
        // dialect could read text this reading would not list.
        return Err(fail("an event of two dialects"));
    }
    if wire.chat {
        found.api = Some(Api::ChatCompletions);
        found.raw_meta = RawMeta {
            id: slice(data, wire.id),
            model: slice(data, wire.model),
            created: slice(data, wire.created),
            object: slice(data, wire.object),
        };
    } else if kind.starts_with("response.") {
        responses(data, &wire, kind, &mut found)?;
    } else if kind.starts_with("message_") || kind.starts_with("content_block_") {
        anthropic(data, &wire, kind, &mut found)?;
    }
    Ok(found)
}

/// Reads the object at `raw` (already checked to be JSON) with `f`: the sub-objects a dialect
/// needs are read typed only for that dialect.
fn walk<'a, T>(
    data: &'a [u8],
    raw: Option<Raw>,
    f: impl FnOnce(&mut Cur<'a>) -> Result<T, Error>,
) -> Result<Option<T>, Error> {
    let Some(r) = raw else {
        return Ok(None);
    };
    let mut c = Cur {
        b: data,
        i: r.start as usize,
        depth: 0,
    };
    f(&mut c).map(Some)
}

fn slice(data: &[u8], raw: Option<Raw>) -> Option<&[u8]> {
    raw.and_then(|r| data.get(r.range()))
}

/// A string value's field: its span in `data` and decoded text (`None` for non-strings and
/// empty strings; an error for a string that cannot be decoded).
fn field(data: &[u8], raw: Option<Raw>, lane: Lane) -> Result<Option<Field<'_>>, Error> {
    let Some(r) = raw else {
        return Ok(None);
    };
    let Some(lit) = data.get(r.range()) else {
        return Ok(None);
    };
    if lit.first() != Some(&b'"') || lit.len() <= 2 {
        return Ok(None);
    }
    let escaped = lit.contains(&b'\\');
    Ok(Some(Field {
        lane,
        span: r.range(),
        text: decode(lit, escaped)?,
    }))
}

/// A non-negative integer index (an out-of-range or missing one gives `default`, so text is
/// never skipped because of its index).
fn index(data: &[u8], raw: Option<Raw>, default: u32) -> u32 {
    // JSON numbers are ASCII: the digits-only ones that fit a `u64` are the indexes.
    let parsed = slice(data, raw).filter(|r| !r.is_empty()).and_then(|r| {
        r.iter().try_fold(0u64, |n, &d| {
            if !d.is_ascii_digit() {
                return None;
            }
            n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        })
    });
    parsed.map_or(default, |i| u32::try_from(i).unwrap_or(u32::MAX))
}

fn push<'a>(out: &mut Vec<Field<'a>>, f: Option<Field<'a>>) {
    out.extend(f)
}

/// The `id` and `model` of an Anthropic `message_start` message (lenient: anything else
/// gives nothing; no text is read from it).
fn message_meta(data: &[u8], raw: Raw) -> Option<(Option<Raw>, Option<Raw>)> {
    let mut c = Cur {
        b: data,
        i: raw.start as usize,
        depth: 0,
    };
    let (mut id, mut model) = (None, None);
    let mut seen = Seen::default();
    c.object(|c, key| {
        match key {
            b"id" => id = c.raw_field(&mut seen, 0)?,
            b"model" => model = c.raw_field(&mut seen, 1)?,
            _ => {
                c.value()?;
            }
        }
        Ok(())
    })
    .ok()?;
    Some((id, model))
}

fn anthropic<'a>(
    data: &'a [u8],
    wire: &Wire<'a>,
    kind: &str,
    found: &mut Located<'a>,
) -> Result<(), Error> {
    found.api = Some(Api::AnthropicMessages);
    let block_index = index(data, wire.index, 0);
    let lane = |part| Lane {
        api: Api::AnthropicMessages,
        choice: 0,
        block: block_index,
        part,
    };
    match kind {
        "message_start" => {
            if let Some((id, model)) = wire.message.and_then(|m| message_meta(data, m)) {
                found.raw_meta.id = slice(data, id);
                found.raw_meta.model = slice(data, model);
            }
        }
        "content_block_start" => {
            found.opens = Some(block_index);
            if let Some(b) = walk(data, wire.content_block, block)? {
                push(
                    &mut found.fields,
                    field(data, b.text, lane(Part::Text(Channel::Content)))?,
                );
                push(
                    &mut found.fields,
                    field(data, b.thinking, lane(Part::Text(Channel::Reasoning)))?,
                );
            }
        }
        "content_block_delta" => {
            let Some(raw) = wire.delta else {
                return Ok(());
            };
            // Walked again as an object: a delta of another type is an error, never skipped.
            let mut c = Cur {
                b: data,
                i: raw.start as usize,
                depth: 0,
            };
            let d = block(&mut c)?;
            let f = match d.kind.as_deref() {
                Some("text_delta") => field(data, d.text, lane(Part::Text(Channel::Content)))?,
                Some("thinking_delta") => {
                    field(data, d.thinking, lane(Part::Text(Channel::Reasoning)))?
                }
                Some("input_json_delta") => field(data, d.partial_json, lane(Part::ToolArgs))?,
                // Unknown delta kinds: any text they carry is still checked.
                _ => field(data, d.text, lane(Part::Text(Channel::Content)))?,
            };
            push(&mut found.fields, f);
        }
        "content_block_stop" => found.ends.push(End::Block(block_index)),
        "message_delta" | "message_stop" => found.ends.push(End::All),
        _ => {}
    }
    Ok(())
}

fn responses<'a>(
    data: &'a [u8],
    wire: &Wire<'a>,
    kind: &str,
    found: &mut Located<'a>,
) -> Result<(), Error> {
    found.api = Some(Api::Responses);
    let choice = index(data, wire.output_index, 0);
    let block = index(data, wire.content_index.or(wire.summary_index), 0);
    let lane = |block, part| Lane {
        api: Api::Responses,
        choice,
        block,
        part,
    };
    found.item_id = wire.item_id.clone();
    let part = |kind: &str| -> Option<Part> {
        let stem = kind.strip_prefix("response.")?;
        let stem = stem
            .strip_suffix(".delta")
            .or_else(|| stem.strip_suffix(".done"))?;
        Some(match stem {
            "output_text" => Part::Text(Channel::Content),
            "refusal" => Part::Text(Channel::Refusal),
            "reasoning_text" | "reasoning_summary_text" => Part::Text(Channel::Reasoning),
            "function_call_arguments" => Part::ToolArgs,
            _ => return None,
        })
    };
    let resp = walk(data, wire.response, response)?;
    if let Some(r) = &resp {
        found.raw_meta.id = slice(data, r.id);
        found.raw_meta.model = slice(data, r.model);
        found.raw_meta.created = slice(data, r.created_at);
    }
    if kind.ends_with(".delta") {
        if let Some(p) = part(kind) {
            let block = if p == Part::ToolArgs { 0 } else { block };
            push(&mut found.fields, field(data, wire.delta, lane(block, p))?);
        }
        return Ok(());
    }
    // Summary events repeat whole texts; every string of text, refusal or arguments in them is
    // checked in one piece.
    let whole = &mut found.whole;
    let content = lane(block, Part::Text(Channel::Content));
    let refusal = lane(block, Part::Text(Channel::Refusal));
    push(whole, field(data, wire.text, content)?);
    push(whole, field(data, wire.refusal, refusal)?);
    push(whole, field(data, wire.arguments, lane(0, Part::ToolArgs))?);
    if let Some(p) = walk(data, wire.part, self::part)? {
        push(whole, field(data, p.text, content)?);
        push(whole, field(data, p.refusal, refusal)?);
    }
    let mut items: Vec<(u32, &ItemW)> = Vec::new();
    let item_w = walk(data, wire.item, item)?;
    if let Some(i) = &item_w {
        items.push((choice, i));
    }
    if let Some(r) = &resp {
        for (o, i) in r.output.iter().flatten().enumerate() {
            items.push((u32::try_from(o).unwrap_or(u32::MAX), i));
        }
    }
    for (o, item) in items {
        let at = |block, part| Lane {
            api: Api::Responses,
            choice: o,
            block,
            part,
        };
        for (c, p) in item.content.iter().flatten().enumerate() {
            let c = u32::try_from(c).unwrap_or(u32::MAX);
            push(
                whole,
                field(data, p.text, at(c, Part::Text(Channel::Content)))?,
            );
            push(
                whole,
                field(data, p.refusal, at(c, Part::Text(Channel::Refusal)))?,
            );
        }
        for (c, p) in item.summary.iter().flatten().enumerate() {
            let c = u32::try_from(c).unwrap_or(u32::MAX);
            push(
                whole,
                field(data, p.text, at(c, Part::Text(Channel::Reasoning)))?,
            );
        }
        push(whole, field(data, item.arguments, at(0, Part::ToolArgs))?);
    }
    if kind.ends_with(".done") {
        if let Some(p) = part(kind) {
            let block = if p == Part::ToolArgs { 0 } else { block };
            found.ends.push(End::Lane(lane(block, p)));
        } else if kind == "response.output_item.done" {
            found.ends.push(End::Choice(choice));
        }
    }
    if matches!(
        kind,
        "response.completed" | "response.incomplete" | "response.failed"
    ) {
        found.ends.push(End::All);
    }
    Ok(())
}
