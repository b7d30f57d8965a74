//! The local backend: rate-limit windows and guards in the master's shared
//! segment, shared by every worker of the instance and untouched by recycling.
//!
//! Each group has an open-addressed table of window cells (`window`), keyed by a
//! 64-bit keyed hash of the subject (SipHash-1-3 under a random key the master draws
//! before forking, so every worker places keys alike but nobody outside can compute
//! which subjects share cells) and probed linearly; a cell whose window has emptied
//! is taken over by the next new key, so the table holds the keys active in the
//! last window, not every key ever seen. Each group's ceiling is one more cell.
//! The tables' shape is fixed when the master creates the segment and recorded in
//! its header, so every process reads the same layout. A ring holds the limit in
//! force at start; a lower limit after a reload uses its newest part, a higher one
//! is capped at the start value until a restart.
//!
//! New keys are placed under a per-table claim lock, so one key never gets two
//! cells. When every cell near a new key is busy, the key takes the cell of the
//! key with the fewest admissions in its window (of those, the one idle longest),
//! whose count starts afresh: other keys can never get a key refused, as with
//! Redis, where every key has its own window. The trade-off: a busy run can cost a
//! key its count. A key is only evicted when every cell near it holds at least as
//! many admissions, so an attacker resetting their own full window must first
//! fill as many windows near it (unknown cells, the hash being keyed) with as many
//! failures of their own, which costs more attempts than it frees.

use std::hash::Hasher;
use std::sync::atomic::{AtomicU64, Ordering};

use blitz_master::Scoreboard;
use siphasher::sip::SipHasher13;

use super::guards::GuardTable;
use super::window::{self, Locked, Recorded};
use super::{
    Backend, Check, CoordError, Decision, Group, GuardToken, Room, Subject, Ticket, MAX_CHECKS,
};
use crate::config::RateLimits;
use crate::shm;

/// Cells probed for a key before the table counts as full for it.
const PROBES: usize = 16;
/// The most cells of one table, and the bytes one table may take (address space;
/// pages are touched only as keys appear).
const MAX_CELLS: usize = 65_536;
const TABLE_BUDGET: usize = 32 << 20;
const GROUPS: usize = Group::ALL.len();
/// Groups with a ceiling (start, stop, recover, status).
const CEILINGS: usize = 4;
// Each group's (max, cells), then the ceiling.
const _: () = assert!(2 * GROUPS < shm::LIMITS_HEADER_WORDS);

/// How many admissions each table's cells hold, and how many cells it has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    max: [u32; GROUPS],
    cells: [usize; GROUPS],
    ceiling: u32,
}

impl Layout {
    /// `login_pair_max` and `login_ip_max`: the failed-login limits
    /// (`auth::login_limit`), which are not configurable.
    pub fn new(limits: &RateLimits, login_pair_max: u32, login_ip_max: u32) -> Layout {
        let max = [
            limits.start.count,
            limits.stop.count,
            limits.recover.count,
            limits.status.count,
            login_pair_max,
            login_ip_max,
            limits.register.count,
            crate::auth::login_limit::CODE_LIMIT,
        ];
        // As many cells as the budget allows, a power of two for the probe mask.
        let cells = max.map(|m| {
            let fit = (TABLE_BUDGET / (window::cell_words(m) * 8)).clamp(PROBES, MAX_CELLS);
            1usize << fit.ilog2()
        });
        Layout {
            max,
            cells,
            ceiling: limits.global.count,
        }
    }

    /// A claim lock (one cell header), then the cells.
    fn table_words(&self, g: usize) -> usize {
        window::HEADER_WORDS + self.cells[g] * window::cell_words(self.max[g])
    }

    /// Offset (bytes) of group `g`'s table; the ceilings follow the last table.
    fn offset(&self, g: usize) -> usize {
        shm::FIXED_BYTES + (0..g).map(|i| self.table_words(i) * 8).sum::<usize>()
    }

    fn ceiling_offset(&self, g: usize) -> usize {
        self.offset(GROUPS) + g * window::cell_words(self.ceiling) * 8
    }

    /// The application region's size for this layout.
    pub fn region_bytes(&self) -> usize {
        self.ceiling_offset(CEILINGS)
    }

    /// Records the layout in the segment and draws the tables' hash key (the
    /// master, before forking).
    pub fn store(&self, sb: &Scoreboard) -> Result<(), getrandom::Error> {
        let mut key = [0u8; 16];
        getrandom::fill(&mut key)?;
        let region = shm::region(sb);
        for (word, bytes) in region.limits_hash_key.iter().zip(key.chunks_exact(8)) {
            let mut w = [0u8; 8];
            w.copy_from_slice(bytes);
            word.store(u64::from_le_bytes(w), Ordering::Relaxed);
        }
        let header = &region.limits_header;
        for g in 0..GROUPS {
            header[2 * g].store(u64::from(self.max[g]), Ordering::Relaxed);
            header[2 * g + 1].store(self.cells[g] as u64, Ordering::Relaxed);
        }
        header[2 * GROUPS].store(u64::from(self.ceiling), Ordering::Release);
        Ok(())
    }

    /// The layout the master recorded.
    pub fn load(sb: &Scoreboard) -> Layout {
        let header = &shm::region(sb).limits_header;
        let word = |i: usize| header[i].load(Ordering::Acquire);
        Layout {
            max: std::array::from_fn(|g| word(2 * g) as u32),
            cells: std::array::from_fn(|g| word(2 * g + 1) as usize),
            ceiling: word(2 * GROUPS) as u32,
        }
    }
}

/// Which cell an admission went to, to give it back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalTicket {
    entries: [Option<(Place, u64, Recorded)>; MAX_CHECKS],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    Cell { group: usize, index: usize },
    Ceiling(usize),
}

pub struct LocalBackend {
    layout: Layout,
    hash_key: (u64, u64),
    tables: [&'static [AtomicU64]; GROUPS],
    ceilings: [&'static [AtomicU64]; CEILINGS],
    guards: GuardTable,
}

/// The subject's place in a table: SipHash-1-3 under the segment's key, never 0
/// (which marks a free cell).
fn key_hash(hash_key: (u64, u64), subject: &Subject<'_>) -> u64 {
    use std::fmt::Write;
    struct Sip(SipHasher13);
    impl Write for Sip {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            self.0.write(s.as_bytes());
            Ok(())
        }
    }
    let mut h = Sip(SipHasher13::new_with_keys(hash_key.0, hash_key.1));
    let _ = write!(h, "{subject}");
    h.0.finish().max(1)
}

impl LocalBackend {
    /// The backend over `sb`, whose layout the master stored.
    pub fn new(sb: &Scoreboard, guard_timeout_s: u64) -> LocalBackend {
        let layout = Layout::load(sb);
        // SAFETY: each table's bytes are its own per the layout, atomics only.
        let tables = std::array::from_fn(|g| unsafe {
            shm::table(sb, layout.offset(g), layout.table_words(g))
        });
        let ceilings = std::array::from_fn(|g| unsafe {
            shm::table(
                sb,
                layout.ceiling_offset(g),
                window::cell_words(layout.ceiling),
            )
        });
        let key = &shm::region(sb).limits_hash_key;
        LocalBackend {
            layout,
            hash_key: (
                key[0].load(Ordering::Relaxed),
                key[1].load(Ordering::Relaxed),
            ),
            tables,
            ceilings,
            guards: GuardTable::new(sb, guard_timeout_s),
        }
    }

    fn cell(&self, place: Place) -> &'static [AtomicU64] {
        match place {
            Place::Ceiling(g) => self.ceilings[g],
            Place::Cell { group, index } => {
                let w = window::cell_words(self.layout.max[group]);
                let at = window::HEADER_WORDS + index * w;
                &self.tables[group][at..at + w]
            }
        }
    }

    /// The lock under which new keys of table `g` are placed.
    fn claim_lock(&self, g: usize) -> Locked<'static> {
        window::lock(&self.tables[g][..window::HEADER_WORDS])
    }

    /// Locks the cell of `check`'s key; with `claim`, a new key takes a free or
    /// emptied cell, or else evicts the least used key near it, so it is `None`
    /// only without `claim`.
    fn locate(&self, check: &Check<'_>, now: u64, claim: bool) -> Option<(Place, Locked<'static>)> {
        let g = check.group.index();
        if check.subject == Subject::All {
            let place = Place::Ceiling(g.min(CEILINGS - 1));
            return Some((place, window::lock(self.cell(place))));
        }
        let key = key_hash(self.hash_key, &check.subject);
        let cells = self.layout.cells[g];
        let start = (key as usize) & (cells - 1);
        let place = |p: usize| Place::Cell {
            group: g,
            index: (start + p) & (cells - 1),
        };
        let find = || {
            (0..PROBES).find_map(|p| {
                let cell = self.cell(place(p));
                if cell[1].load(Ordering::Relaxed) != key {
                    return None;
                }
                let locked = window::lock(cell);
                (locked.key() == key).then_some((place(p), locked))
            })
        };
        if let Some(found) = find() {
            return Some(found);
        }
        if !claim {
            return None;
        }
        // One claimer at a time per table, looking again under the lock: two
        // processes placing the same new key must end in the same cell.
        let _claiming = self.claim_lock(g);
        if let Some(found) = find() {
            return Some(found);
        }
        // The cell to evict if none is free: fewest admissions in the window, then
        // the longest idle; kept locked so that it cannot change meanwhile.
        let mut victim: Option<((u32, u64), usize, Locked<'static>)> = None;
        for p in 0..PROBES {
            let locked = window::lock(self.cell(place(p)));
            if locked.key() == key {
                return Some((place(p), locked));
            }
            if locked.key() == 0 || locked.idle(now, check.window_ms) {
                locked.clear();
                locked.set_key(key);
                return Some((place(p), locked));
            }
            let rank = locked.usage(now, check.window_ms, check.max);
            if victim.as_ref().is_none_or(|(best, ..)| rank < *best) {
                victim = Some((rank, p, locked));
            }
        }
        let (_, p, locked) = victim?;
        crate::metrics::limit_table_full(check.group.name());
        locked.clear();
        locked.set_key(key);
        Some((place(p), locked))
    }
}

impl Backend for LocalBackend {
    fn admit(&self, checks: &[Check<'_>]) -> Result<Decision, CoordError> {
        let guess = blitz_master::clock::now_ms();
        // Locks in the order of `checks` (subject before ceiling), the same in
        // every process.
        let mut held: [Option<(Place, Locked<'static>)>; MAX_CHECKS] = [None, None];
        for (i, c) in checks.iter().take(MAX_CHECKS).enumerate() {
            held[i] = self.locate(c, guess, true);
        }
        // Read under the locks, so each cell's times only grow.
        let now = blitz_master::clock::now_ms().max(1);
        for (i, (c, h)) in checks.iter().zip(&held).enumerate() {
            let full = h
                .as_ref()
                .and_then(|(_, l)| l.full_for(now, c.window_ms, c.max));
            if let Some(retry_ms) = full {
                return Ok(Decision::Denied { index: i, retry_ms });
            }
        }
        let mut rooms = [Room::default(); MAX_CHECKS];
        let mut entries = [None, None];
        for (i, (c, h)) in checks.iter().zip(&held).enumerate() {
            if let Some((place, l)) = h {
                entries[i] = Some((*place, l.key(), l.record(now)));
                rooms[i] = l.room(now, c.window_ms, c.max);
            }
        }
        Ok(Decision::Allowed {
            rooms,
            ticket: Ticket::Local(LocalTicket { entries }),
        })
    }

    fn refund(&self, _checks: &[Check<'_>], ticket: &Ticket) -> Result<(), CoordError> {
        let Ticket::Local(t) = ticket else {
            return Ok(());
        };
        for (place, key, recorded) in t.entries.iter().flatten() {
            let locked = window::lock(self.cell(*place));
            if locked.key() == *key {
                locked.refund(recorded);
            }
        }
        Ok(())
    }

    fn clear(&self, check: &Check<'_>) -> Result<(), CoordError> {
        if let Some((_, locked)) = self.locate(check, 0, false) {
            locked.clear();
        }
        Ok(())
    }

    fn acquire_guard(&self, uid: i64) -> Result<Option<GuardToken>, CoordError> {
        let now_s = blitz_master::clock::now_ms() / 1000;
        Ok(self.guards.acquire(uid, now_s).map(GuardToken::Local))
    }

    fn release_guard(&self, token: &GuardToken) -> Result<(), CoordError> {
        if let GuardToken::Local(held) = token {
            self.guards.release(held);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse::Rate;
    use std::time::Duration;

    fn rate(count: u32) -> Rate {
        Rate {
            count,
            period: Duration::from_secs(60),
        }
    }

    fn backend() -> (Scoreboard, LocalBackend) {
        let limits = RateLimits {
            start: rate(3),
            stop: rate(3),
            recover: rate(3),
            status: rate(3),
            global: rate(5),
            register: rate(5),
        };
        over(Layout::new(&limits, 5, 20))
    }

    fn over(layout: Layout) -> (Scoreboard, LocalBackend) {
        let sb = Scoreboard::create(layout.region_bytes()).unwrap();
        layout.store(&sb).unwrap();
        let b = LocalBackend::new(&sb, 30);
        (sb, b)
    }

    /// Tables of 64 cells, so that keys sharing a run are quick to find.
    fn small_backend() -> (Scoreboard, LocalBackend) {
        let (_sb, b) = backend();
        let mut layout = b.layout;
        layout.cells = [64; GROUPS];
        over(layout)
    }

    fn login(subject: Subject<'_>) -> [Check<'_>; 1] {
        [Check {
            group: Group::LoginPair,
            subject,
            max: 5,
            window_ms: 60_000,
        }]
    }

    /// `n` e-mails tried from `ip` whose keys start at `target`'s cell: with the
    /// segment's key known (an outsider cannot know it).
    fn colliding(b: &LocalBackend, target: Subject<'_>, ip: &str, n: usize) -> Vec<String> {
        let cell = |s: &Subject<'_>| key_hash(b.hash_key, s) & 63;
        (0..)
            .map(|i| format!("x{i}@example.com"))
            .filter(|e| cell(&Subject::EmailIp(e, ip)) == cell(&target))
            .take(n)
            .collect()
    }

    fn checks(uid: i64) -> [Check<'static>; 2] {
        let c = |subject, max| Check {
            group: Group::Start,
            subject,
            max,
            window_ms: 60_000,
        };
        [c(Subject::User(uid), 3), c(Subject::All, 5)]
    }

    fn allowed(d: &Decision) -> bool {
        matches!(d, Decision::Allowed { .. })
    }

    #[test]
    fn per_subject_and_ceiling() {
        let (_sb, b) = backend();
        let first = b.admit(&checks(1)).unwrap();
        let Decision::Allowed { rooms, .. } = &first else {
            panic!("{first:?}")
        };
        assert_eq!((rooms[0].remaining, rooms[1].remaining), (2, 4));
        assert!(rooms[0].reset_ms > 59_000 && rooms[0].reset_ms <= 60_000);
        assert!(allowed(&b.admit(&checks(1)).unwrap()));
        assert!(allowed(&b.admit(&checks(1)).unwrap()));
        let denied = b.admit(&checks(1)).unwrap();
        assert!(matches!(denied, Decision::Denied { index: 0, retry_ms } if retry_ms > 59_000));
        // Another user has their own window, until the ceiling of 5 is reached.
        assert!(allowed(&b.admit(&checks(2)).unwrap()));
        assert!(allowed(&b.admit(&checks(2)).unwrap()));
        let denied = b.admit(&checks(3)).unwrap();
        assert!(
            matches!(denied, Decision::Denied { index: 1, .. }),
            "{denied:?}"
        );
        // A denial by the ceiling recorded nothing for user 3.
        let only_user = [checks(3)[0]];
        for _ in 0..3 {
            assert!(allowed(&b.admit(&only_user).unwrap()));
        }
    }

    #[test]
    fn refund_and_clear() {
        let (_sb, b) = backend();
        let c = [checks(7)[0]];
        b.admit(&c).unwrap();
        b.admit(&c).unwrap();
        let Decision::Allowed { ticket, .. } = b.admit(&c).unwrap() else {
            panic!()
        };
        assert!(!allowed(&b.admit(&c).unwrap()));
        b.refund(&c, &ticket).unwrap();
        assert!(allowed(&b.admit(&c).unwrap()));
        assert!(!allowed(&b.admit(&c).unwrap()));
        b.clear(&c[0]).unwrap();
        assert!(allowed(&b.admit(&c).unwrap()));
    }

    #[test]
    fn keys_that_share_cells_stay_apart() {
        let (_sb, b) = backend();
        // Far more keys than probes: each is still counted on its own.
        for uid in 0..2_000 {
            let c = [checks(uid)[0]];
            for _ in 0..3 {
                assert!(allowed(&b.admit(&c).unwrap()), "uid {uid}");
            }
            assert!(!allowed(&b.admit(&c).unwrap()), "uid {uid}");
        }
    }

    #[test]
    fn keys_filling_a_run_cannot_get_another_key_refused() {
        let (_sb, b) = small_backend();
        let victim = Subject::EmailIp("admin@admin.com", "127.0.0.2");
        for e in colliding(&b, victim, "10.6.6.6", PROBES) {
            assert!(allowed(
                &b.admit(&login(Subject::EmailIp(&e, "10.6.6.6"))).unwrap()
            ));
        }
        // Every cell of the victim's run is busy: it takes the least used one.
        for _ in 0..5 {
            assert!(allowed(&b.admit(&login(victim)).unwrap()));
        }
        assert!(!allowed(&b.admit(&login(victim)).unwrap()));
    }

    #[test]
    fn a_flood_of_new_keys_does_not_reset_a_full_window() {
        let (_sb, b) = small_backend();
        let guessed = Subject::EmailIp("admin@admin.com", "10.6.6.6");
        for _ in 0..5 {
            assert!(allowed(&b.admit(&login(guessed)).unwrap()));
        }
        // New keys evict the keys with fewer admissions (each other), never the
        // full window, however many come.
        for e in colliding(&b, guessed, "10.7.7.7", 4 * PROBES) {
            assert!(allowed(
                &b.admit(&login(Subject::EmailIp(&e, "10.7.7.7"))).unwrap()
            ));
            assert!(!allowed(&b.admit(&login(guessed)).unwrap()), "{e}");
        }
    }

    #[test]
    fn each_segment_has_its_own_hash_key() {
        let (sb, one) = backend();
        let (_sb, other) = backend();
        let s = Subject::EmailIp("admin@admin.com", "127.0.0.2");
        assert_ne!(one.hash_key, other.hash_key);
        assert_ne!(key_hash(one.hash_key, &s), key_hash(other.hash_key, &s));
        // Every process over one segment places keys alike.
        let again = LocalBackend::new(&sb, 30);
        assert_eq!(key_hash(one.hash_key, &s), key_hash(again.hash_key, &s));
    }

    #[test]
    fn a_lower_limit_uses_the_newest_part_of_the_ring() {
        let (_sb, b) = backend();
        let mut c = [checks(9)[0]];
        c[0].max = 2; // lowered from 3 by a reload
        assert!(allowed(&b.admit(&c).unwrap()));
        let Decision::Allowed { rooms, .. } = b.admit(&c).unwrap() else {
            panic!()
        };
        assert_eq!(rooms[0].remaining, 0);
        assert!(!allowed(&b.admit(&c).unwrap()));
        c[0].max = 10; // raised beyond the start value: capped at 3
        assert!(allowed(&b.admit(&c).unwrap()));
        assert!(!allowed(&b.admit(&c).unwrap()));
    }
}
