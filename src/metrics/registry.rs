//! A bounded table of label sets shared by every process: each series (a family
//! and its label values) gets a fixed index, the same in every process, under
//! which its values are kept. Entries are claimed with one compare-and-swap and
//! never removed, so the table holds at most its capacity; a series that finds no
//! room is counted as overflow and not recorded.
//!
//! Claims are also appended to an order list, so a scrape visits the series in use
//! rather than the whole table.

use std::sync::atomic::{AtomicU64, Ordering};

use super::segment::ENTRY_WORDS;

const KEY: usize = 0;
const META: usize = 1;
/// A shared value cell (used by the user registry).
const VALUE: usize = 2;
const LABELS_AT: usize = 3;
pub const LABEL_BYTES: usize = (ENTRY_WORDS - LABELS_AT) * 8;
const READY: u64 = 1 << 63;
/// Entries looked at before giving up (the tables stay at most about half full
/// in use, so a longer run means the table is full).
const PROBES: usize = 64;
/// How long a lookup waits for another process's claim of the same slot.
const CLAIM_WAIT: std::time::Duration = std::time::Duration::from_millis(5);
/// Separates label values in an entry.
const SEP: u8 = 0x1f;

pub struct Registry {
    /// How many claims were appended to `order`.
    count: &'static AtomicU64,
    /// Entry index + 1 of each claim, in claim order (0: being written).
    order: &'static [AtomicU64],
    words: &'static [AtomicU64],
    cap: usize,
}

/// FNV-1a over the family and the label values: the same in every process.
pub fn series_hash(family: u16, labels: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |b: u8| h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    family.to_le_bytes().into_iter().for_each(&mut eat);
    for l in labels {
        l.bytes().for_each(&mut eat);
        eat(SEP);
    }
    h.max(1)
}

fn encode(labels: &[&str]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(LABEL_BYTES);
    for (i, l) in labels.iter().enumerate() {
        if i > 0 {
            out.push(SEP);
        }
        out.extend_from_slice(l.as_bytes());
    }
    (out.len() <= LABEL_BYTES && !labels.iter().any(|l| l.as_bytes().contains(&SEP))).then_some(out)
}

impl Registry {
    /// A registry over `registry_words(cap)` words.
    pub fn new(words: &'static [AtomicU64]) -> Registry {
        let cap = (words.len() - 1) / (ENTRY_WORDS + 1);
        Registry {
            count: &words[0],
            order: &words[1..1 + cap],
            words: &words[1 + cap..],
            cap,
        }
    }

    fn entry(&self, i: usize) -> &'static [AtomicU64] {
        &self.words[i * ENTRY_WORDS..(i + 1) * ENTRY_WORDS]
    }

    /// The shared value cell of entry `i`.
    pub fn value(&self, i: usize) -> &'static AtomicU64 {
        &self.entry(i)[VALUE]
    }

    /// The index of (family, labels), claiming an entry for a new series; `None`
    /// when the table has no room near it (overflow) or the labels do not fit.
    pub fn index(&self, family: u16, labels: &[&str], hash: u64) -> Option<usize> {
        let text = encode(labels)?;
        let start = (hash as usize) % self.cap;
        for p in 0..PROBES.min(self.cap) {
            let i = (start + p) % self.cap;
            let e = self.entry(i);
            let key = e[KEY].load(Ordering::Acquire);
            if key == 0
                && e[KEY]
                    .compare_exchange(0, hash, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
            {
                write_labels(e, &text);
                let meta = READY | (u64::from(family) << 16) | text.len() as u64;
                e[META].store(meta, Ordering::Release);
                let k = self.count.fetch_add(1, Ordering::AcqRel) as usize;
                if let Some(slot) = self.order.get(k) {
                    slot.store(i as u64 + 1, Ordering::Release);
                }
                return Some(i);
            }
            if e[KEY].load(Ordering::Acquire) == hash && self.matches(e, family, &text) {
                return Some(i);
            }
        }
        None
    }

    /// Whether entry `e` (keyed like ours) holds exactly this series; waits for a
    /// claim in progress in another process (a few instructions, unless that
    /// process was descheduled or died there). After `CLAIM_WAIT` it gives up and
    /// the caller looks further: at worst the series gets a second entry, which
    /// the scrape sums with the first.
    fn matches(&self, e: &[AtomicU64], family: u16, text: &[u8]) -> bool {
        let started = std::time::Instant::now();
        let mut tries = 0;
        while started.elapsed() < CLAIM_WAIT {
            let meta = e[META].load(Ordering::Acquire);
            if meta & READY != 0 {
                return (meta >> 16) as u16 == family
                    && (meta & 0xffff) as usize == text.len()
                    && read_labels(e, text.len()) == text;
            }
            super::cells::back_off(&mut tries);
        }
        false
    }

    /// The indices of the entries claimed so far.
    pub fn claimed(&self) -> impl Iterator<Item = usize> + '_ {
        let claimed = (self.count.load(Ordering::Acquire) as usize).min(self.cap);
        self.order[..claimed]
            .iter()
            .filter_map(|o| (o.load(Ordering::Acquire) as usize).checked_sub(1))
    }

    /// Every complete entry: (index, family, label values).
    pub fn entries(&self) -> impl Iterator<Item = (usize, u16, Vec<String>)> + '_ {
        let claimed = (self.count.load(Ordering::Acquire) as usize).min(self.cap);
        self.order[..claimed].iter().filter_map(|o| {
            let i = (o.load(Ordering::Acquire) as usize).checked_sub(1)?;
            let e = self.entry(i);
            let meta = e[META].load(Ordering::Acquire);
            if meta & READY == 0 {
                return None;
            }
            let text = read_labels(e, (meta & 0xffff) as usize);
            let labels = text
                .split(|b| *b == SEP)
                .map(|l| String::from_utf8_lossy(l).into_owned())
                .collect();
            Some((i, (meta >> 16) as u16, labels))
        })
    }
}

fn write_labels(e: &[AtomicU64], text: &[u8]) {
    for (w, chunk) in e[LABELS_AT..].iter().zip(text.chunks(8)) {
        let mut b = [0u8; 8];
        b[..chunk.len()].copy_from_slice(chunk);
        w.store(u64::from_le_bytes(b), Ordering::Relaxed);
    }
}

fn read_labels(e: &[AtomicU64], len: usize) -> Vec<u8> {
    let mut out: Vec<u8> = e[LABELS_AT..]
        .iter()
        .flat_map(|w| w.load(Ordering::Relaxed).to_le_bytes())
        .collect();
    out.truncate(len.min(LABEL_BYTES));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(entries: usize) -> Registry {
        let words: Vec<AtomicU64> = (0..crate::metrics::segment::registry_words(entries))
            .map(|_| AtomicU64::new(0))
            .collect();
        Registry::new(Box::leak(words.into_boxed_slice()))
    }

    #[test]
    fn same_series_same_index_and_round_trip() {
        let r = table(64);
        let l = ["GET", "/api/bot/status", "200"];
        let h = series_hash(0, &l);
        let i = r.index(0, &l, h).unwrap();
        assert_eq!(r.index(0, &l, h), Some(i));
        let other = ["GET", "/api/bot/status", "429"];
        let j = r.index(0, &other, series_hash(0, &other)).unwrap();
        assert_ne!(i, j);
        // A colliding hash with other labels gets its own entry.
        let k = r.index(1, &l, h).unwrap();
        assert_ne!(k, i);
        let all: Vec<_> = r.entries().collect();
        assert_eq!(all.len(), 3);
        assert!(all.contains(&(i, 0, l.iter().map(|s| s.to_string()).collect())));
    }

    #[test]
    fn full_table_and_oversized_labels_overflow() {
        let r = table(4);
        for n in 0..4 {
            let l = [n.to_string()];
            let l: Vec<&str> = l.iter().map(String::as_str).collect();
            assert!(r.index(2, &l, series_hash(2, &l)).is_some());
        }
        assert_eq!(r.index(2, &["x"], series_hash(2, &["x"])), None);
        let long = "x".repeat(LABEL_BYTES + 1);
        let r = table(8);
        assert_eq!(r.index(0, &[&long], 5), None);
    }
}
