//! Vector databases reached over HTTP, behind the [`VectorService`] trait.
//!
//! A service only builds requests and reads answers; the plugin sends them as call-outs and
//! runs the rest. Adding another database (Milvus, Weaviate, an in-house service) means one
//! more implementation of the trait and one more `semantic.index.type`, nothing else.
//!
//! [`Qdrant`] speaks Qdrant's REST API: one collection holds the vectors of every semantic
//! context, with the context, the exact-cache entry and the expiry in each point's payload.
//! The point id is the entry's 128-bit digest written as a UUID, so storing an answer twice
//! replaces the point.

use crate::key::{hex, Digest};
use crate::semantic::Hit;
use serde_json::{json, Value};

/// An HTTP request for a vector service (sent by the plugin as a call-out).
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceCall {
    /// `GET`, `POST`, `PUT`, ...
    pub method: &'static str,
    /// Path and query.
    pub path: String,
    /// JSON body.
    pub body: Vec<u8>,
}

/// The protocol of a vector database: how to search and how to insert.
pub trait VectorService {
    /// The request that finds the most similar live vector of `context` with similarity at
    /// least `threshold`.
    fn search(&self, context: &Digest, query: &[f32], threshold: f32, now_ms: u64) -> ServiceCall;

    /// Reads a search answer: the hit, if any. `Err` says why the answer is unusable.
    fn parse_search(&self, body: &[u8], threshold: f32, now_ms: u64)
        -> Result<Option<Hit>, String>;

    /// The request that stores `vector` for the answer `entry` of `context` until `expires_ms`.
    fn insert(
        &self,
        context: &Digest,
        entry: &Digest,
        vector: &[f32],
        expires_ms: u64,
    ) -> ServiceCall;
}

/// Qdrant's REST API on one collection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Qdrant {
    /// The collection (created beforehand with the embedding size and cosine distance).
    pub collection: String,
}

/// A digest as a UUID string (Qdrant point ids are integers or UUIDs).
pub fn uuid(d: &Digest) -> String {
    let h = hex(d);
    let part = |a: usize, b: usize| h.get(a..b).unwrap_or("");
    format!(
        "{}-{}-{}-{}-{}",
        part(0, 8),
        part(8, 12),
        part(12, 16),
        part(16, 20),
        part(20, 32)
    )
}

fn parse_digest(s: &str) -> Option<Digest> {
    if s.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

impl VectorService for Qdrant {
    fn search(&self, context: &Digest, query: &[f32], threshold: f32, now_ms: u64) -> ServiceCall {
        let body = json!({
            "vector": query,
            "limit": 1,
            "score_threshold": threshold,
            "with_payload": true,
            "filter": {"must": [
                {"key": "context", "match": {"value": hex(context)}},
                {"key": "expires_ms", "range": {"gt": now_ms}}
            ]}
        });
        ServiceCall {
            method: "POST",
            path: format!("/collections/{}/points/search", self.collection),
            body: body.to_string().into_bytes(),
        }
    }

    fn parse_search(
        &self,
        body: &[u8],
        threshold: f32,
        now_ms: u64,
    ) -> Result<Option<Hit>, String> {
        let v: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
        let results = v
            .get("result")
            .and_then(Value::as_array)
            .ok_or("no `result` array")?;
        let Some(best) = results.first() else {
            return Ok(None);
        };
        let score = best
            .get("score")
            .and_then(Value::as_f64)
            .ok_or("a result without `score`")? as f32;
        let payload = best.get("payload").ok_or("a result without `payload`")?;
        let entry = payload
            .get("entry")
            .and_then(Value::as_str)
            .and_then(parse_digest)
            .ok_or("a payload without a valid `entry`")?;
        let expires = payload
            .get("expires_ms")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        // The service filtered already; check again so a lax service cannot serve stale or
        // weak matches.
        if score < threshold || expires <= now_ms {
            return Ok(None);
        }
        Ok(Some(Hit { entry, score }))
    }

    fn insert(
        &self,
        context: &Digest,
        entry: &Digest,
        vector: &[f32],
        expires_ms: u64,
    ) -> ServiceCall {
        let body = json!({"points": [{
            "id": uuid(entry),
            "vector": vector,
            "payload": {"context": hex(context), "entry": hex(entry), "expires_ms": expires_ms}
        }]});
        ServiceCall {
            method: "PUT",
            path: format!("/collections/{}/points?wait=false", self.collection),
            body: body.to_string().into_bytes(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CTX: Digest = [1; 16];
    const ENTRY: Digest = [0xab; 16];

    fn q() -> Qdrant {
        Qdrant {
            collection: "answers".into(),
        }
    }

    #[test]
    fn search_request_filters_by_context_and_expiry() {
        let call = q().search(&CTX, &[0.5, -0.25], 0.9, 1_000);
        assert_eq!(call.method, "POST");
        assert_eq!(call.path, "/collections/answers/points/search");
        let v: Value = serde_json::from_slice(&call.body).unwrap();
        assert_eq!(v["vector"], json!([0.5, -0.25]));
        assert_eq!(v["limit"], 1);
        assert_eq!(v["filter"]["must"][0]["match"]["value"], hex(&CTX));
        assert_eq!(v["filter"]["must"][1]["range"]["gt"], 1_000);
        assert!((v["score_threshold"].as_f64().unwrap() - 0.9).abs() < 1e-6);
    }

    #[test]
    fn insert_uses_the_entry_as_a_uuid_point_id() {
        let call = q().insert(&CTX, &ENTRY, &[1.0], 5_000);
        assert_eq!(call.method, "PUT");
        assert_eq!(call.path, "/collections/answers/points?wait=false");
        let v: Value = serde_json::from_slice(&call.body).unwrap();
        let p = &v["points"][0];
        assert_eq!(p["id"], "abababab-abab-abab-abab-abababababab");
        assert_eq!(p["payload"]["entry"], hex(&ENTRY));
        assert_eq!(p["payload"]["expires_ms"], 5_000);
    }

    #[test]
    fn search_answers() {
        let hit = format!(
            r#"{{"result":[{{"id":"x","score":0.97,"payload":{{"entry":"{}","expires_ms":9000}}}}],"status":"ok","time":0.001}}"#,
            hex(&ENTRY)
        );
        assert_eq!(
            q().parse_search(hit.as_bytes(), 0.9, 1_000),
            Ok(Some(Hit {
                entry: ENTRY,
                score: 0.97
            }))
        );
        // Below the threshold or expired: no hit even if the service returned one.
        assert_eq!(q().parse_search(hit.as_bytes(), 0.98, 1_000), Ok(None));
        assert_eq!(q().parse_search(hit.as_bytes(), 0.9, 9_000), Ok(None));
        assert_eq!(q().parse_search(br#"{"result":[]}"#, 0.9, 0), Ok(None));
        assert!(q().parse_search(b"oops", 0.9, 0).is_err());
        assert!(q()
            .parse_search(
                br#"{"result":[{"score":1.0,"payload":{"entry":"zz"}}]}"#,
                0.9,
                0
            )
            .is_err());
    }
}
