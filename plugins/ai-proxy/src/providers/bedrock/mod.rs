//! AWS Bedrock: the Converse API translation ([`converse`]), the binary event-stream framing
//! of ConverseStream ([`eventstream`]), SigV4 request signing ([`sigv4`]) and the small
//! hash/checksum primitives they need ([`crypto`]).

pub mod converse;
pub mod crypto;
pub mod eventstream;
pub mod sigv4;

use super::{bad_answer, to_body, Answer, AnswerContext, Body, PathArgs, Protocol, Upstream};
use crate::options::TranslateOptions;
use aigw::llm::openai as oa;
use aigw::llm::stream::{BedrockDecoder, Decoder};
use aigw::llm::UsageProtocol;

/// The Bedrock Converse dialect.
pub struct Bedrock;

impl Upstream for Bedrock {
    fn protocol(&self) -> Protocol {
        Protocol::BedrockConverse
    }

    fn path(&self, p: &PathArgs<'_>) -> String {
        format!("{}{}", p.base, sigv4::bedrock_path(p.model, p.stream))
    }

    fn chat_request(&self, req: &mut oa::ChatCompletionRequest, opts: &TranslateOptions) -> Body {
        to_body(&converse::chat_request_to_converse(req, opts)?)
    }

    fn chat_response(&self, body: &[u8], cx: AnswerContext<'_>) -> Answer {
        let r: converse::ConverseResponse = serde_json::from_slice(body).map_err(bad_answer)?;
        let usage = aigw::llm::usage::extract(UsageProtocol::Bedrock, body);
        Ok((
            converse::converse_response_to_chat(&r, cx.id, cx.model, cx.created)?,
            usage,
        ))
    }

    fn stream_decoder(&self) -> Box<dyn Decoder> {
        Box::new(BedrockDecoder::new())
    }
}
