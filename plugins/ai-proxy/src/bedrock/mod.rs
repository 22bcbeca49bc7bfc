//! AWS Bedrock: the Converse API translation ([`converse`]), the binary event-stream framing
//! of ConverseStream ([`eventstream`]), SigV4 request signing ([`sigv4`]) and the small
//! hash/checksum primitives they need ([`crypto`]).

pub mod converse;
pub mod crypto;
pub mod eventstream;
pub mod sigv4;
