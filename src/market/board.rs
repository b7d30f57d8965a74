//! The price board (C15): a fixed table of (venue, symbol) slots in the master's
//! shared region, through which the market-data process hands quotes to every
//! other process without a database write per tick.
//!
//! Each slot is atomics only (valid when zeroed): a key claimed by CAS (by any
//! process) and reclaimed only by the market-data process once nobody wanted it
//! for 10 minutes, a "wanted" time that readers refresh, and a quote under a
//! sequence lock (the writer makes the sequence odd while it writes; a reader
//! retries until it reads the same even sequence before and after, yielding
//! rather than giving up while a write is merely in progress). A claim carries
//! its start time, so one left half done by a dead process is probed past and,
//! once stale, taken over by the next new key; when two claims of one key race,
//! the first slot in probe order is the one used. A reclaimed slot stays on the
//! probe chains (a tombstone) until a new key takes it, and its generation is
//! bumped inside the sequence lock, so a reader that found the old key there
//! looks again rather than return the new key's quote. Decimals are
//! stored losslessly as their 16-byte serialisation in two words. When every slot
//! is taken, `want` of a new symbol fails quietly and that symbol is not followed;
//! the refusal is counted on the board, and the market-data process (which has a
//! log) reports it once.

use std::sync::atomic::{fence, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rust_decimal::Decimal;

use super::{Quote, QuoteSource, Venue};

/// Slots of the shared board: far more symbols than an instance trades.
pub const CAPACITY: usize = 512;
/// The longest symbol a slot keys (`1000000MOG/USDT` is 15 bytes).
pub const SYMBOL_BYTES: usize = 24;
const SYMBOL_WORDS: usize = SYMBOL_BYTES / 8;

/// `Slot::state`: free, being claimed, or claimed for venue `v` (`READY + v`).
/// A claim in progress is `CLAIMING` in the low byte and the claim's Unix ms
/// above it, so a claim whose process died mid-way can be told and undone.
const FREE: u64 = 0;
const CLAIMING: u64 = 1;
const READY: u64 = 2;
/// A slot the market-data process reclaimed: free for a new key, but probes
/// go on past it (keys placed beyond it stay reachable). `READY + 0` is no
/// venue, so it never reads as a key.
const TOMB: u64 = READY;
/// A claim (four stores) still in progress after this long belongs to a dead
/// or stopped process: it is reset to free.
const CLAIM_STALE_MS: u64 = 5000;

/// Quote flags: a quote was ever written, funding rate / next time known.
const HAS_QUOTE: u64 = 1;
const HAS_FUNDING: u64 = 2;
const HAS_NEXT_FUNDING: u64 = 4;

/// Spins a reader or writer waits on another process before giving up (a reader)
/// or taking over (a writer, whose predecessor died mid-write).
const MAX_SPINS: u32 = 10_000;
/// How long a reader waits (yielding) for a slot's writer after spinning: a
/// writer descheduled mid-write resumes well within it.
const READ_PATIENCE: Duration = Duration::from_millis(20);

/// One (venue, symbol) of the board.
#[repr(C)]
pub struct Slot {
    state: AtomicU64,
    symbol: [AtomicU64; SYMBOL_WORDS],
    /// When someone last asked for this symbol (Unix ms).
    wanted_ms: AtomicU64,
    seq: AtomicU64,
    /// Bumped (under the sequence lock) each time the slot is reclaimed, so a
    /// reader that found the key before it was re-keyed does not take the new
    /// key's quote for it.
    generation: AtomicU64,
    /// last, bid, ask, mark, funding rate: two words each.
    prices: [AtomicU64; 10],
    next_funding_ms: AtomicU64,
    time_ms: AtomicU64,
    flags: AtomicU64,
}

/// The shared region's table (`shm::Region::prices`).
#[repr(C)]
pub struct Table {
    slots: [Slot; CAPACITY],
    /// `want`s refused because the board was full.
    refused: AtomicU64,
}

enum Slots {
    Shared(&'static Table),
    Heap(Box<[Slot]>, AtomicU64),
}

/// A view of a board; cheap, any process, any thread.
pub struct Board {
    slots: Slots,
}

/// Where a key's probe ended.
enum Probe<'a> {
    Found(&'a Slot),
    /// The key is not there; it would go at this offset, now in this state.
    Vacant(usize, u64),
    Full,
}

/// A followed (venue, symbol) and when it was last wanted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub venue: Venue,
    pub symbol: String,
    pub wanted_ms: i64,
}

impl Board {
    /// The board in `sb`'s shared region: what a child calls to read or follow
    /// prices.
    pub fn of(sb: &blitz_master::Scoreboard) -> Board {
        Board::over(&crate::shm::region(sb).prices)
    }

    /// A board over a shared table.
    pub fn over(table: &'static Table) -> Board {
        Board {
            slots: Slots::Shared(table),
        }
    }

    /// A board of `capacity` slots in this process's heap (tests, tools).
    pub fn heap(capacity: usize) -> Board {
        let slots = (0..capacity.max(1))
            .map(|_| zeroed_slot())
            .collect::<Vec<_>>()
            .into_boxed_slice();
        Board {
            slots: Slots::Heap(slots, AtomicU64::new(0)),
        }
    }

    fn slots(&self) -> &[Slot] {
        match &self.slots {
            Slots::Shared(t) => &t.slots,
            Slots::Heap(s, _) => s,
        }
    }

    fn refused_cell(&self) -> &AtomicU64 {
        match &self.slots {
            Slots::Shared(t) => &t.refused,
            Slots::Heap(_, r) => r,
        }
    }

    /// How many `want`s of a new symbol the full board has refused.
    pub fn refused(&self) -> u64 {
        self.refused_cell().load(Ordering::Relaxed)
    }

    /// Records that `symbol` on `venue` is wanted at `now_ms`; false when the
    /// symbol cannot be followed (too long, or the board is full).
    pub fn want_at(&self, venue: Venue, symbol: &str, now_ms: i64) -> bool {
        let Some(slot) = self.find(venue, symbol, true) else {
            if symbol_words(symbol).is_some() {
                self.refused_cell().fetch_add(1, Ordering::Relaxed);
            }
            return false;
        };
        // Written at most once a second: a hot symbol's readers do not all keep
        // writing the same cache line.
        let now = now_ms.max(0) as u64;
        if slot.wanted_ms.load(Ordering::Relaxed) + 1000 <= now {
            slot.wanted_ms.fetch_max(now, Ordering::Relaxed);
        }
        true
    }

    /// The market-data process: stores `q` as the latest quote of `symbol`.
    /// False when the symbol has no slot (never wanted, or the board is full).
    pub fn publish(&self, venue: Venue, symbol: &str, q: &Quote) -> bool {
        let Some(slot) = self.find(venue, symbol, true) else {
            return false;
        };
        slot.write(q);
        true
    }

    /// Every claimed slot with the time it was last wanted.
    pub fn wanted(&self) -> Vec<Wanted> {
        self.slots()
            .iter()
            .filter_map(|s| {
                let (venue, symbol) = s.key()?;
                Some(Wanted {
                    venue,
                    symbol,
                    wanted_ms: s.wanted_ms.load(Ordering::Relaxed) as i64,
                })
            })
            .collect()
    }

    /// The market-data process (the only writer): frees the slots nobody
    /// wanted since `before_ms` for new keys. Returns how many.
    pub fn reclaim_unwanted(&self, before_ms: i64) -> usize {
        let before = before_ms.max(0) as u64;
        self.slots()
            .iter()
            .filter(|s| {
                let state = s.state.load(Ordering::Acquire);
                is_keyed(state) && s.wanted_ms.load(Ordering::Relaxed) < before
            })
            .filter(|s| s.reclaim(before))
            .count()
    }

    /// The slot of (venue, symbol), claimed if `claim` and not there yet.
    fn find(&self, venue: Venue, symbol: &str, claim: bool) -> Option<&Slot> {
        let words = symbol_words(symbol)?;
        let slots = self.slots();
        let want_state = READY + venue_code(venue);
        let start = (hash(venue, symbol) % slots.len() as u64) as usize;
        // Each retry follows another process's successful claim: bounded.
        for _ in 0..=slots.len() {
            let now = crate::exchange::rest::local_ms().max(0) as u64;
            let (k, state) = match self.probe(start, want_state, &words, now) {
                Probe::Found(slot) => return Some(slot),
                Probe::Vacant(k, state) if claim => (k, state),
                Probe::Vacant(..) | Probe::Full => return None,
            };
            let slot = &slots[(start + k) % slots.len()];
            if let Some(claimed) = slot.claim(state, now, want_state, &words) {
                // A claim that was slow when we probed past it may have
                // finished for the same key: the first slot in probe order is
                // the one everyone uses.
                return Some(
                    self.first_of(start, k, want_state, &words)
                        .unwrap_or(claimed),
                );
            }
        }
        None
    }

    /// Walks the key's probe chain: its slot, or where it would go — the first
    /// reclaimed slot or stale claim on the chain (a claimer died there), else
    /// the free slot that ends the chain. Neither is ever made free again, so
    /// that keys placed past them stay reachable.
    fn probe(
        &self,
        start: usize,
        want_state: u64,
        words: &[u64; SYMBOL_WORDS],
        now: u64,
    ) -> Probe<'_> {
        let slots = self.slots();
        let mut vacant = None;
        for k in 0..slots.len() {
            let slot = &slots[(start + k) % slots.len()];
            let state = slot.settled_state(now);
            if state == FREE {
                return Probe::Vacant(
                    vacant.map_or(k, |(k, _)| k),
                    vacant.map_or(FREE, |(_, s)| s),
                );
            }
            let stale_claim =
                is_claiming(state) && now.saturating_sub(state >> 8) >= CLAIM_STALE_MS;
            if state == TOMB || stale_claim {
                vacant.get_or_insert((k, state));
            } else if state == want_state && slot.symbol_is(words) {
                return Probe::Found(slot);
            }
        }
        match vacant {
            Some((k, state)) => Probe::Vacant(k, state),
            None => Probe::Full,
        }
    }

    /// The first slot holding the key among the `before` probed from `start`.
    fn first_of(
        &self,
        start: usize,
        before: usize,
        want_state: u64,
        words: &[u64; SYMBOL_WORDS],
    ) -> Option<&Slot> {
        let slots = self.slots();
        (0..before)
            .map(|k| &slots[(start + k) % slots.len()])
            .find(|s| s.state.load(Ordering::Acquire) == want_state && s.symbol_is(words))
    }
}

impl QuoteSource for Board {
    fn quote(&self, venue: Venue, symbol: &str) -> Option<Quote> {
        let words = symbol_words(symbol)?;
        let want_state = READY + venue_code(venue);
        // A retry follows a reclaim of the slot found: rare, and bounded.
        for _ in 0..4 {
            let slot = self.find(venue, symbol, false)?;
            let generation = slot.generation.load(Ordering::Acquire);
            if slot.state.load(Ordering::Acquire) != want_state || !slot.symbol_is(&words) {
                continue;
            }
            if let Some(read) = slot.read(generation) {
                return read;
            }
        }
        None
    }

    fn want(&self, venue: Venue, symbol: &str) {
        self.want_at(venue, symbol, crate::exchange::rest::local_ms());
    }
}

fn zeroed_slot() -> Slot {
    Slot {
        state: AtomicU64::new(0),
        symbol: Default::default(),
        wanted_ms: AtomicU64::new(0),
        seq: AtomicU64::new(0),
        generation: AtomicU64::new(0),
        prices: Default::default(),
        next_funding_ms: AtomicU64::new(0),
        time_ms: AtomicU64::new(0),
        flags: AtomicU64::new(0),
    }
}

fn venue_code(v: Venue) -> u64 {
    match v {
        Venue::Bybit => 1,
        Venue::Bingx => 2,
    }
}

fn venue_of(code: u64) -> Option<Venue> {
    Venue::ALL.into_iter().find(|v| venue_code(*v) == code)
}

/// Whether the state is a (venue, symbol) key.
fn is_keyed(state: u64) -> bool {
    state.checked_sub(READY).and_then(venue_of).is_some()
}

fn is_claiming(state: u64) -> bool {
    state & 0xff == CLAIMING
}

/// The symbol zero-padded into words; None if empty or too long.
fn symbol_words(symbol: &str) -> Option<[u64; SYMBOL_WORDS]> {
    let b = symbol.as_bytes();
    if b.is_empty() || b.len() > SYMBOL_BYTES || b.contains(&0) {
        return None;
    }
    let mut buf = [0u8; SYMBOL_BYTES];
    buf[..b.len()].copy_from_slice(b);
    Some(std::array::from_fn(|i| {
        u64::from_le_bytes(buf[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]))
    }))
}

/// FNV-1a of the key: where its probe starts.
fn hash(venue: Venue, symbol: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in std::iter::once(venue_code(venue) as u8).chain(symbol.bytes()) {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn put_decimal(words: &[AtomicU64], d: Decimal) {
    let b = d.serialize();
    let lo = u64::from_le_bytes(b[..8].try_into().unwrap_or([0; 8]));
    let hi = u64::from_le_bytes(b[8..].try_into().unwrap_or([0; 8]));
    words[0].store(lo, Ordering::Relaxed);
    words[1].store(hi, Ordering::Relaxed);
}

fn get_decimal(words: &[AtomicU64]) -> Decimal {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&words[0].load(Ordering::Relaxed).to_le_bytes());
    b[8..].copy_from_slice(&words[1].load(Ordering::Relaxed).to_le_bytes());
    Decimal::deserialize(b)
}

impl Slot {
    /// The state once any fresh claim in progress has finished (a claim is four
    /// stores); a stale claim is returned at once.
    fn settled_state(&self, now: u64) -> u64 {
        let mut spins = 0;
        loop {
            let s = self.state.load(Ordering::Acquire);
            let fresh_claim = is_claiming(s) && now.saturating_sub(s >> 8) < CLAIM_STALE_MS;
            if !fresh_claim || spins >= MAX_SPINS {
                return s;
            }
            spins += 1;
            std::hint::spin_loop();
        }
    }

    /// Claims this slot, found in state `from` (free or a stale claim), for the
    /// key; None if another process took it first, or took our claim over as
    /// stale before we finished.
    fn claim(
        &self,
        from: u64,
        now: u64,
        want_state: u64,
        words: &[u64; SYMBOL_WORDS],
    ) -> Option<&Slot> {
        let claiming = CLAIMING | (now << 8);
        self.state
            .compare_exchange(from, claiming, Ordering::AcqRel, Ordering::Acquire)
            .ok()?;
        for (w, v) in self.symbol.iter().zip(words) {
            w.store(*v, Ordering::Relaxed);
        }
        self.state
            .compare_exchange(claiming, want_state, Ordering::AcqRel, Ordering::Acquire)
            .ok()?;
        Some(self)
    }

    fn symbol_is(&self, words: &[u64; SYMBOL_WORDS]) -> bool {
        self.symbol
            .iter()
            .zip(words)
            .all(|(a, b)| a.load(Ordering::Relaxed) == *b)
    }

    fn key(&self) -> Option<(Venue, String)> {
        let state = self.state.load(Ordering::Acquire);
        let venue = venue_of(state.checked_sub(READY)?)?;
        let bytes: Vec<u8> = self
            .symbol
            .iter()
            .flat_map(|w| w.load(Ordering::Relaxed).to_le_bytes())
            .take_while(|b| *b != 0)
            .collect();
        Some((venue, String::from_utf8(bytes).ok()?))
    }

    /// Takes the write side of the sequence lock: even → odd. A sequence odd for
    /// longer than a write takes belongs to a writer that died mid-write (the
    /// market-data process is the only writer): it is taken over.
    fn lock(&self) -> u64 {
        let mut spins = 0;
        loop {
            let s = self.seq.load(Ordering::Relaxed);
            let odd = s & 1 == 1;
            if !odd || spins >= MAX_SPINS {
                let next = if odd { s + 2 } else { s + 1 };
                if self
                    .seq
                    .compare_exchange(s, next, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    fence(Ordering::Release);
                    return next;
                }
            }
            spins += 1;
            std::hint::spin_loop();
        }
    }

    /// Reclaims the slot if it was last wanted before `before_ms` (checked again
    /// under the lock): the key goes, and the quote with it.
    fn reclaim(&self, before_ms: u64) -> bool {
        let odd = self.lock();
        let unwanted = self.wanted_ms.load(Ordering::Relaxed) < before_ms
            && is_keyed(self.state.load(Ordering::Acquire));
        if unwanted {
            self.state.store(TOMB, Ordering::Release);
            self.generation.fetch_add(1, Ordering::Relaxed);
            self.flags.store(0, Ordering::Relaxed);
            self.wanted_ms.store(0, Ordering::Relaxed);
        }
        self.seq.store(odd + 1, Ordering::Release);
        unwanted
    }

    fn write(&self, q: &Quote) {
        let odd = self.lock();
        let p = &self.prices;
        put_decimal(&p[0..2], q.last);
        put_decimal(&p[2..4], q.bid);
        put_decimal(&p[4..6], q.ask);
        put_decimal(&p[6..8], q.mark);
        put_decimal(&p[8..10], q.funding_rate.unwrap_or_default());
        self.next_funding_ms
            .store(q.next_funding_ms.unwrap_or(0) as u64, Ordering::Relaxed);
        self.time_ms.store(q.time_ms as u64, Ordering::Relaxed);
        let mut flags = HAS_QUOTE;
        if q.funding_rate.is_some() {
            flags |= HAS_FUNDING;
        }
        if q.next_funding_ms.is_some() {
            flags |= HAS_NEXT_FUNDING;
        }
        self.flags.store(flags, Ordering::Relaxed);
        self.seq.store(odd + 1, Ordering::Release);
    }

    /// The quote, consistent; `Some(None)` before the first one, `None` when
    /// the slot was reclaimed since `generation` was read. A slot being written
    /// is waited for (spinning, then yielding), so a reader does not report "no
    /// quote" because it raced the writer; only a writer that held the lock for
    /// all of `READ_PATIENCE` (stopped or died mid-write) makes it `Some(None)`.
    fn read(&self, generation: u64) -> Option<Option<Quote>> {
        let mut spins = 0;
        let mut until = None;
        loop {
            match self.try_read() {
                Some((g, _)) if g != generation => return None,
                Some((_, read)) => return Some(read),
                None => {}
            }
            spins += 1;
            if spins < MAX_SPINS {
                std::hint::spin_loop();
                continue;
            }
            let until = *until.get_or_insert_with(|| Instant::now() + READ_PATIENCE);
            if Instant::now() >= until {
                return Some(None);
            }
            std::thread::yield_now();
        }
    }

    /// One attempt: `None` when a write was under way, else the slot's
    /// generation and its quote if any.
    fn try_read(&self) -> Option<(u64, Option<Quote>)> {
        let before = self.seq.load(Ordering::Acquire);
        if before & 1 == 1 {
            return None;
        }
        let p = &self.prices;
        let flags = self.flags.load(Ordering::Relaxed);
        let generation = self.generation.load(Ordering::Relaxed);
        let q = Quote {
            last: get_decimal(&p[0..2]),
            bid: get_decimal(&p[2..4]),
            ask: get_decimal(&p[4..6]),
            mark: get_decimal(&p[6..8]),
            funding_rate: (flags & HAS_FUNDING != 0).then(|| get_decimal(&p[8..10])),
            next_funding_ms: (flags & HAS_NEXT_FUNDING != 0)
                .then(|| self.next_funding_ms.load(Ordering::Relaxed) as i64),
            time_ms: self.time_ms.load(Ordering::Relaxed) as i64,
        };
        fence(Ordering::Acquire);
        (self.seq.load(Ordering::Relaxed) == before)
            .then(|| (generation, (flags & HAS_QUOTE != 0).then_some(q)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::dec;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    fn quote(p: Decimal, t: i64) -> Quote {
        Quote {
            last: p,
            bid: p - dec!(0.5),
            ask: p + dec!(0.5),
            mark: p,
            funding_rate: Some(dec!(0.0001)),
            next_funding_ms: Some(t + 1000),
            time_ms: t,
        }
    }

    #[test]
    fn a_quote_round_trips_losslessly() {
        let b = Board::heap(8);
        assert!(b.want_at(Venue::Bybit, "BTC/USDT", 1));
        assert_eq!(
            b.quote(Venue::Bybit, "BTC/USDT"),
            None,
            "none before the first"
        );
        let mut q = quote(dec!(64123.456789012345), 5);
        q.funding_rate = Some(dec!(-0.000125));
        b.publish(Venue::Bybit, "BTC/USDT", &q);
        assert_eq!(b.quote(Venue::Bybit, "BTC/USDT"), Some(q));
        q.funding_rate = None;
        q.next_funding_ms = None;
        b.publish(Venue::Bybit, "BTC/USDT", &q);
        assert_eq!(b.quote(Venue::Bybit, "BTC/USDT"), Some(q));
        assert_eq!(b.quote(Venue::Bingx, "BTC/USDT"), None, "venues are apart");
    }

    #[test]
    fn wanted_lists_keys_with_their_last_time() {
        let b = Board::heap(8);
        b.want_at(Venue::Bingx, "ETH/USDT", 10_000);
        b.want_at(Venue::Bingx, "ETH/USDT", 10_500); // within a second: not written
        b.want_at(Venue::Bingx, "ETH/USDT", 12_000);
        b.want_at(Venue::Bybit, "123456789012345678901234", 1);
        assert!(!b.want_at(Venue::Bybit, "1234567890123456789012345", 1));
        let mut w = b.wanted();
        w.sort_by(|a, b| a.symbol.cmp(&b.symbol));
        assert_eq!(w.len(), 2);
        assert_eq!(w[0].symbol, "123456789012345678901234");
        assert_eq!(
            w[1],
            Wanted {
                venue: Venue::Bingx,
                symbol: "ETH/USDT".into(),
                wanted_ms: 12_000
            }
        );
    }

    #[test]
    fn a_full_board_refuses_new_symbols_and_keeps_the_old() {
        let b = Board::heap(4);
        for i in 0..4 {
            assert!(b.want_at(Venue::Bybit, &format!("S{i}/USDT"), 1));
        }
        assert!(!b.want_at(Venue::Bybit, "NEW/USDT", 1));
        assert_eq!(b.refused(), 1);
        assert!(!b.publish(Venue::Bybit, "NEW/USDT", &quote(dec!(1), 1)));
        assert!(b.want_at(Venue::Bybit, "S3/USDT", 1));
        assert!(b.publish(Venue::Bybit, "S3/USDT", &quote(dec!(3), 1)));
        assert_eq!(
            b.quote(Venue::Bybit, "S3/USDT").map(|q| q.last),
            Some(dec!(3))
        );
    }

    #[test]
    fn racing_claims_of_one_key_share_one_slot() {
        let b = Arc::new(Board::heap(64));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let b = b.clone();
                std::thread::spawn(move || {
                    for i in 0..32 {
                        b.want_at(Venue::Bybit, &format!("K{i}/USDT"), 1);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(b.wanted().len(), 32);
    }

    /// A writer publishes quotes whose every field derives from one counter; readers
    /// on other threads must never see fields of two different writes.
    #[test]
    fn readers_never_see_a_torn_quote() {
        let b = Arc::new(Board::heap(4));
        b.want_at(Venue::Bybit, "BTC/USDT", 1);
        let stop = Arc::new(AtomicBool::new(false));
        let writer = {
            let (b, stop) = (b.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut n = 1i64;
                while !stop.load(Ordering::Relaxed) {
                    b.publish(Venue::Bybit, "BTC/USDT", &quote(Decimal::from(n), n));
                    n += 1;
                }
                n
            })
        };
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let b = b.clone();
                std::thread::spawn(move || {
                    let mut seen = 0u64;
                    let mut last_t = 0;
                    for _ in 0..200_000 {
                        if let Some(q) = b.quote(Venue::Bybit, "BTC/USDT") {
                            assert_eq!(q.last, Decimal::from(q.time_ms), "torn: {q:?}");
                            assert_eq!(q.bid, q.last - dec!(0.5));
                            assert_eq!(q.ask, q.last + dec!(0.5));
                            assert_eq!(q.next_funding_ms, Some(q.time_ms + 1000));
                            assert!(q.time_ms >= last_t, "went back in time");
                            last_t = q.time_ms;
                            seen += 1;
                        }
                    }
                    seen
                })
            })
            .collect();
        let seen: u64 = readers.into_iter().map(|r| r.join().unwrap()).sum();
        stop.store(true, Ordering::Relaxed);
        let written = writer.join().unwrap();
        assert!(seen > 0 && written > 1, "seen {seen}, written {written}");
    }

    #[test]
    fn a_writer_that_died_mid_write_is_taken_over() {
        let b = Board::heap(2);
        b.want_at(Venue::Bybit, "BTC/USDT", 1);
        let slot = b.find(Venue::Bybit, "BTC/USDT", false).unwrap();
        slot.seq.store(7, Ordering::Relaxed); // odd: a write that never finished
        assert_eq!(b.quote(Venue::Bybit, "BTC/USDT"), None);
        b.publish(Venue::Bybit, "BTC/USDT", &quote(dec!(2), 2));
        assert_eq!(
            b.quote(Venue::Bybit, "BTC/USDT").map(|q| q.last),
            Some(dec!(2))
        );
    }

    #[test]
    fn a_reader_waits_for_a_slow_write_instead_of_reporting_no_quote() {
        let b = Arc::new(Board::heap(2));
        b.want_at(Venue::Bybit, "BTC/USDT", 1);
        b.publish(Venue::Bybit, "BTC/USDT", &quote(dec!(1), 1));
        let slot = b.find(Venue::Bybit, "BTC/USDT", false).unwrap();
        let odd = slot.lock(); // a writer descheduled mid-write
        let reader = {
            let b = b.clone();
            std::thread::spawn(move || b.quote(Venue::Bybit, "BTC/USDT"))
        };
        // Longer than the old 10,000 spins, well within the patience.
        std::thread::sleep(Duration::from_millis(2));
        slot.seq.store(odd + 1, Ordering::Release);
        let q = reader.join().unwrap();
        assert_eq!(q.map(|q| q.last), Some(dec!(1)));
    }

    #[test]
    fn a_claim_left_half_done_is_probed_past_and_taken_over_once_stale() {
        let b = Board::heap(4);
        let start = (hash(Venue::Bybit, "BTC/USDT") % 4) as usize;
        let now = crate::exchange::rest::local_ms() as u64;
        // A process died while claiming the key's first slot, just now.
        b.slots()[start]
            .state
            .store(CLAIMING | (now << 8), Ordering::Relaxed);
        assert!(b.want_at(Venue::Bybit, "BTC/USDT", 1), "probed past it");
        let taken = b.find(Venue::Bybit, "BTC/USDT", false).unwrap();
        assert!(!std::ptr::eq(taken, &b.slots()[start]));
        // Long ago: taken over by the next new key on the chain; the key
        // placed past it stays reachable.
        b.slots()[start].state.store(
            CLAIMING | ((now - CLAIM_STALE_MS - 1) << 8),
            Ordering::Relaxed,
        );
        let other = (0..100)
            .map(|i| format!("S{i}/USDT"))
            .find(|s| (hash(Venue::Bybit, s) % 4) as usize == start)
            .unwrap();
        assert!(b.want_at(Venue::Bybit, &other, 1));
        let slot = b.find(Venue::Bybit, &other, false).unwrap();
        assert!(
            std::ptr::eq(slot, &b.slots()[start]),
            "the stale claim reused"
        );
    }

    #[test]
    fn a_duplicate_claim_defers_to_the_first_slot_of_the_key() {
        let b = Board::heap(4);
        let start = (hash(Venue::Bybit, "BTC/USDT") % 4) as usize;
        // As if a slow claimer finished the first slot after we probed past it.
        let (first, second) = (&b.slots()[start], &b.slots()[(start + 1) % 4]);
        let words = symbol_words("BTC/USDT").unwrap();
        let ready = READY + venue_code(Venue::Bybit);
        second.claim(FREE, 1, ready, &words).unwrap();
        first.claim(FREE, 1, ready, &words).unwrap();
        assert!(std::ptr::eq(
            b.first_of(start, 1, ready, &words).unwrap(),
            first
        ));
        b.publish(Venue::Bybit, "BTC/USDT", &quote(dec!(3), 3));
        assert_eq!(first.read(0), Some(Some(quote(dec!(3), 3))));
    }

    #[test]
    fn unwanted_slots_are_reclaimed_for_new_keys_and_chains_stay_reachable() {
        let b = Board::heap(2);
        let home = |s: &str| hash(Venue::Bybit, s) % 2;
        // B's probe starts at A's slot and goes past it.
        let a = "A/USDT";
        let same: Vec<String> = (0..100)
            .map(|i| format!("S{i}/USDT"))
            .filter(|s| home(s) == home(a))
            .take(2)
            .collect();
        let (bk, ck) = (same[0].as_str(), same[1].as_str());
        assert!(b.want_at(Venue::Bybit, a, 1000));
        assert!(b.want_at(Venue::Bybit, bk, 5000));
        b.publish(Venue::Bybit, a, &quote(dec!(1), 1));
        b.publish(Venue::Bybit, bk, &quote(dec!(2), 2));
        assert!(!b.want_at(Venue::Bybit, ck, 6000), "full");
        assert_eq!(b.reclaim_unwanted(3000), 1, "A only");
        assert_eq!(b.quote(Venue::Bybit, a), None, "gone with its key");
        assert_eq!(
            b.quote(Venue::Bybit, bk).map(|q| q.last),
            Some(dec!(2)),
            "reachable past the reclaimed slot"
        );
        assert!(b.want_at(Venue::Bybit, ck, 6000), "reclaimed slot reused");
        assert_eq!(b.quote(Venue::Bybit, ck), None, "no quote of A's");
        let keys: Vec<String> = b.wanted().into_iter().map(|w| w.symbol).collect();
        assert_eq!(keys.len(), 2, "{keys:?}");
        assert!(keys.contains(&bk.to_string()) && keys.contains(&ck.to_string()));
    }

    #[test]
    fn a_reader_of_a_reclaimed_and_rekeyed_slot_does_not_take_the_new_quote() {
        let b = Board::heap(1);
        b.want_at(Venue::Bybit, "A/USDT", 1000);
        b.publish(Venue::Bybit, "A/USDT", &quote(dec!(1), 1));
        let slot = b.find(Venue::Bybit, "A/USDT", false).unwrap();
        // A reader found A's slot and its generation...
        let generation = slot.generation.load(Ordering::Acquire);
        // ...then the slot was reclaimed and re-keyed to B, with B's quote.
        assert_eq!(b.reclaim_unwanted(2000), 1);
        b.want_at(Venue::Bybit, "B/USDT", 3000);
        b.publish(Venue::Bybit, "B/USDT", &quote(dec!(2), 2));
        assert_eq!(slot.read(generation), None, "told to look again");
        assert_eq!(b.quote(Venue::Bybit, "A/USDT"), None);
        assert_eq!(
            b.quote(Venue::Bybit, "B/USDT").map(|q| q.last),
            Some(dec!(2))
        );
    }
}
