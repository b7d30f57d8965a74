//! `X-Request-Id`: the client's (or proxy's) if it is a sane token, else a new one.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

const MAX_LEN: usize = 128;

/// Generates ids unique per worker: a random 64-bit prefix drawn at start plus a
/// counter, so no syscall or RNG is needed per request.
pub struct RequestIds {
    prefix: u64,
    counter: u64,
}

impl RequestIds {
    pub fn new() -> RequestIds {
        // RandomState is seeded from the OS; hashing the pid separates forked
        // siblings that might share a seed.
        let mut h = RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        RequestIds {
            prefix: h.finish(),
            counter: 0,
        }
    }

    /// The id for a request carrying `incoming` (the `X-Request-Id` header, if any).
    pub fn for_request(&mut self, incoming: Option<&[u8]>) -> String {
        match incoming.and_then(sane) {
            Some(id) => id.to_string(),
            None => self.fresh(),
        }
    }

    pub fn fresh(&mut self) -> String {
        self.counter = self.counter.wrapping_add(1);
        format!("{:016x}{:08x}", self.prefix, self.counter as u32)
    }
}

impl Default for RequestIds {
    fn default() -> Self {
        RequestIds::new()
    }
}

/// A token of 1–128 characters from `[A-Za-z0-9._:-]`.
fn sane(v: &[u8]) -> Option<&str> {
    let ok = !v.is_empty()
        && v.len() <= MAX_LEN
        && v.iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
    if ok {
        std::str::from_utf8(v).ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_sane_ids_and_replaces_others() {
        let mut ids = RequestIds::new();
        assert_eq!(ids.for_request(Some(b"abc-123")), "abc-123");
        let long = vec![b'a'; 129];
        assert_ne!(ids.for_request(Some(&long)).len(), 129);
        let bad = ids.for_request(Some(b"a b<script>"));
        assert_eq!(bad.len(), 24);
        assert_ne!(ids.fresh(), ids.fresh());
    }
}
