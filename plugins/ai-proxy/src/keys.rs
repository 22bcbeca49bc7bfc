//! API-key choice per request and key cooldown shared by every worker.
//!
//! A key that got a cooldown status (401/403/429 by default) is recorded in shared data under
//! `aigw.ai-proxy.cooldown.<provider id>.<key fingerprint>` with the time (ms) until which it is
//! skipped. The fingerprint is a 64-bit FNV-1a hash of the key, so neither the key nor its
//! position appear in shared data or logs. Cooled keys are skipped while another key is
//! available; when every key is cooling, the one that recovers first is used.

use aigw::shared::CasStore;

use aigw::hash::fnv1a;

/// The shared-data key recording a key's cooldown.
pub fn cooldown_key(provider_id: &str, api_key: &str) -> String {
    format!(
        "aigw.ai-proxy.cooldown.{provider_id}.{:016x}",
        fnv1a(api_key.as_bytes())
    )
}

/// The time (ms) until which `api_key` is cooling down, 0 when it is not.
pub fn cooling_until<S: CasStore + ?Sized>(store: &S, provider_id: &str, api_key: &str) -> u64 {
    match store.get(&cooldown_key(provider_id, api_key)) {
        Ok(Some((v, _))) => v
            .get(..8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map_or(0, u64::from_le_bytes),
        _ => 0,
    }
}

/// Puts `api_key` on cooldown until `until_ms` (an unconditional write: the latest cooldown
/// wins, which is what every writer wants).
pub fn cool_down<S: CasStore + ?Sized>(
    store: &S,
    provider_id: &str,
    api_key: &str,
    until_ms: u64,
) -> bool {
    store
        .set(
            &cooldown_key(provider_id, api_key),
            &until_ms.to_le_bytes(),
            0,
        )
        .is_ok()
}

/// Picks the index of the key to use. `start` is where the search begins (round-robin
/// counter, random number or consumer hash); keys cooling at `now_ms` are skipped while
/// another is available. `None` only when there are no keys.
pub fn pick<S: CasStore + ?Sized>(
    store: &S,
    provider_id: &str,
    keys: &[String],
    start: u64,
    now_ms: u64,
) -> Option<usize> {
    let n = keys.len();
    if n == 0 {
        return None;
    }
    let first = usize::try_from(start % n as u64).unwrap_or(0);
    let mut soonest: Option<(u64, usize)> = None;
    for step in 0..n {
        let i = (first + step) % n;
        let key = keys.get(i)?;
        let until = cooling_until(store, provider_id, key);
        if until <= now_ms {
            return Some(i);
        }
        if soonest.is_none_or(|(u, _)| until < u) {
            soonest = Some((until, i));
        }
    }
    soonest.map(|(_, i)| i)
}

/// A small xorshift step for `random` key selection (seeded from the clock and a counter).
pub fn scramble(mut x: u64) -> u64 {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x
}

#[cfg(test)]
mod tests {
    use super::*;
    use aigw::shared::MemStore;

    fn keys() -> Vec<String> {
        vec!["k0".into(), "k1".into(), "k2".into()]
    }

    #[test]
    fn round_robin_skips_cooled_keys_until_they_recover() {
        let s = MemStore::new();
        let k = keys();
        assert_eq!(pick(&s, "p", &k, 0, 1000), Some(0));
        assert_eq!(pick(&s, "p", &k, 4, 1000), Some(1));
        assert!(cool_down(&s, "p", "k1", 5000));
        assert_eq!(pick(&s, "p", &k, 1, 1000), Some(2));
        // Another provider with the same key string is independent.
        assert_eq!(pick(&s, "q", &k, 1, 1000), Some(1));
        // Recovered.
        assert_eq!(pick(&s, "p", &k, 1, 5000), Some(1));
    }

    #[test]
    fn all_cooling_uses_the_first_to_recover() {
        let s = MemStore::new();
        let k = keys();
        cool_down(&s, "p", "k0", 9000);
        cool_down(&s, "p", "k1", 7000);
        cool_down(&s, "p", "k2", 8000);
        assert_eq!(pick(&s, "p", &k, 0, 1000), Some(1));
        assert_eq!(pick(&s, "p", &[], 0, 1000), None);
    }

    #[test]
    fn shared_keys_do_not_contain_the_secret() {
        let k = cooldown_key("openai", "sk-secret-123");
        assert!(!k.contains("secret"));
        assert!(k.starts_with("aigw.ai-proxy.cooldown.openai."));
    }
}
