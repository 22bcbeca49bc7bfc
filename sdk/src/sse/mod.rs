//! Server-Sent Events: an incremental parser and a writer.
//!
//! [`Parser`] follows the WHATWG event-stream rules (CR, LF and CRLF line endings, a CRLF split
//! across chunks is one line break, `data:` with or without a space, multi-line data joined
//! with `\n`, `:` comment lines, `event`/`id`/`retry` fields, one leading UTF-8 BOM, dispatch on
//! a blank line) and yields the same events however the input is split into chunks. It keeps
//! the raw bytes of every block so a plugin can pass events through unchanged or replace them,
//! hands out borrowed slices (no allocation per event once its buffers have grown), and refuses
//! to hold more than a configured number of pending bytes.
//!
//! ```
//! use aigw::sse::Parser;
//!
//! let mut parser = Parser::new(64 * 1024);
//! let mut seen = Vec::new();
//! for chunk in [&b"data: {\"a\""[..], b":1}\r", b"\n\r\ndata: [DONE]\n\n"] {
//!     parser.feed(chunk, |ev| seen.push(ev.data().unwrap_or_default().to_vec())).unwrap();
//! }
//! assert_eq!(seen, vec![b"{\"a\":1}".to_vec(), b"[DONE]".to_vec()]);
//! ```

mod parser;
mod writer;

pub use parser::{Event, Parser, SseError};
pub use writer::{write_comment, write_data, write_done, write_event, write_retry};
