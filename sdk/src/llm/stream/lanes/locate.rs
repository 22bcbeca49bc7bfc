//! Finding the text fields of one client-dialect event (see the module docs).

use super::{End, Field, Lane, Located, Part, RawMeta};
use crate::llm::stream::{BStr, Channel};
use crate::llm::Api;
use serde::Deserialize;
use serde_json::value::RawValue;

/// Every field any of the three dialects puts at the top level of an event that matters here.
/// `delta`, `message`, `text` and indexes are raw because their type differs between dialects
/// (or an upstream may send a number out of range): they are read once the kind is known.
#[derive(Deserialize)]
struct Wire<'a> {
    #[serde(rename = "type", default, borrow)]
    kind: Option<BStr<'a>>,
    #[serde(default, borrow)]
    id: Option<&'a RawValue>,
    #[serde(default, borrow)]
    model: Option<&'a RawValue>,
    #[serde(default, borrow)]
    created: Option<&'a RawValue>,
    #[serde(default, borrow)]
    object: Option<&'a RawValue>,
    #[serde(default, borrow)]
    choices: Option<Vec<ChoiceW<'a>>>,
    #[serde(default, borrow)]
    index: Option<&'a RawValue>,
    #[serde(default, borrow)]
    delta: Option<&'a RawValue>,
    #[serde(default, borrow)]
    content_block: Option<BlockW<'a>>,
    #[serde(default, borrow)]
    message: Option<&'a RawValue>,
    #[serde(default, borrow)]
    output_index: Option<&'a RawValue>,
    #[serde(default, borrow)]
    content_index: Option<&'a RawValue>,
    #[serde(default, borrow)]
    summary_index: Option<&'a RawValue>,
    #[serde(default, borrow)]
    item_id: Option<BStr<'a>>,
    #[serde(default, borrow)]
    text: Option<&'a RawValue>,
    #[serde(default, borrow)]
    refusal: Option<&'a RawValue>,
    #[serde(default, borrow)]
    arguments: Option<&'a RawValue>,
    #[serde(default, borrow)]
    part: Option<PartW<'a>>,
    #[serde(default, borrow)]
    item: Option<ItemW<'a>>,
    #[serde(default, borrow)]
    response: Option<ResponseW<'a>>,
}

#[derive(Deserialize)]
struct ChoiceW<'a> {
    #[serde(default, borrow)]
    index: Option<&'a RawValue>,
    #[serde(default, borrow)]
    text: Option<&'a RawValue>,
    #[serde(default, borrow)]
    delta: Option<DeltaW<'a>>,
    #[serde(default, borrow)]
    finish_reason: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct DeltaW<'a> {
    #[serde(default, borrow)]
    content: Option<&'a RawValue>,
    #[serde(default, borrow)]
    reasoning_content: Option<&'a RawValue>,
    #[serde(default, borrow)]
    reasoning: Option<&'a RawValue>,
    #[serde(default, borrow)]
    refusal: Option<&'a RawValue>,
    #[serde(default, borrow)]
    tool_calls: Option<Vec<ToolW<'a>>>,
}

#[derive(Deserialize)]
struct ToolW<'a> {
    #[serde(default, borrow)]
    index: Option<&'a RawValue>,
    #[serde(default, borrow)]
    function: Option<FunctionW<'a>>,
}

#[derive(Deserialize)]
struct FunctionW<'a> {
    #[serde(default, borrow)]
    arguments: Option<&'a RawValue>,
}

/// An Anthropic `content_block` (start) or `delta` (delta event).
#[derive(Deserialize)]
struct BlockW<'a> {
    #[serde(rename = "type", default, borrow)]
    kind: Option<BStr<'a>>,
    #[serde(default, borrow)]
    text: Option<&'a RawValue>,
    #[serde(default, borrow)]
    thinking: Option<&'a RawValue>,
    #[serde(default, borrow)]
    partial_json: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct MessageW<'a> {
    #[serde(default, borrow)]
    id: Option<&'a RawValue>,
    #[serde(default, borrow)]
    model: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct PartW<'a> {
    #[serde(default, borrow)]
    text: Option<&'a RawValue>,
    #[serde(default, borrow)]
    refusal: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct ItemW<'a> {
    #[serde(default, borrow)]
    content: Option<Vec<PartW<'a>>>,
    #[serde(default, borrow)]
    summary: Option<Vec<PartW<'a>>>,
    #[serde(default, borrow)]
    arguments: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct ResponseW<'a> {
    #[serde(default, borrow)]
    id: Option<&'a RawValue>,
    #[serde(default, borrow)]
    model: Option<&'a RawValue>,
    #[serde(default, borrow)]
    created_at: Option<&'a RawValue>,
    #[serde(default, borrow)]
    output: Option<Vec<ItemW<'a>>>,
}

/// Finds the text fields of one event's `data` (see the module docs). An error means the data
/// is not JSON of a shape this module reads (a caller that must not let text through
/// unchecked should then check the data as plain text).
pub fn locate(data: &[u8]) -> Result<Located<'_>, serde_json::Error> {
    let wire: Wire<'_> = serde_json::from_slice(data)?;
    let mut found = Located::default();
    let kind = wire.kind.as_ref().map(BStr::as_str).unwrap_or("");
    if wire.choices.is_some() {
        chat(data, &wire, &mut found);
    } else if kind.starts_with("response.") {
        responses(data, &wire, kind, &mut found);
    } else if kind.starts_with("message_") || kind.starts_with("content_block_") {
        anthropic(data, &wire, kind, &mut found);
    }
    Ok(found)
}

/// A string value's field: its span in `data` and decoded text (`None` for non-strings,
/// empty strings and slices not inside `data`).
fn field<'a>(data: &'a [u8], raw: Option<&'a RawValue>, lane: Lane) -> Option<Field<'a>> {
    let s = raw?.get();
    if !s.starts_with('"') || s.len() <= 2 {
        return None;
    }
    let start = (s.as_ptr() as usize).checked_sub(data.as_ptr() as usize)?;
    let end = start.checked_add(s.len())?;
    if end > data.len() {
        return None;
    }
    let text: BStr<'a> = serde_json::from_str(s).ok()?;
    Some(Field {
        lane,
        span: start..end,
        text: text.into_cow(),
    })
}

/// A non-negative integer index (an out-of-range or missing one gives `default`, so text is
/// never skipped because of its index).
fn index(raw: Option<&RawValue>, default: u32) -> u32 {
    raw.and_then(|r| r.get().parse::<u64>().ok())
        .map_or(default, |i| u32::try_from(i).unwrap_or(u32::MAX))
}

fn push<'a>(out: &mut Vec<Field<'a>>, f: Option<Field<'a>>) {
    out.extend(f)
}

fn chat<'a>(data: &'a [u8], wire: &Wire<'a>, found: &mut Located<'a>) {
    found.api = Some(Api::ChatCompletions);
    found.raw_meta = RawMeta {
        id: wire.id,
        model: wire.model,
        created: wire.created,
        object: wire.object,
    };
    let Some(choices) = &wire.choices else {
        return;
    };
    for (pos, c) in choices.iter().enumerate() {
        let choice = index(c.index, u32::try_from(pos).unwrap_or(u32::MAX));
        let lane = |block, part| Lane {
            api: Api::ChatCompletions,
            choice,
            block,
            part,
        };
        push(
            &mut found.fields,
            field(data, c.text, lane(0, Part::Legacy)),
        );
        if let Some(d) = &c.delta {
            for (raw, channel) in [
                (d.content, Channel::Content),
                (d.reasoning_content, Channel::Reasoning),
                (d.reasoning, Channel::Reasoning),
                (d.refusal, Channel::Refusal),
            ] {
                push(
                    &mut found.fields,
                    field(data, raw, lane(0, Part::Text(channel))),
                );
            }
            for (k, t) in d.tool_calls.iter().flatten().enumerate() {
                let block = index(t.index, u32::try_from(k).unwrap_or(u32::MAX));
                let args = t.function.as_ref().and_then(|f| f.arguments);
                push(
                    &mut found.fields,
                    field(data, args, lane(block, Part::ToolArgs)),
                );
            }
        }
        if c.finish_reason.is_some_and(|f| f.get() != "null") {
            found.ends.push(End::Choice(choice));
        }
    }
}

fn anthropic<'a>(data: &'a [u8], wire: &Wire<'a>, kind: &str, found: &mut Located<'a>) {
    found.api = Some(Api::AnthropicMessages);
    let block = index(wire.index, 0);
    let lane = |part| Lane {
        api: Api::AnthropicMessages,
        choice: 0,
        block,
        part,
    };
    match kind {
        "message_start" => {
            if let Some(m) = wire
                .message
                .and_then(|m| serde_json::from_str::<MessageW<'a>>(m.get()).ok())
            {
                found.raw_meta.id = m.id;
                found.raw_meta.model = m.model;
            }
        }
        "content_block_start" => {
            found.opens = Some(block);
            if let Some(b) = &wire.content_block {
                push(
                    &mut found.fields,
                    field(data, b.text, lane(Part::Text(Channel::Content))),
                );
                push(
                    &mut found.fields,
                    field(data, b.thinking, lane(Part::Text(Channel::Reasoning))),
                );
            }
        }
        "content_block_delta" => {
            let Some(d) = wire
                .delta
                .and_then(|d| serde_json::from_str::<BlockW<'a>>(d.get()).ok())
            else {
                return;
            };
            let f = match d.kind.as_ref().map(BStr::as_str) {
                Some("text_delta") => field(data, d.text, lane(Part::Text(Channel::Content))),
                Some("thinking_delta") => {
                    field(data, d.thinking, lane(Part::Text(Channel::Reasoning)))
                }
                Some("input_json_delta") => field(data, d.partial_json, lane(Part::ToolArgs)),
                // Unknown delta kinds: any text they carry is still checked.
                _ => field(data, d.text, lane(Part::Text(Channel::Content))),
            };
            push(&mut found.fields, f);
        }
        "content_block_stop" => found.ends.push(End::Block(block)),
        "message_delta" | "message_stop" => found.ends.push(End::All),
        _ => {}
    }
}

fn responses<'a>(data: &'a [u8], wire: &Wire<'a>, kind: &str, found: &mut Located<'a>) {
    found.api = Some(Api::Responses);
    let choice = index(wire.output_index, 0);
    let block = index(wire.content_index.or(wire.summary_index), 0);
    let lane = |block, part| Lane {
        api: Api::Responses,
        choice,
        block,
        part,
    };
    found.item_id = wire.item_id.clone().map(BStr::into_cow);
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
    if let Some(r) = &wire.response {
        found.raw_meta.id = r.id;
        found.raw_meta.model = r.model;
        found.raw_meta.created = r.created_at;
    }
    if kind.ends_with(".delta") {
        if let Some(p) = part(kind) {
            let block = if p == Part::ToolArgs { 0 } else { block };
            push(&mut found.fields, field(data, wire.delta, lane(block, p)));
        }
        return;
    }
    // Summary events repeat whole texts; every string of text, refusal or arguments in them is
    // checked in one piece.
    let whole = &mut found.whole;
    let content = lane(block, Part::Text(Channel::Content));
    push(whole, field(data, wire.text, content));
    push(
        whole,
        field(
            data,
            wire.refusal,
            lane(block, Part::Text(Channel::Refusal)),
        ),
    );
    push(whole, field(data, wire.arguments, lane(0, Part::ToolArgs)));
    if let Some(p) = &wire.part {
        push(whole, field(data, p.text, content));
        push(
            whole,
            field(data, p.refusal, lane(block, Part::Text(Channel::Refusal))),
        );
    }
    let mut items: Vec<(u32, &ItemW<'a>)> = Vec::new();
    if let Some(i) = &wire.item {
        items.push((choice, i));
    }
    if let Some(r) = &wire.response {
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
                field(data, p.text, at(c, Part::Text(Channel::Content))),
            );
            push(
                whole,
                field(data, p.refusal, at(c, Part::Text(Channel::Refusal))),
            );
        }
        for (c, p) in item.summary.iter().flatten().enumerate() {
            let c = u32::try_from(c).unwrap_or(u32::MAX);
            push(
                whole,
                field(data, p.text, at(c, Part::Text(Channel::Reasoning))),
            );
        }
        push(whole, field(data, item.arguments, at(0, Part::ToolArgs)));
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
}
