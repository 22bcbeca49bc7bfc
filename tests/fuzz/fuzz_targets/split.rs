//! Chunk lengths for the targets that check a streaming reader against a whole-input read: a
//! xorshift walk seeded by one input byte, so a crash reproduces from its input alone.
// Each target uses part of it.
#![allow(dead_code)]

/// The walk: each step gives the length of the next chunk.
pub struct Lengths(u32);

impl Lengths {
    /// A walk seeded by `seed` (never zero, as xorshift needs).
    pub fn new(seed: u8) -> Self {
        Lengths(u32::from(seed) | 0x100)
    }

    /// The next length, in `1..=max`.
    pub fn next(&mut self, max: u32) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 17;
        self.0 ^= self.0 << 5;
        (self.0 % max) as usize + 1
    }
}

/// `body` split into chunks of `1..=max` bytes along the walk seeded by `seed`.
pub fn split(body: &[u8], seed: u8, max: u32) -> Vec<&[u8]> {
    let mut lengths = Lengths::new(seed);
    let mut chunks = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        let (a, b) = rest.split_at(lengths.next(max).min(rest.len()));
        chunks.push(a);
        rest = b;
    }
    chunks
}
