//! The shared memory that holds every metric value of the instance, created by the
//! master before it forks (so every child maps the same pages) and laid out in
//! fixed regions of 64-bit words:
//!
//! `header | hot registry | histogram registry | user registry | slots`
//!
//! With `PROMETHEUS_MULTIPROC_DIR` the pages are a file there
//! (`blitz-metrics-<master pid>.mmap`, stale ones from earlier runs removed at
//! start), so an outside reader can find them; otherwise they are anonymous.

use std::fs::{self, OpenOptions};
use std::io;
use std::num::NonZeroUsize;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::atomic::AtomicU64;

use nix::sys::mman::{mmap, mmap_anonymous, MapFlags, ProtFlags};

/// Words of one registry entry (key, meta, value, 13 words of label text).
pub const ENTRY_WORDS: usize = 16;
/// Series of the per-process families (HTTP requests, errors).
pub const HOT_CAP: usize = 2048;
/// Histogram series (HTTP durations by method and route).
pub const HIST_CAP: usize = 256;
/// Series with a `user_id` label, one shared cell each.
pub const USER_CAP: usize = 65_536;
/// Fixed cells per process: gauges and the `blitz_*` counters (`families::Static`).
pub const STATIC_CAP: usize = 160;
/// Words of one histogram: seq, 12 buckets, count, sum, spare.
pub const HIST_WORDS: usize = 16;
/// One per scoreboard slot, then the master's, then the retired accumulator.
pub const SLOTS: usize = blitz_master::TOTAL_SLOTS + 2;
pub const MASTER_SLOT: usize = blitz_master::TOTAL_SLOTS;
pub const RETIRED_SLOT: usize = blitz_master::TOTAL_SLOTS + 1;

pub const HEADER_WORDS: usize = 8;
pub const SLOT_WORDS: usize = HOT_CAP + HIST_CAP * HIST_WORDS + STATIC_CAP;

/// Words of a registry of `cap` entries: a count, the claim order, the entries.
pub const fn registry_words(cap: usize) -> usize {
    1 + cap + cap * ENTRY_WORDS
}

pub const HOT_REG: usize = HEADER_WORDS;
pub const HIST_REG: usize = HOT_REG + registry_words(HOT_CAP);
pub const USER_REG: usize = HIST_REG + registry_words(HIST_CAP);
pub const SLOTS_AT: usize = USER_REG + registry_words(USER_CAP);
pub const TOTAL_WORDS: usize = SLOTS_AT + SLOTS * SLOT_WORDS;

const FILE_PREFIX: &str = "blitz-metrics-";
const FILE_SUFFIX: &str = ".mmap";

/// The mapping; lives as long as the process (never unmapped).
pub struct Segment {
    words: &'static [AtomicU64],
    file: Option<PathBuf>,
}

impl Segment {
    /// Maps a zeroed segment, backed by a file in `dir` when given.
    pub fn create(dir: Option<&Path>) -> io::Result<Segment> {
        let bytes = TOTAL_WORDS * 8;
        let len = NonZeroUsize::new(bytes).ok_or_else(|| io::Error::other("empty segment"))?;
        let prot = ProtFlags::PROT_READ | ProtFlags::PROT_WRITE;
        let (ptr, file) = match dir {
            None => {
                // SAFETY: a fresh anonymous shared mapping; nothing else refers to it.
                let p = unsafe { mmap_anonymous(None, len, prot, MapFlags::MAP_SHARED) }?;
                (p, None)
            }
            Some(dir) => {
                let path = prepare_dir(dir)?;
                let f = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)?;
                f.set_len(bytes as u64)?;
                // SAFETY: the file is ours (just created, exclusive) and sized.
                let p = unsafe { mmap(None, len, prot, MapFlags::MAP_SHARED, &f, 0) }?;
                (p, Some(path))
            }
        };
        let base: NonNull<AtomicU64> = ptr.cast();
        // SAFETY: `bytes` of zeroed, 8-aligned (page-aligned) shared memory that is
        // only ever accessed through atomics and never unmapped.
        let words = unsafe { std::slice::from_raw_parts(base.as_ptr(), TOTAL_WORDS) };
        Ok(Segment { words, file })
    }

    pub fn words(&self) -> &'static [AtomicU64] {
        self.words
    }

    /// The backing file, if any (removed by the master when it exits).
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }
}

/// Creates `dir` if missing, removes the segment files of earlier runs (a file
/// whose master is still alive belongs to another instance and stays), and names
/// ours.
fn prepare_dir(dir: &Path) -> io::Result<PathBuf> {
    fs::create_dir_all(dir)?;
    for entry in fs::read_dir(dir)?.flatten() {
        let name = entry.file_name();
        let pid = name
            .to_str()
            .and_then(|n| n.strip_prefix(FILE_PREFIX))
            .and_then(|n| n.strip_suffix(FILE_SUFFIX))
            .and_then(|p| p.parse::<i32>().ok());
        let Some(pid) = pid else { continue };
        let dead = matches!(
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
            Err(nix::errno::Errno::ESRCH)
        );
        if dead {
            // Best effort: a file we may not remove must not stop the start.
            let _ = fs::remove_file(entry.path());
        }
    }
    Ok(dir.join(format!("{FILE_PREFIX}{}{FILE_SUFFIX}", std::process::id())))
}
