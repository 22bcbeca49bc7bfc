//! The local answer store: a fixed table of slots in proxy-wasm shared data (shared by every
//! worker of the gateway process). A key may live in one of two slots (two-choice hashing);
//! inserting replaces an expired or the older entry, so memory stays bounded at
//! `slots × record size` however many distinct questions arrive. Shared data keys cannot be
//! deleted: expired records stay until their slot is reused.

use crate::entry::Entry;
use crate::key::Digest;
use aigw::host::HostError;
use aigw::shared::CasStore;

const MAGIC: &[u8; 4] = b"AIC1";
const HEADER: usize = 4 + 16 + 8;

/// A slot table over a [`CasStore`].
pub struct SlotStore<'a, S: CasStore + ?Sized> {
    store: &'a S,
    prefix: String,
    slots: u32,
}

/// A record found in a slot.
struct Record {
    digest: Digest,
    expires_ms: u64,
    cas: u32,
    body: Vec<u8>,
}

fn parse(bytes: Vec<u8>, cas: u32) -> Option<Record> {
    if bytes.len() < HEADER || bytes.get(..4)? != MAGIC {
        return None;
    }
    let mut digest = [0u8; 16];
    // `get(4..20)` is exactly 16 bytes when present, the length copy_from_slice needs.
    digest.copy_from_slice(bytes.get(4..20)?);
    let expires_ms = u64::from_le_bytes(bytes.get(20..28)?.try_into().ok()?);
    let body = bytes.get(HEADER..)?.to_vec();
    Some(Record {
        digest,
        expires_ms,
        cas,
        body,
    })
}

impl<'a, S: CasStore + ?Sized> SlotStore<'a, S> {
    /// A table of `slots` slots under `namespace`.
    pub fn new(store: &'a S, namespace: &str, slots: u32) -> SlotStore<'a, S> {
        SlotStore {
            store,
            prefix: format!("ai-cache|{namespace}|e|"),
            slots: slots.max(1),
        }
    }

    fn slot_keys(&self, d: &Digest) -> [String; 2] {
        // Constant indexes into a 16-byte array: checked at compile time.
        let a = u64::from_le_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]]);
        let b = u64::from_le_bytes([d[8], d[9], d[10], d[11], d[12], d[13], d[14], d[15]]);
        let n = u64::from(self.slots);
        [
            format!("{}{}", self.prefix, a % n),
            format!("{}{}", self.prefix, b % n),
        ]
    }

    fn read(&self, key: &str) -> Result<Option<Record>, HostError> {
        Ok(self.store.get(key)?.and_then(|(v, cas)| parse(v, cas)))
    }

    /// The live entry stored under `digest`, if any.
    pub fn get(&self, digest: &Digest, now_ms: u64) -> Result<Option<Entry>, HostError> {
        for key in self.slot_keys(digest) {
            if let Some(r) = self.read(&key)? {
                if r.digest == *digest && r.expires_ms > now_ms {
                    return Ok(serde_json::from_slice(&r.body).ok());
                }
            }
        }
        Ok(None)
    }

    /// Stores `entry` under `digest` until `expires_ms`. A concurrent write to the chosen slot
    /// wins (this write is dropped, `Ok(false)`).
    pub fn put(
        &self,
        digest: &Digest,
        entry: &Entry,
        expires_ms: u64,
        now_ms: u64,
    ) -> Result<bool, HostError> {
        let body = serde_json::to_vec(entry).map_err(|_| HostError::BadArgument)?;
        let keys = self.slot_keys(digest);
        let mut choice: Option<(usize, u32, u64)> = None; // (slot, cas, rank: lower is better)
        for (i, key) in keys.iter().enumerate() {
            let (cas, rank) = match self.read(key)? {
                None => (0, 0),
                Some(r) if r.digest == *digest => (r.cas, 0),
                Some(r) if r.expires_ms <= now_ms => (r.cas, 1),
                Some(r) => (r.cas, 2u64.saturating_add(r.expires_ms)),
            };
            if choice.is_none_or(|(_, _, best)| rank < best) {
                choice = Some((i, cas, rank));
            }
        }
        let Some((slot, cas, _)) = choice else {
            return Ok(false);
        };
        let mut rec = Vec::with_capacity(HEADER + body.len());
        rec.extend_from_slice(MAGIC);
        rec.extend_from_slice(digest);
        rec.extend_from_slice(&expires_ms.to_le_bytes());
        rec.extend_from_slice(&body);
        let key = keys.get(slot).ok_or(HostError::BadArgument)?;
        match self.store.set(key, &rec, cas) {
            Ok(()) => Ok(true),
            Err(HostError::CasMismatch) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aigw::llm::Api;
    use aigw::shared::MemStore;

    fn entry(text: &str) -> Entry {
        Entry {
            created_ms: 1,
            dialect: Api::ChatCompletions,
            model: "m".into(),
            content: text.into(),
            finish_reason: "stop".into(),
            input_tokens: 1,
            output_tokens: 1,
            json: None,
        }
    }

    #[test]
    fn get_put_expiry_and_bounded_slots() {
        let mem = MemStore::new();
        let s = SlotStore::new(&mem, "t", 8);
        let d = crate::key::digest(b"a");
        assert_eq!(s.get(&d, 0).unwrap(), None);
        assert!(s.put(&d, &entry("A"), 100, 0).unwrap());
        assert_eq!(s.get(&d, 50).unwrap().unwrap().content, "A");
        assert_eq!(s.get(&d, 100).unwrap(), None, "expired");
        for i in 0..1000u32 {
            let d = crate::key::digest(&i.to_le_bytes());
            s.put(&d, &entry("x"), 10_000, 0).unwrap();
        }
        assert!(mem.len() <= 8, "slots bound memory: {}", mem.len());
        let last = crate::key::digest(&999u32.to_le_bytes());
        assert!(s.get(&last, 1).unwrap().is_some(), "newest entry kept");
    }
}
