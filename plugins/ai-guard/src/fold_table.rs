//! The Unicode decompositions keyword folding needs, in one compact table
//! ([`crate::normalize`]): for every character whose compatibility
//! decomposition folding uses, that decomposition, and whether it starts with
//! an ASCII letter or digit.
//!
//! It replaces the `unicode-normalization` crate's tables (about 97 KB of
//! canonical and compatibility data) in the module: folding only asks two
//! questions of a character, so only the characters where the answers are not
//! "itself" are listed (about 32 KB). The table is generated from that crate
//! (a dev-dependency) by the ignored test `regenerate_fold_table`, and the test
//! `table_matches_unicode_normalization` checks every code point against it.

use crate::fold_table_data::{ASTRAL, BMP, PARTS, STARTS};

/// Bit of a [`STARTS`] entry: folding replaces the character by its parts.
const FOLD: u16 = 1 << 15;

/// What folding knows of a non-ASCII character's compatibility decomposition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decomposition {
    /// Fold the character into these characters (its compatibility
    /// decomposition) rather than lower-casing it: the decomposition differs
    /// from the canonical one, or it is a Latin letter with marks.
    pub parts: Option<&'static str>,
    /// The decomposition starts with an ASCII letter or digit.
    pub latin_base: bool,
}

/// The entry of `c`, if it has one.
fn entry(c: char) -> Option<usize> {
    let u = c as u32;
    let low = (u & 0xFFFF) as u16;
    match u >> 16 {
        0 => BMP.binary_search(&low).ok(),
        1 => ASTRAL.binary_search(&low).ok().map(|i| i + BMP.len()),
        _ => None,
    }
}

/// The decomposition facts of `c`.
pub fn decomposition(c: char) -> Decomposition {
    let none = Decomposition {
        parts: None,
        latin_base: false,
    };
    let Some(i) = entry(c) else {
        return none;
    };
    let (Some(&start), Some(&end)) = (STARTS.get(i), STARTS.get(i + 1)) else {
        return none;
    };
    let from = usize::from(start & !FOLD);
    let to = usize::from(end & !FOLD);
    let Some(parts) = PARTS.get(from..to) else {
        return none;
    };
    Decomposition {
        parts: (start & FOLD != 0).then_some(parts),
        latin_base: parts
            .chars()
            .next()
            .is_some_and(|d| d.is_ascii_alphanumeric()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use unicode_normalization::char::{decompose_canonical, decompose_compatible};

    /// What the table must say of `c`, computed with `unicode-normalization`
    /// the way folding used it: `None` when `c` needs no entry.
    fn expected(c: char) -> Option<(bool, String)> {
        let mut compat = Vec::new();
        decompose_compatible(c, |d| compat.push(d));
        let mut canon = Vec::new();
        decompose_canonical(c, |d| canon.push(d));
        let latin = compat.first().is_some_and(|d| d.is_ascii_alphabetic());
        let fold = compat != canon || (latin && compat.len() > 1);
        let base = compat.first().is_some_and(|d| d.is_ascii_alphanumeric());
        (fold || base).then(|| (fold, compat.into_iter().collect()))
    }

    fn non_ascii() -> impl Iterator<Item = char> {
        (0x80u32..=0x10FFFF).filter_map(char::from_u32)
    }

    #[test]
    fn table_matches_unicode_normalization() {
        for c in non_ascii() {
            let got = decomposition(c);
            match expected(c) {
                Some((fold, parts)) => {
                    assert_eq!(got.parts, fold.then_some(parts.as_str()), "{c:?}");
                    assert_eq!(
                        got.latin_base,
                        parts
                            .chars()
                            .next()
                            .is_some_and(|d| d.is_ascii_alphanumeric()),
                        "{c:?}"
                    );
                    if !fold {
                        // Listed for `latin_base` only.
                        assert!(got.latin_base, "{c:?}");
                    }
                }
                None => assert_eq!(got, decomposition('\u{80}'), "{c:?}"),
            }
        }
        assert_eq!(decomposition('\u{80}').parts, None);
        assert!(!decomposition('\u{80}').latin_base);
        assert_eq!(decomposition('ｂ').parts, Some("b"));
        assert_eq!(decomposition('é').parts, Some("e\u{301}"));
        assert_eq!(decomposition('㎒').parts, Some("MHz"));
        assert_eq!(decomposition('𝐛').parts, Some("b"));
        assert!(decomposition('\u{212A}').latin_base);
        assert_eq!(decomposition('\u{212A}').parts, None);
    }

    /// Rewrites `src/fold_table_data.rs` from `unicode-normalization`:
    /// `cargo test --workspace --lib regenerate_fold_table -- --ignored`.
    #[test]
    #[ignore]
    fn regenerate_fold_table() {
        let mut bmp = Vec::new();
        let mut astral = Vec::new();
        let mut starts = Vec::new();
        let mut parts = String::new();
        for c in non_ascii() {
            let Some((fold, p)) = expected(c) else {
                continue;
            };
            let u = c as u32;
            match u >> 16 {
                0 => bmp.push(u as u16),
                1 => astral.push((u & 0xFFFF) as u16),
                _ => panic!("{c:?}: outside planes 0 and 1"),
            }
            let start = u16::try_from(parts.len()).unwrap();
            assert!(start < FOLD);
            starts.push(if fold { start | FOLD } else { start });
            parts.push_str(&p);
        }
        starts.push(u16::try_from(parts.len()).unwrap());
        let list = |v: &[u16]| {
            let mut out = String::new();
            for chunk in v.chunks(16) {
                out.push_str("    ");
                let row: Vec<String> = chunk.iter().map(|x| format!("0x{x:04X},")).collect();
                out.push_str(&row.join(" "));
                out.push('\n');
            }
            out
        };
        let escaped: String = parts.chars().flat_map(char::escape_default).collect();
        let mut src = String::new();
        src.push_str(
            "//! Generated by `fold_table::tests::regenerate_fold_table` from the\n\
             //! `unicode-normalization` crate: do not edit. See [`crate::fold_table`].\n\n",
        );
        src.push_str("/// Listed code points of plane 0 (low 16 bits), ascending.\n");
        src.push_str("#[rustfmt::skip]\n");
        src.push_str(&format!(
            "pub(crate) static BMP: [u16; {}] = [\n",
            bmp.len()
        ));
        src.push_str(&list(&bmp));
        src.push_str("];\n\n/// Listed code points of plane 1 (low 16 bits), ascending.\n");
        src.push_str("#[rustfmt::skip]\n");
        src.push_str(&format!(
            "pub(crate) static ASTRAL: [u16; {}] = [\n",
            astral.len()
        ));
        src.push_str(&list(&astral));
        src.push_str(
            "];\n\n/// Per entry (plane 0 first), the byte offset of its decomposition in\n\
             /// [`PARTS`] (bit 15: folding uses it); one more for the end.\n",
        );
        src.push_str("#[rustfmt::skip]\n");
        src.push_str(&format!(
            "pub(crate) static STARTS: [u16; {}] = [\n",
            starts.len()
        ));
        src.push_str(&list(&starts));
        src.push_str("];\n\n/// The decompositions, concatenated.\n");
        src.push_str(&format!("pub(crate) static PARTS: &str = \"{escaped}\";\n"));
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/fold_table_data.rs");
        std::fs::write(path, src).unwrap();
    }
}
