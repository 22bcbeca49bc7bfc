//! Traditional → Simplified Chinese folding for keyword matching: `賭博網站`
//! and `赌博网站` compare equal, whichever form the list or the text uses.
//! Character to character (OpenCC's default candidate), so folded offsets
//! still map back to the original text one character at a time.

#[path = "hanzi_table.rs"]
mod table;

/// The Simplified form of a Traditional character, `None` for every other
/// character (Simplified ones, characters written the same in both, and all
/// non-Han text).
pub fn simplified(c: char) -> Option<char> {
    let u = c as u32;
    // Only Han ideographs (unified, extension A and the astral extensions)
    // are in the table; everything else is answered without a lookup.
    if !(0x3400..=0x9FFF).contains(&u) && u < 0x2_0000 {
        return None;
    }
    if let Ok(small) = u16::try_from(u) {
        if let Ok(at) = table::BMP_TRAD.binary_search(&small) {
            return table::BMP_SIMP
                .get(at)
                .and_then(|&s| char::from_u32(u32::from(s)));
        }
    }
    table::ASTRAL_TRAD
        .binary_search(&u)
        .ok()
        .and_then(|at| table::ASTRAL_SIMP.get(at))
        .and_then(|&s| char::from_u32(s))
}

#[cfg(test)]
mod tests {
    use super::simplified;

    #[test]
    fn traditional_characters_become_simplified() {
        let fold = |s: &str| -> String { s.chars().map(|c| simplified(c).unwrap_or(c)).collect() };
        assert_eq!(fold("賭博網站"), "赌博网站");
        assert_eq!(fold("製作炸彈"), "制作炸弹");
        assert_eq!(fold("代開發票"), "代开发票");
        assert_eq!(fold("他媽的"), "他妈的");
        // Simplified text, shared characters and other scripts are untouched.
        assert_eq!(fold("赌博网站 敏感 café"), "赌博网站 敏感 café");
        assert_eq!(simplified('a'), None);
        assert_eq!(simplified('语'), None);
    }

    #[test]
    fn the_table_is_sorted_and_maps_to_different_characters() {
        assert!(super::table::BMP_TRAD.windows(2).all(|w| w[0] < w[1]));
        assert!(super::table::ASTRAL_TRAD.windows(2).all(|w| w[0] < w[1]));
        for (t, s) in super::table::BMP_TRAD
            .iter()
            .zip(super::table::BMP_SIMP.iter())
        {
            assert_ne!(t, s);
        }
    }
}
