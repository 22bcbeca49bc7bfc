//! One neutral model of a streamed LLM answer: upstream wire events are *decoded* into
//! [`Event`]s, and events are *encoded* into the client's wire format. A translated stream is
//! `decoder → encoder`, so N upstream dialects and M client dialects need N + M pieces instead
//! of N × M translators.
//!
//! Input is framing-independent: feed each SSE event's `event:` name (`None` when unnamed) and
//! `data`, or for Bedrock the event-stream `:event-type` and JSON payload. Text and argument
//! fragments borrow from the input bytes when they have no JSON escapes ([`BStr`]). State is
//! small and bounded (ids, block/tool index tables of at most 4096 entries, stop reason, usage).
//!
//! | decoder | upstream |
//! |---|---|
//! | [`OpenAiDecoder`] | OpenAI `chat.completion.chunk` SSE (also DeepSeek/Qwen `reasoning_content`) |
//! | [`AnthropicDecoder`] | Anthropic Messages SSE |
//! | [`GeminiDecoder`] | Gemini `streamGenerateContent?alt=sse` |
//! | [`BedrockDecoder`] | Bedrock ConverseStream event-stream messages |
//! | [`DashScopeDecoder`] | DashScope native SSE (`X-DashScope-SSE`, `incremental_output`) |
//! | [`ResponsesDecoder`] | OpenAI Responses API SSE |
//!
//! | encoder | client |
//! |---|---|
//! | [`OpenAiEncoder`] | OpenAI `chat.completion.chunk` SSE |
//! | [`AnthropicEncoder`] | Anthropic Messages SSE |
//! | [`ResponsesEncoder`] | OpenAI Responses API SSE |
//! | [`Aggregator`] | one OpenAI `chat.completion` (client did not ask for a stream) |
//!
//! Plugins that only observe a stream (usage, logs) read it through [`StreamReader`]: SSE
//! framing → the [`Dialect`]'s decoder → neutral events, with the decoder's usage.
//!
//! ```
//! use aigw::llm::stream::{AnthropicDecoder, Decoder, Encoder, OpenAiEncoder};
//! let mut dec = AnthropicDecoder::new();
//! let mut enc = OpenAiEncoder::new("chatcmpl-1", "claude", 0, false);
//! let (mut events, mut out) = (Vec::new(), Vec::new());
//! for data in [
//!     &br#"{"type":"message_start","message":{"id":"msg_1","model":"claude","usage":{"input_tokens":3,"output_tokens":1}}}"#[..],
//!     br#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
//!     br#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}"#,
//!     br#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":2}}"#,
//!     br#"{"type":"message_stop"}"#,
//! ] {
//!     events.clear();
//!     dec.decode(None, data, &mut events).unwrap();
//!     for e in &events {
//!         enc.encode(e, &mut out);
//!     }
//! }
//! dec.finish().unwrap();
//! enc.finish(&mut out);
//! assert!(out.ends_with(b"data: [DONE]\n\n"));
//! ```

mod aggregate;
mod bstr;
mod decode;
mod encode;
mod event;
pub mod lanes;
mod read;
mod same_shape;
mod status;
mod stop;

#[cfg(test)]
mod tests;

pub use aggregate::Aggregator;
pub use bstr::{BStr, FirstOnly};
pub use decode::{
    AnthropicDecoder, BedrockDecoder, DashScopeDecoder, GeminiDecoder, OpenAiDecoder,
    ResponsesDecoder,
};
pub use encode::{prefixed_id, AnthropicEncoder, OpenAiEncoder, ResponsesEncoder};
pub use event::{Channel, Event, StreamError};
pub use read::{Dialect, StreamReader};
pub use status::{
    anthropic_error_status, anthropic_error_type, bedrock_exception_status, dashscope_error_status,
    gemini_error_status, openai_error_type,
};
pub use stop::StopReason;

use crate::llm::Usage;

/// Turns one upstream dialect's events into neutral [`Event`]s.
pub trait Decoder {
    /// Decodes one upstream event: `event` is the SSE `event:` name (`None` when unnamed) or
    /// the Bedrock `:event-type`, `data` the SSE data or event payload. Neutral events are
    /// appended to `out`, borrowing from `data`. Events after the terminal one are ignored.
    ///
    /// An error means the upstream sent something unparseable or out of bounds; the decoder
    /// then ignores the rest and the caller should end the client stream with
    /// [`Encoder::fail`].
    fn decode<'a>(
        &mut self,
        event: Option<&str>,
        data: &'a [u8],
        out: &mut Vec<Event<'a>>,
    ) -> Result<(), StreamError>;

    /// The upstream stream ended. An error when it ended before its terminal event (the
    /// answer is truncated).
    fn finish(&mut self) -> Result<(), StreamError>;

    /// Token usage seen so far.
    fn usage(&self) -> Option<Usage>;

    /// True once the terminal event (or an error) was seen.
    fn is_done(&self) -> bool;

    /// The upstream's own word for why the answer stopped, verbatim as last seen (`stop`,
    /// `end_turn`, `STOP`, `max_output_tokens`, ...), for logs that keep the provider's
    /// vocabulary; [`Event::Stop`] carries the neutral reason. `None` before any (and for
    /// decoders that do not keep it).
    fn raw_stop_reason(&self) -> Option<&str> {
        None
    }

    /// Whether [`decode`](Self::decode) would read `data` as nothing but one content text
    /// increment: a chunk of the same shape as a plain one read before, which carries no
    /// usage, stop reason, start or error (and leaves the decoder's state as it is). A reader
    /// that does not want text can skip such an event unread. `false` when the decoder cannot
    /// tell cheaply.
    fn only_text(&self, _data: &[u8]) -> bool {
        false
    }
}

/// Writes neutral [`Event`]s as one client dialect's SSE text.
pub trait Encoder {
    /// Writes whatever `event` means for the client into `out` (possibly nothing yet: some
    /// encoders wait for more information). Events after the stream closed are ignored.
    fn encode(&mut self, event: &Event<'_>, out: &mut Vec<u8>);

    /// The upstream ended normally: writes whatever closing events the client still needs
    /// (as if [`Event::Done`] had been seen). Does nothing when already closed.
    fn finish(&mut self, out: &mut Vec<u8>);

    /// Ends the client stream with an in-stream error event.
    fn fail(&mut self, error: &StreamError, out: &mut Vec<u8>) {
        self.encode(&error.to_event(), out);
    }

    /// True once the client stream is complete (nothing more will be written).
    fn is_done(&self) -> bool;
}

/// The largest block / tool index a decoder accepts from an upstream.
pub(crate) const MAX_BLOCKS: usize = 4096;

/// Grows an index table to hold `index`, refusing absurd indexes from a broken upstream.
pub(crate) fn slot<T: Default + Clone>(
    table: &mut Vec<T>,
    index: usize,
) -> Result<&mut T, StreamError> {
    if index >= MAX_BLOCKS {
        return Err(StreamError::upstream(format!(
            "content block index {index} is out of range"
        )));
    }
    if table.len() <= index {
        table.resize(index + 1, T::default());
    }
    table
        .get_mut(index)
        .ok_or_else(|| StreamError::upstream("content block index out of range"))
}

/// Hands out the next 0-based tool index, refusing more than [`MAX_BLOCKS`] calls.
pub(crate) fn next_index(counter: &mut u32) -> Result<u32, StreamError> {
    let index = *counter;
    if usize::try_from(index).map_or(true, |i| i >= MAX_BLOCKS) {
        return Err(StreamError::upstream("too many tool calls in one answer"));
    }
    *counter = index.saturating_add(1);
    Ok(index)
}
