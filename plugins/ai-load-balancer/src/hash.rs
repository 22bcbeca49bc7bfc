//! FNV-1a hashing for shared-key namespaces and prefix chains.

const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a over a byte sequence.
pub fn fnv1a<'a>(bytes: impl IntoIterator<Item = &'a u8>) -> u64 {
    extend(OFFSET, bytes)
}

/// Continues an FNV-1a hash from `seed` over more bytes.
pub fn extend<'a>(seed: u64, bytes: impl IntoIterator<Item = &'a u8>) -> u64 {
    let mut h = seed;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(PRIME);
    }
    h
}

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
    let mut h = OFFSET;
    for chunk in material.chunks_exact(block).take(max) {
        h = extend(h, chunk);
        out.push(h.max(1));
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
