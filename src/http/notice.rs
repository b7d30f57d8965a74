//! The maintenance flag and banner as each worker sees them: cached in the
//! worker, re-read from the database only when the instance's shared version
//! counter or the cluster's notice generation (`coord::bus`) moved (an admin
//! changed them, in any worker of any instance), when the copy is a second old
//! (someone changed the database directly), or on every request while the
//! cluster's generation is unknown (Redis down). No database read per request
//! otherwise.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use blitz_master::Scoreboard;

use crate::coord::bus::{self, Topic, View};
use crate::coord::Coordinator;
use crate::store::settings::{self, Notice};
use crate::store::{Db, StoreError};

/// The longest a worker trusts its copy without looking at the database.
const MAX_AGE: Duration = Duration::from_secs(1);

/// Text of the 503 when maintenance is on and no banner says more.
pub const DEFAULT_MESSAGE: &str = "The service is under maintenance. Please try again later.";

/// What a copy was read under: the instance's version and the cluster's
/// generation (`None`: unknown, so the copy is not trusted).
type Seen = (u64, Option<u64>, Instant);

pub struct NoticeCache {
    /// Moves when an admin changes the notice, in any worker.
    version: &'static AtomicU64,
    /// The cluster's counters as this worker last read them.
    cluster: View,
    seen: Option<Seen>,
    notice: Notice,
}

impl NoticeCache {
    pub fn new(sb: &Scoreboard) -> NoticeCache {
        NoticeCache {
            version: &crate::shm::region(sb).notice_version,
            cluster: View::default(),
            seen: None,
            notice: Notice::default(),
        }
    }

    /// Takes the cluster's counters as read for this request (`coord::bus`).
    pub fn observe(&mut self, view: View) {
        self.cluster = view;
    }

    /// The current notice.
    pub fn current(&mut self, db: &mut Db) -> Result<&Notice, StoreError> {
        let version = self.version.load(Ordering::Acquire);
        let generation = self.cluster.generation(Topic::Notice);
        let fresh = generation.is_some()
            && self.seen.is_some_and(|(v, g, at)| {
                v == version && g == generation && at.elapsed() < MAX_AGE
            });
        if !fresh {
            self.notice = settings::notice(&*db.conn()?)?;
            self.seen = Some((version, generation, Instant::now()));
        }
        Ok(&self.notice)
    }

    /// Tells every worker of every instance that the notice changed (after the
    /// write committed).
    pub fn changed(&mut self, coord: &Coordinator) {
        self.version.fetch_add(1, Ordering::AcqRel);
        bus::publish(coord, Topic::Notice);
    }
}
