//! Prefix hash chains (on the SDK's FNV-1a) for prefix-cache affinity.

use aigw::hash::{fnv1a, Fnv1a};

/// The hash chain of `material` cut into `block` -byte blocks: entry `i` hashes blocks
/// `0..=i`, so two inputs share entry `i` exactly when their first `i + 1` blocks are equal.
/// Only whole blocks count (a trailing partial block is ignored) unless the material is
/// shorter than one block, in which case it forms the single entry. At most `max` entries.
pub fn prefix_chain(material: &[u8], block: usize, max: usize) -> Vec<u64> {
    let block = block.max(1);
    let mut out = Vec::new();
    if material.is_empty() {
        return out;
    }
    if material.len() < block {
        out.push(fnv1a(material).max(1));
        return out;
    }
    let mut h = Fnv1a::new();
    for chunk in material.chunks_exact(block).take(max) {
        h.write(chunk);
        out.push(h.finish().max(1));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chains_share_their_common_prefix() {
        let a = prefix_chain(b"aaaabbbbcccc", 4, 16);
        let b = prefix_chain(b"aaaabbbbdddd", 4, 16);
        assert_eq!(a.len(), 3);
        assert_eq!(a[..2], b[..2]);
        assert_ne!(a[2], b[2]);
        // A partial trailing block does not count.
        assert_eq!(prefix_chain(b"aaaabbbbcc", 4, 16), a[..2].to_vec());
        assert_eq!(prefix_chain(b"ab", 4, 16).len(), 1);
        assert!(prefix_chain(b"", 4, 16).is_empty());
        assert_eq!(prefix_chain(b"aaaabbbbcccc", 4, 2).len(), 2);
    }
}
