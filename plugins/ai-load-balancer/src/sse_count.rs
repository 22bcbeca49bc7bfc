//! Counts Server-Sent Events (`data:` lines) across chunk boundaries without buffering, for
//! the time-per-output-token signal (one streamed delta ≈ one token on vLLM and OpenAI).

const NEEDLE: &[u8] = b"data:";

/// An incremental `data:`-line counter; `[DONE]` sentinels are not counted.
#[derive(Debug, Clone, Default)]
pub struct EventCounter {
    count: u64,
    /// Bytes of `data:` matched at the start of the current line (`None` once the line
    /// cannot start with it).
    matched: Option<usize>,
    /// Whether the current line is a counted `data:` line whose payload is being checked for
    /// `[DONE]`.
    done_check: Option<usize>,
    started: bool,
}

const DONE: &[u8] = b" [DONE]";

impl EventCounter {
    /// Feeds a chunk.
    pub fn feed(&mut self, bytes: &[u8]) {
        if !self.started {
            self.started = true;
            self.matched = Some(0);
        }
        for &b in bytes {
            if b == b'\n' || b == b'\r' {
                self.matched = Some(0);
                self.done_check = None;
                continue;
            }
            if let Some(d) = self.done_check {
                // Compare against " [DONE]" (leading space optional).
                let expect = if d == 0 && b != b' ' {
                    DONE.get(1).copied()
                } else {
                    DONE.get(d).copied()
                };
                let step = if d == 0 && b != b' ' { 2 } else { d + 1 };
                if expect == Some(b) {
                    self.done_check = Some(step);
                    if step == DONE.len() {
                        self.count = self.count.saturating_sub(1);
                        self.done_check = None;
                    }
                } else {
                    self.done_check = None;
                }
            }
            if let Some(m) = self.matched {
                if NEEDLE.get(m) == Some(&b) {
                    if m + 1 == NEEDLE.len() {
                        self.count = self.count.saturating_add(1);
                        self.matched = None;
                        self.done_check = Some(0);
                    } else {
                        self.matched = Some(m + 1);
                    }
                } else {
                    self.matched = None;
                }
            }
        }
    }

    /// Events counted so far.
    pub fn count(&self) -> u64 {
        self.count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_split_events_and_skips_done() {
        let text = b"data: {\"a\":1}\n\ndata: {\"a\":2}\n\n: comment data:\n\ndata:{\"a\":3}\n\ndata: [DONE]\n\n";
        for split in 0..text.len() {
            let mut c = EventCounter::default();
            let (a, b) = text.split_at(split);
            c.feed(a);
            c.feed(b);
            assert_eq!(c.count(), 3, "split at {split}");
        }
        let mut c = EventCounter::default();
        c.feed(b"data:[DONE]\n");
        assert_eq!(c.count(), 0);
    }
}
