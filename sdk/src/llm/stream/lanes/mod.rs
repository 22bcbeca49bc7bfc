//! Where the text of a *client-dialect* stream event lives, for plugins that rewrite answer
//! text in place without re-encoding the stream (ai-guard masks, blocks and restores text on
//! the wire the client reads).
//!
//! [`locate`] reads one SSE event's data (OpenAI chat or legacy completions chunk, Anthropic
//! Messages event, OpenAI Responses event — recognised from the data itself, so a plugin may
//! sit anywhere in the chain) and lists:
//! - every text increment as a [`Field`]: its [`Lane`] (which text stream of the answer: choice
//!   or output item, content block, channel or tool-call arguments), the byte span of its JSON
//!   string literal in the data, and the decoded text (borrowed when it had no escapes);
//! - the complete texts that Responses summary events repeat (`response.output_text.done`,
//!   `content_part.done`, `output_item.done`, `response.completed`, ...) in [`Located::whole`];
//! - which lanes end with the event ([`End`]): a `finish_reason`, `content_block_stop`, a
//!   Responses `.done`, or the end of the message.
//!
//! Rewriting splices: [`splice`] replaces spans with new JSON strings and leaves every other
//! byte of the event as the upstream sent it, so fields this module does not know survive.
//! [`write_delta`] writes one extra increment for a lane in the same dialect (to deliver text
//! a plugin held back), and [`write_cut`] ends the stream early in the dialect's own terminal
//! shape (`finish_reason: "content_filter"`, Anthropic `stop_reason: "refusal"`, Responses
//! `response.incomplete`).
//!
//! ```
//! use aigw::llm::stream::lanes::{locate, splice, Part};
//! let data = br#"{"id":"c1","choices":[{"index":0,"delta":{"content":"call 555"},"finish_reason":null}]}"#;
//! let found = locate(data).unwrap();
//! let field = &found.fields[0];
//! assert_eq!(field.text, "call 555");
//! assert!(matches!(field.lane.part, Part::Text(_)));
//! let mut out = Vec::new();
//! splice(data, &[(field.span.clone(), "call [PHONE]")], &mut out);
//! assert_eq!(
//!     out,
//!     br#"{"id":"c1","choices":[{"index":0,"delta":{"content":"call [PHONE]"},"finish_reason":null}]}"#
//! );
//! ```

mod locate;
mod locator;
mod walk;
mod write;

#[cfg(test)]
mod tests;

pub use locate::locate;
pub use locator::Locator;
pub use write::{splice, write_cut, write_delta, Cut, StreamMeta};

use super::Channel;
use crate::llm::Api;
use std::borrow::Cow;
use std::ops::Range;

/// What a lane's text is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Part {
    /// Prose on a channel (content, reasoning, refusal).
    Text(Channel),
    /// OpenAI legacy completions `choices[i].text`.
    Legacy,
    /// A tool call's arguments: JSON text, so values put into it must be JSON-escaped.
    ToolArgs,
}

impl Part {
    /// Whether the lane carries JSON text (tool arguments) rather than prose.
    pub fn is_json(self) -> bool {
        matches!(self, Part::ToolArgs)
    }
}

/// One text stream of an answer: its increments concatenate into one text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Lane {
    /// The dialect the lane's events speak ([`Api::ChatCompletions`] for chat and legacy
    /// completion chunks, [`Api::AnthropicMessages`], [`Api::Responses`]).
    pub api: Api,
    /// OpenAI choice index or Responses `output_index` (0 for Anthropic).
    pub choice: u32,
    /// Anthropic content block index, Responses `content_index` (or `summary_index`), OpenAI
    /// tool call `index` for tool arguments (0 otherwise).
    pub block: u32,
    /// What the text is.
    pub part: Part,
}

/// One text found in an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field<'a> {
    /// Which text stream it belongs to.
    pub lane: Lane,
    /// Byte span of the JSON string literal (quotes included) in the event data.
    pub span: Range<usize>,
    /// The decoded text.
    pub text: Cow<'a, str>,
}

/// Lanes that end with an event (after its own fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// Every lane of this OpenAI choice or Responses output item.
    Choice(u32),
    /// Every lane of this Anthropic content block.
    Block(u32),
    /// This lane.
    Lane(Lane),
    /// Every lane (the message or response is over).
    All,
}

impl End {
    /// Whether `lane` ends.
    pub fn covers(&self, lane: &Lane) -> bool {
        match self {
            End::Choice(c) => lane.api != Api::AnthropicMessages && lane.choice == *c,
            End::Block(b) => lane.api == Api::AnthropicMessages && lane.block == *b,
            End::Lane(l) => l == lane,
            End::All => true,
        }
    }
}

/// What [`locate`] found in one event.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Located<'a> {
    /// The dialect of the event, when its shape says (`None` for other JSON).
    pub api: Option<Api>,
    /// Text increments, in document order.
    pub fields: Vec<Field<'a>>,
    /// Complete texts repeated by summary events (check them in one piece).
    pub whole: Vec<Field<'a>>,
    /// Lanes that end with this event.
    pub ends: Vec<End>,
    /// Response id, model, creation time and object kind as the event gives them (OpenAI
    /// chunks, Anthropic `message_start`, Responses `response.created`), decoded only when
    /// asked ([`Located::fill_meta`]).
    raw_meta: RawMeta<'a>,
    /// The Responses `item_id` of the event, when it has one.
    pub item_id: Option<Cow<'a, str>>,
    /// The Anthropic content block this event opens (`content_block_start`).
    pub opens: Option<u32>,
}

/// The undecoded stream metadata of one event: the JSON values as they are in the data.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct RawMeta<'a> {
    id: Option<&'a [u8]>,
    model: Option<&'a [u8]>,
    created: Option<&'a [u8]>,
    object: Option<&'a [u8]>,
}

impl Located<'_> {
    /// Fills what `meta` does not know yet from this event (decoding only those fields).
    pub fn fill_meta(&self, meta: &mut StreamMeta) {
        let string = |raw: Option<&[u8]>| serde_json::from_slice::<String>(raw?).ok();
        if meta.id.is_none() {
            meta.id = string(self.raw_meta.id);
        }
        if meta.model.is_none() {
            meta.model = string(self.raw_meta.model);
        }
        if meta.created.is_none() {
            meta.created = self
                .raw_meta
                .created
                .and_then(|c| std::str::from_utf8(c).ok()?.parse::<u64>().ok());
        }
        if !meta.legacy {
            meta.legacy = self
                .raw_meta
                .object
                .is_some_and(|o| o == b"\"text_completion\"");
        }
    }
}
