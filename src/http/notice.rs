//! The maintenance flag and banner as each worker sees them: cached in the
//! worker, re-read from the database only when the shared version counter moved
//! (an admin changed them, in any worker) or the copy is a second old (someone
//! changed the database directly). No database read per request.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use blitz_master::Scoreboard;

use crate::store::settings::{self, Notice};
use crate::store::{Db, StoreError};

/// The longest a worker trusts its copy without looking at the database.
const MAX_AGE: Duration = Duration::from_secs(1);

/// Text of the 503 when maintenance is on and no banner says more.
pub const DEFAULT_MESSAGE: &str = "The service is under maintenance. Please try again later.";

pub struct NoticeCache {
    /// Moves when an admin changes the notice, in any worker.
    version: &'static AtomicU64,
    seen: Option<(u64, Instant)>,
    notice: Notice,
}

impl NoticeCache {
    pub fn new(sb: &Scoreboard) -> NoticeCache {
        NoticeCache {
            version: &crate::shm::region(sb).notice_version,
            seen: None,
            notice: Notice::default(),
        }
    }

    /// The current notice.
    pub fn current(&mut self, db: &mut Db) -> Result<&Notice, StoreError> {
        let version = self.version.load(Ordering::Acquire);
        let fresh = self
            .seen
            .is_some_and(|(v, at)| v == version && at.elapsed() < MAX_AGE);
        if !fresh {
            self.notice = settings::notice(&*db.conn()?)?;
            self.seen = Some((version, Instant::now()));
        }
        Ok(&self.notice)
    }

    /// Tells every worker that the notice changed (after the write committed).
    pub fn changed(&mut self) {
        self.version.fetch_add(1, Ordering::AcqRel);
    }
}
