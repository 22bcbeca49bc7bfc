//! Deterministic token counting for the mock: a "token" is a piece of at most four characters
//! of a word, with the whitespace in front of the word carried by its first piece. Joining the
//! pieces gives back the text exactly, so streamed deltas concatenate to the full answer and the
//! usage numbers match the number of pieces sent.

/// Characters per token piece.
pub const PIECE_CHARS: usize = 4;

/// Splits `text` into token pieces whose concatenation is `text`.
pub fn pieces(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0usize;
    let mut in_word_chars = 0usize;
    let mut seen_word = false;
    for (i, c) in text.char_indices() {
        if c.is_whitespace() {
            if seen_word {
                // Whitespace after a word starts the next piece.
                out.push(&text[start..i]);
                start = i;
                seen_word = false;
                in_word_chars = 0;
            }
            continue;
        }
        if in_word_chars == PIECE_CHARS {
            out.push(&text[start..i]);
            start = i;
            in_word_chars = 0;
        }
        in_word_chars += 1;
        seen_word = true;
    }
    if start < text.len() {
        if seen_word || out.is_empty() {
            out.push(&text[start..]);
        } else if let Some(last) = out.pop() {
            // Trailing whitespace: glue it onto the last piece. `last` ends where `start`
            // begins, so the combined slice starts at the beginning of `last`.
            let begin = start - last.len();
            out.push(&text[begin..]);
        }
    }
    out
}

/// Number of tokens in `text` (the number of [`pieces`]).
pub fn count(text: &str) -> u64 {
    pieces(text).len() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_rejoin_exactly() {
        for t in [
            "",
            "  ",
            "hi",
            "Hello world",
            "abcdefghij k  ",
            " lead",
            "héllo wörld!!",
        ] {
            assert_eq!(pieces(t).concat(), t, "{t:?}");
        }
        assert_eq!(pieces("Hello world"), vec!["Hell", "o", " worl", "d"]);
        assert_eq!(pieces("one two  six "), vec!["one", " two", "  six "]);
        assert_eq!(count("Echo: hi"), 3);
        assert_eq!(count(""), 0);
    }
}
