//! Cross-dialect tests: helpers, test-only upstream writers and the round-trip property test.

mod roundtrip;
pub(crate) mod util;
mod writers;
