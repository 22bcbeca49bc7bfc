//! Semantic lookup: the embeddings call-out (OpenAI-compatible), cosine similarity, and the
//! vector index behind the [`VectorIndex`] trait.
//!
//! The local index is a ring of `max_vectors` records in shared data, searched linearly: every
//! lookup reads every record (`max_vectors × dims × 4` bytes copied out of shared data). That
//! is fine for a few thousand vectors; beyond that, implement [`VectorIndex`] over a real
//! vector database.

use crate::key::Digest;
use aigw::host::HostError;
use aigw::shared::{counter_add, CasStore};
use serde_json::{json, Value};

/// A stored question vector, pointing at the exact-cache entry that holds its answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// The exact key of the answer.
    pub entry: Digest,
    /// Cosine similarity to the query.
    pub score: f32,
}

/// A store of question vectors. Implementations must bound their memory.
pub trait VectorIndex {
    /// The most similar live vector stored under `context` with similarity ≥ `threshold`.
    fn search(
        &self,
        context: &Digest,
        query: &[f32],
        threshold: f32,
        now_ms: u64,
    ) -> Result<Option<Hit>, HostError>;

    /// Stores `vector` for the answer `entry` under `context` until `expires_ms`.
    fn insert(
        &self,
        context: &Digest,
        entry: &Digest,
        vector: &[f32],
        expires_ms: u64,
    ) -> Result<(), HostError>;
}

/// Cosine similarity; 0 for mismatched lengths or zero vectors.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() || a.is_empty() {
        return 0.0;
    }
    let (mut dot, mut na, mut nb) = (0f32, 0f32, 0f32);
    for (x, y) in a.iter().zip(b) {
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    if na == 0.0 || nb == 0.0 {
        return 0.0;
    }
    dot / (na.sqrt() * nb.sqrt())
}

/// The body of an embeddings request for `text`.
pub fn request_body(model: &str, text: &str) -> Vec<u8> {
    json!({"model": model, "input": text})
        .to_string()
        .into_bytes()
}

/// The first vector of an OpenAI embeddings response (`data[0].embedding`), at most
/// `max_dims` long.
pub fn parse_response(body: &[u8], max_dims: usize) -> Option<Vec<f32>> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let arr = v.get("data")?.get(0)?.get("embedding")?.as_array()?;
    if arr.is_empty() || arr.len() > max_dims {
        return None;
    }
    arr.iter()
        .map(|x| x.as_f64().map(|f| f as f32))
        .collect::<Option<Vec<f32>>>()
}

const MAGIC: &[u8; 4] = b"AIV1";
const HEADER: usize = 4 + 16 + 16 + 8;

/// The local index: a ring of records in shared data.
pub struct LocalIndex<'a, S: CasStore + ?Sized> {
    store: &'a S,
    prefix: String,
    capacity: u32,
}

impl<'a, S: CasStore + ?Sized> LocalIndex<'a, S> {
    /// A ring of `capacity` vectors under `namespace`.
    pub fn new(store: &'a S, namespace: &str, capacity: u32) -> LocalIndex<'a, S> {
        LocalIndex {
            store,
            prefix: format!("ai-cache|{namespace}|v|"),
            capacity: capacity.max(1),
        }
    }
}

impl<S: CasStore + ?Sized> VectorIndex for LocalIndex<'_, S> {
    fn search(
        &self,
        context: &Digest,
        query: &[f32],
        threshold: f32,
        now_ms: u64,
    ) -> Result<Option<Hit>, HostError> {
        let mut best: Option<Hit> = None;
        let mut vec = Vec::with_capacity(query.len());
        for i in 0..self.capacity {
            let Some((bytes, _)) = self.store.get(&format!("{}{i}", self.prefix))? else {
                // The ring fills in order: the first absent slot ends the used part.
                break;
            };
            if bytes.len() < HEADER || bytes.get(..4) != Some(MAGIC.as_slice()) {
                continue;
            }
            if bytes.get(4..20) != Some(context.as_slice()) {
                continue;
            }
            let expires = bytes
                .get(36..44)
                .and_then(|b| b.try_into().ok())
                .map_or(0, u64::from_le_bytes);
            if expires <= now_ms {
                continue;
            }
            vec.clear();
            // chunks_exact(4) yields 4-byte slices only, so indexes 0..4 are in bounds.
            for c in bytes.get(HEADER..).unwrap_or(&[]).chunks_exact(4) {
                vec.push(f32::from_le_bytes([c[0], c[1], c[2], c[3]]));
            }
            let score = cosine(query, &vec);
            if score >= threshold && best.as_ref().is_none_or(|b| score > b.score) {
                let mut entry = [0u8; 16];
                // `get(20..36)` is exactly 16 bytes when present.
                if let Some(e) = bytes.get(20..36) {
                    entry.copy_from_slice(e);
                }
                best = Some(Hit { entry, score });
            }
        }
        Ok(best)
    }

    fn insert(
        &self,
        context: &Digest,
        entry: &Digest,
        vector: &[f32],
        expires_ms: u64,
    ) -> Result<(), HostError> {
        let n = counter_add(self.store, &format!("{}next", self.prefix), 1)
            .map_err(|_| HostError::CasMismatch)?;
        let slot = n.saturating_sub(1) % u64::from(self.capacity);
        let mut rec = Vec::with_capacity(HEADER + vector.len() * 4);
        rec.extend_from_slice(MAGIC);
        rec.extend_from_slice(context);
        rec.extend_from_slice(entry);
        rec.extend_from_slice(&expires_ms.to_le_bytes());
        for x in vector {
            rec.extend_from_slice(&x.to_le_bytes());
        }
        self.store.set(&format!("{}{slot}", self.prefix), &rec, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aigw::shared::MemStore;

    #[test]
    fn cosine_basics() {
        assert!((cosine(&[1.0, 0.0], &[1.0, 0.0]) - 1.0).abs() < 1e-6);
        assert_eq!(cosine(&[1.0, 0.0], &[0.0, 1.0]), 0.0);
        assert_eq!(cosine(&[1.0], &[1.0, 2.0]), 0.0);
        assert_eq!(cosine(&[0.0], &[0.0]), 0.0);
    }

    #[test]
    fn parse_embeddings() {
        let v = parse_response(br#"{"data":[{"embedding":[0.5,-0.25]}]}"#, 8).unwrap();
        assert_eq!(v, vec![0.5, -0.25]);
        assert_eq!(
            parse_response(br#"{"data":[{"embedding":[1,2,3]}]}"#, 2),
            None
        );
        assert_eq!(parse_response(b"{}", 8), None);
    }

    #[test]
    fn ring_search_context_threshold_and_bound() {
        let mem = MemStore::new();
        let idx = LocalIndex::new(&mem, "t", 4);
        let ctx = [1u8; 16];
        idx.insert(&ctx, &[7u8; 16], &[1.0, 0.0], 100).unwrap();
        idx.insert(&ctx, &[8u8; 16], &[0.0, 1.0], 100).unwrap();
        let hit = idx.search(&ctx, &[0.9, 0.1], 0.9, 0).unwrap().unwrap();
        assert_eq!(hit.entry, [7u8; 16]);
        assert_eq!(idx.search(&ctx, &[0.7, 0.7], 0.9, 0).unwrap(), None);
        assert_eq!(idx.search(&[2u8; 16], &[1.0, 0.0], 0.5, 0).unwrap(), None);
        assert_eq!(
            idx.search(&ctx, &[1.0, 0.0], 0.5, 100).unwrap(),
            None,
            "expired"
        );
        for _ in 0..10 {
            idx.insert(&ctx, &[9u8; 16], &[0.0, 1.0], 100).unwrap();
        }
        assert!(mem.len() <= 5, "ring of 4 plus its counter: {}", mem.len());
        assert_eq!(
            idx.search(&ctx, &[1.0, 0.0], 0.9, 0).unwrap(),
            None,
            "overwritten"
        );
    }
}
