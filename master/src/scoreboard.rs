//! The shared-memory scoreboard: one `MAP_SHARED|MAP_ANONYMOUS` segment created by the
//! master before the first fork and inherited by every child.
//!
//! Layout (all `#[repr(C)]`, zero-initialised by the kernel, so every atomic starts
//! at 0 = "free"):
//!
//! ```text
//! Header | SlotCell × TOTAL_SLOTS | app region (page aligned, size chosen by the app)
//! ```
//!
//! Invariant: a slot is written by exactly one child (its occupant) except for `pid`,
//! `state` (reset) and `heartbeat_ms` (initialised), which the master writes only
//! while the slot has no live occupant.

use std::io;
use std::num::NonZeroUsize;
use std::ptr::NonNull;
use std::sync::atomic::{fence, AtomicI32, AtomicU32, AtomicU64, Ordering};

use nix::sys::mman::{mmap_anonymous, MapFlags, ProtFlags};

use crate::clock::now_ms;

/// Slots available to scalable workers (worker N uses slot N).
pub const WORKER_SLOTS: usize = 512;
/// Slots for singleton children (the bot runner, …) after the worker slots.
const SINGLETON_SLOTS: usize = 8;
/// Every slot: workers, then singletons.
pub const TOTAL_SLOTS: usize = WORKER_SLOTS + SINGLETON_SLOTS;
const MAGIC: u64 = 0x626c_6974_7a53_4231; // "blitzSB1"
const LAYOUT_VERSION: u32 = 1;
/// Bytes of "METHOD PATH REQUEST-ID" kept for `WORKER TIMEOUT` reports.
pub const SLOT_REQ_BYTES: usize = 248;
const REQ_WORDS: usize = (SLOT_REQ_BYTES + 8) / 8;

/// What a slot's occupant is doing. Stored as a u32 in `SlotCell::state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum SlotState {
    Free = 0,
    /// Forked, not yet accepting.
    Booting = 1,
    /// Accepting connections.
    Ready = 2,
    /// Still serving, but asks the master for a replacement (max-requests reached).
    RetireRequested = 3,
    /// Stopped accepting; finishing what it holds.
    Draining = 4,
}

impl SlotState {
    fn from_u32(v: u32) -> SlotState {
        match v {
            1 => SlotState::Booting,
            2 => SlotState::Ready,
            3 => SlotState::RetireRequested,
            4 => SlotState::Draining,
            _ => SlotState::Free,
        }
    }
}

#[repr(C)]
struct Header {
    /// `MAGIC`, so a reader of a file-backed segment can recognise it.
    magic: u64,
    /// Bumped whenever this layout changes.
    layout_version: u32,
    /// Number of `SlotCell`s that follow.
    slots: u32,
    /// Set by the master when a stop begins: children report not-ready.
    stopping: AtomicU32,
    /// Offset of the application region from the start of the segment.
    app_offset: u64,
    /// Size of the application region in bytes.
    app_len: u64,
}

#[repr(C)]
struct SlotCell {
    /// Occupant pid, 0 when free. Written by the master.
    pid: AtomicI32,
    /// `SlotState` as u32. Master resets it; the occupant advances it.
    state: AtomicU32,
    /// The master's generation counter when the occupant was forked.
    generation: AtomicU64,
    /// CLOCK_MONOTONIC ms of the occupant's last sign of life.
    heartbeat_ms: AtomicU64,
    /// Requests the occupant has completed.
    requests: AtomicU64,
    /// Seqlock over `req`: odd while the occupant is writing.
    req_seq: AtomicU64,
    /// Byte 0 = length, then "METHOD PATH REQUEST-ID"; empty when idle.
    req: [AtomicU64; REQ_WORDS],
}

/// A handle on the shared segment. Copyable: it is only a pointer into memory that
/// lives as long as the process (the mapping is never unmapped).
#[derive(Clone, Copy, Debug)]
pub struct Scoreboard {
    base: NonNull<u8>,
    len: usize,
}

// SAFETY: all shared fields are atomics; the raw pointer is to a mapping that is
// never unmapped.
unsafe impl Send for Scoreboard {}
unsafe impl Sync for Scoreboard {}

impl Scoreboard {
    /// Maps a new zeroed segment with room for `app_len` bytes of application data.
    pub fn create(app_len: usize) -> io::Result<Scoreboard> {
        let page = 4096;
        let head = std::mem::size_of::<Header>() + TOTAL_SLOTS * std::mem::size_of::<SlotCell>();
        let app_offset = head.div_ceil(page) * page;
        let len = app_offset + app_len.div_ceil(page) * page;
        let size = NonZeroUsize::new(len).ok_or_else(|| io::Error::other("empty segment"))?;
        // SAFETY: a fresh anonymous shared mapping; nothing aliases it yet.
        let ptr = unsafe {
            mmap_anonymous(
                None,
                size,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED,
            )?
        };
        let sb = Scoreboard {
            base: ptr.cast(),
            len,
        };
        // SAFETY: the mapping is at least `head` bytes and exclusively ours here.
        unsafe {
            let h = sb.base.as_ptr() as *mut Header;
            (*h).magic = MAGIC;
            (*h).layout_version = LAYOUT_VERSION;
            (*h).slots = TOTAL_SLOTS as u32;
            (*h).app_offset = app_offset as u64;
            (*h).app_len = (len - app_offset) as u64;
        }
        Ok(sb)
    }

    fn header(&self) -> &Header {
        // SAFETY: `create` initialised a Header at the start of the mapping.
        unsafe { &*(self.base.as_ptr() as *const Header) }
    }

    fn cell(&self, slot: usize) -> &SlotCell {
        assert!(slot < TOTAL_SLOTS, "slot {slot} out of range");
        // SAFETY: slot cells follow the header; index checked above.
        unsafe {
            let first = self.base.as_ptr().add(std::mem::size_of::<Header>()) as *const SlotCell;
            &*first.add(slot)
        }
    }

    /// The slot used by singleton child `index` (0-based).
    pub fn singleton_slot(index: usize) -> usize {
        assert!(index < SINGLETON_SLOTS, "too many singleton children");
        WORKER_SLOTS + index
    }

    pub fn slot(&self, slot: usize) -> SlotHandle {
        let _ = self.cell(slot);
        SlotHandle { sb: *self, slot }
    }

    /// The application's region: raw bytes, zeroed at creation, shared by all.
    pub fn app_region(&self) -> (NonNull<u8>, usize) {
        let h = self.header();
        // SAFETY: app_offset < len by construction.
        let p = unsafe { self.base.as_ptr().add(h.app_offset as usize) };
        (NonNull::new(p).unwrap_or(self.base), h.app_len as usize)
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn set_stopping(&self) {
        self.header().stopping.store(1, Ordering::Release);
    }

    pub fn stopping(&self) -> bool {
        self.header().stopping.load(Ordering::Acquire) != 0
    }
}

/// One slot's view, used by its occupant (heartbeat, state, current request) and by
/// the master (reset, inspection).
#[derive(Clone, Copy, Debug)]
pub struct SlotHandle {
    sb: Scoreboard,
    slot: usize,
}

impl SlotHandle {
    fn cell(&self) -> &SlotCell {
        self.sb.cell(self.slot)
    }

    pub fn index(&self) -> usize {
        self.slot
    }

    /// Master: prepares the slot for a new occupant about to be forked.
    pub fn reset(&self, generation: u64) {
        let c = self.cell();
        c.pid.store(0, Ordering::Relaxed);
        c.generation.store(generation, Ordering::Relaxed);
        c.requests.store(0, Ordering::Relaxed);
        c.req[0].store(0, Ordering::Relaxed);
        c.heartbeat_ms.store(now_ms(), Ordering::Relaxed);
        c.state.store(SlotState::Booting as u32, Ordering::Release);
    }

    /// Master: marks the slot free after its occupant was reaped.
    pub fn release(&self) {
        let c = self.cell();
        c.state.store(SlotState::Free as u32, Ordering::Release);
        c.pid.store(0, Ordering::Release);
    }

    pub fn set_pid(&self, pid: i32) {
        self.cell().pid.store(pid, Ordering::Release);
    }

    pub fn pid(&self) -> i32 {
        self.cell().pid.load(Ordering::Acquire)
    }

    pub fn generation(&self) -> u64 {
        self.cell().generation.load(Ordering::Relaxed)
    }

    pub fn state(&self) -> SlotState {
        SlotState::from_u32(self.cell().state.load(Ordering::Acquire))
    }

    pub fn set_state(&self, s: SlotState) {
        self.cell().state.store(s as u32, Ordering::Release);
    }

    /// Occupant: a sign of life; the master kills occupants silent for `--timeout`.
    pub fn heartbeat(&self) {
        self.cell().heartbeat_ms.store(now_ms(), Ordering::Relaxed);
    }

    pub fn heartbeat_ms(&self) -> u64 {
        self.cell().heartbeat_ms.load(Ordering::Relaxed)
    }

    pub fn add_request(&self) -> u64 {
        self.cell().requests.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub fn requests(&self) -> u64 {
        self.cell().requests.load(Ordering::Relaxed)
    }

    /// Occupant: records the request being served (truncated), or clears it with "".
    pub fn set_request(&self, text: &[u8]) {
        let c = self.cell();
        let n = text.len().min(SLOT_REQ_BYTES);
        let mut bytes = [0u8; REQ_WORDS * 8];
        bytes[0] = n as u8;
        bytes[1..=n].copy_from_slice(&text[..n]);
        let words = (n + 1).div_ceil(8);
        // Seqlock write: odd sequence, then a release fence so that a reader that
        // sees any of the new words also sees the odd sequence.
        c.req_seq.fetch_add(1, Ordering::Relaxed);
        fence(Ordering::Release);
        for (i, w) in bytes.chunks_exact(8).take(words).enumerate() {
            let mut a = [0u8; 8];
            a.copy_from_slice(w);
            c.req[i].store(u64::from_le_bytes(a), Ordering::Relaxed);
        }
        c.req_seq.fetch_add(1, Ordering::Release);
    }

    /// Master: reads the request being served; `None` if it was torn 100 times.
    pub fn request(&self) -> Option<String> {
        let c = self.cell();
        for _ in 0..100 {
            let s1 = c.req_seq.load(Ordering::Acquire);
            if s1 % 2 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let mut bytes = [0u8; REQ_WORDS * 8];
            for (i, w) in c.req.iter().enumerate() {
                bytes[i * 8..i * 8 + 8].copy_from_slice(&w.load(Ordering::Relaxed).to_le_bytes());
            }
            fence(Ordering::Acquire);
            if c.req_seq.load(Ordering::Relaxed) == s1 {
                let n = (bytes[0] as usize).min(SLOT_REQ_BYTES);
                return Some(String::from_utf8_lossy(&bytes[1..=n]).into_owned());
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_starts_free_and_app_region_is_page_aligned() {
        let sb = Scoreboard::create(10_000).unwrap();
        assert_eq!(sb.slot(3).state(), SlotState::Free);
        let (p, len) = sb.app_region();
        assert_eq!(p.as_ptr() as usize % 4096, 0);
        assert!(len >= 10_000);
        assert!(!sb.stopping());
    }

    #[test]
    fn request_text_round_trips_and_truncates() {
        let sb = Scoreboard::create(0).unwrap();
        let s = sb.slot(1);
        s.set_request(b"GET /healthz abc123");
        assert_eq!(s.request().as_deref(), Some("GET /healthz abc123"));
        let long = vec![b'x'; 1000];
        s.set_request(&long);
        assert_eq!(s.request().unwrap().len(), SLOT_REQ_BYTES);
        s.set_request(b"");
        assert_eq!(s.request().as_deref(), Some(""));
    }

    #[test]
    fn shared_across_fork() {
        let sb = Scoreboard::create(0).unwrap();
        let slot = sb.slot(5);
        slot.reset(7);
        // SAFETY: test process; the child only touches atomics and exits.
        match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => {
                slot.set_state(SlotState::Ready);
                slot.add_request();
                unsafe { libc::_exit(0) };
            }
            nix::unistd::ForkResult::Parent { child } => {
                nix::sys::wait::waitpid(child, None).unwrap();
            }
        }
        assert_eq!(slot.state(), SlotState::Ready);
        assert_eq!(slot.requests(), 1);
        assert_eq!(slot.generation(), 7);
    }
}
