//! Usage extraction (`aigw::llm::usage`) under every protocol: no panic; `extract` agrees with a
//! one-event accumulator; feeding an event twice changes nothing (values are replaced, never
//! summed); the normalized counters keep their documented relations.
#![no_main]

use aigw::llm::usage::{extract, UsageAccumulator, UsageProtocol};
use libfuzzer_sys::fuzz_target;

const PROTOCOLS: [UsageProtocol; 5] = [
    UsageProtocol::OpenAi,
    UsageProtocol::Anthropic,
    UsageProtocol::Gemini,
    UsageProtocol::Responses,
    UsageProtocol::Bedrock,
];

fuzz_target!(|data: &[u8]| {
    for protocol in PROTOCOLS {
        let once = extract(protocol, data);
        let mut acc = UsageAccumulator::new(protocol);
        assert_eq!(acc.feed(data), once.is_some());
        assert_eq!(acc.usage(), once);
        acc.feed(data);
        assert_eq!(
            acc.usage(),
            once,
            "feeding an event twice changed the usage"
        );

        if let Some(u) = once {
            match protocol {
                UsageProtocol::Anthropic | UsageProtocol::Bedrock => {
                    assert!(u.cached_input <= u.input);
                    assert!(u.cache_creation_input.unwrap_or(0) <= u.input);
                    assert!(u.total >= u.input.saturating_add(u.output));
                }
                UsageProtocol::Gemini => {
                    assert!(u.reasoning <= u.output);
                    assert_eq!(u.cache_creation_input, None);
                }
                UsageProtocol::OpenAi | UsageProtocol::Responses => {}
            }
        }

        // The body as a stream of line-separated events: no panic, and any event that carries
        // usage makes the accumulator report some.
        let mut stream = UsageAccumulator::new(protocol);
        let mut any = false;
        for line in data.split(|&b| b == b'\n') {
            any |= stream.feed(line);
        }
        assert_eq!(stream.usage().is_some(), any);
    }
});
