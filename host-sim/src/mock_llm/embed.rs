//! Deterministic, similarity-preserving embeddings: a signed feature-hashing of lower-cased word
//! unigrams and bigrams, L2-normalised. The same text always gives the same vector, and texts
//! that share words give vectors with a high cosine similarity.

/// Default number of dimensions when the request does not ask for a size.
pub const DEFAULT_DIMS: usize = 256;

/// Largest number of dimensions a request may ask for.
pub const MAX_DIMS: usize = 8192;

fn fnv1a(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            h ^= 0x1f;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        for b in p.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    // Final avalanche so nearby hashes spread over the dimensions.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h
}

fn add(v: &mut [f32], parts: &[&str], weight: f32) {
    let n = v.len() as u64;
    if n == 0 {
        return;
    }
    let h = fnv1a(parts);
    let idx = (h % n) as usize;
    let sign = if (h >> 63) == 1 { -1.0 } else { 1.0 };
    if let Some(slot) = v.get_mut(idx) {
        *slot += sign * weight;
    }
}

/// Embeds `text` into `dims` dimensions (clamped to 1..=[`MAX_DIMS`]); the result has unit
/// length.
pub fn embed(text: &str, dims: usize) -> Vec<f32> {
    let dims = dims.clamp(1, MAX_DIMS);
    let mut v = vec![0f32; dims];
    let lower = text.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    for w in &words {
        add(&mut v, &[w], 1.0);
    }
    for pair in words.windows(2) {
        add(&mut v, pair, 0.5);
    }
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        for x in &mut v {
            *x /= norm;
        }
    } else if let Some(first) = v.first_mut() {
        // No words at all: a fixed unit vector, so the result is still a valid embedding.
        *first = 1.0;
    }
    v
}

/// Cosine similarity of two vectors of the same length (0 when either is all zeros).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na * nb)
    }
}

/// Base64 (standard alphabet, padded) of the vector as little-endian f32s, which is what
/// OpenAI returns for `encoding_format: "base64"`.
pub fn to_base64(v: &[f32]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b0 = chunk.first().copied().unwrap_or(0);
        let b1 = chunk.get(1).copied().unwrap_or(0);
        let b2 = chunk.get(2).copied().unwrap_or(0);
        let n = (u32::from(b0) << 16) | (u32::from(b1) << 8) | u32::from(b2);
        let sym = |shift: u32| char::from(ALPHABET[((n >> shift) & 63) as usize]);
        out.push(sym(18));
        out.push(sym(12));
        out.push(if chunk.len() > 1 { sym(6) } else { '=' });
        out.push(if chunk.len() > 2 { sym(0) } else { '=' });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_similarity_preserving() {
        let a = embed("How do I reset my password?", 256);
        let b = embed("how do i reset my password", 256);
        let c = embed("How can I reset the password for my account?", 256);
        let d = embed("Best pizza toppings in Naples", 256);
        assert_eq!(a, b);
        assert!((cosine(&a, &a) - 1.0).abs() < 1e-5);
        assert!(cosine(&a, &c) > 0.5, "{}", cosine(&a, &c));
        assert!(cosine(&a, &c) > cosine(&a, &d) + 0.3);
        assert_eq!(embed("", 8).iter().filter(|x| **x != 0.0).count(), 1);
    }

    #[test]
    fn base64_matches_known_encoding() {
        // 1.0f32 = 00 00 80 3f little-endian.
        assert_eq!(to_base64(&[1.0]), "AACAPw==");
    }
}
