//! SSE parser: no panic, and the events do not depend on how the input is split into chunks;
//! every input byte ends up in exactly one event's raw bytes or in the trailing leftover.
#![no_main]

use aigw::sse::Parser;
use libfuzzer_sys::fuzz_target;

mod split;

#[derive(Debug, PartialEq, Eq)]
struct Ev {
    raw: Vec<u8>,
    data: Option<Vec<u8>>,
    event_type: String,
    id: Vec<u8>,
    retry: Option<u64>,
}

fn run(chunks: &[&[u8]]) -> (Vec<Ev>, Vec<u8>) {
    let mut parser = Parser::new(1 << 20);
    let mut events = Vec::new();
    let mut push = |ev: aigw::sse::Event<'_>| {
        events.push(Ev {
            raw: ev.raw().to_vec(),
            data: ev.data().map(<[u8]>::to_vec),
            event_type: ev.event_type().to_string(),
            id: ev.id().to_vec(),
            retry: ev.retry(),
        })
    };
    for c in chunks {
        parser
            .feed(c, &mut push)
            .expect("a 1 MiB limit is never reached by fuzz inputs");
    }
    let leftover = parser.finish(&mut push);
    (events, leftover)
}

fuzz_target!(|input: &[u8]| {
    let Some((&seed, body)) = input.split_first() else {
        return;
    };
    let (whole, whole_left) = run(&[body]);

    // Concatenated raw bytes give back the input.
    let mut joined: Vec<u8> = whole.iter().flat_map(|e| e.raw.iter().copied()).collect();
    joined.extend_from_slice(&whole_left);
    assert_eq!(joined, body, "raw bytes lost or duplicated");

    // Split into chunks whose lengths follow the seed (1..=8 bytes, with a xorshift walk).
    let chunks = split::split(body, seed, 8);
    let (split, split_left) = run(&chunks);
    assert_eq!(whole, split, "events depend on the chunking");
    assert_eq!(whole_left, split_left, "leftover depends on the chunking");

    // Byte-at-a-time feeding as the extreme split.
    let bytes: Vec<&[u8]> = body.chunks(1).collect();
    let (single, single_left) = run(&bytes);
    assert_eq!(whole, single, "events differ when fed one byte at a time");
    assert_eq!(whole_left, single_left);

    // A small limit: no panic, and the parser refuses input after failing.
    let mut small = Parser::new(16);
    let mut failed = false;
    for c in &chunks {
        let r = small.feed(c, |_| {});
        if failed {
            assert!(r.is_err(), "a failed parser accepted input");
        }
        failed |= r.is_err();
    }
    assert_eq!(failed, small.has_failed());
});
