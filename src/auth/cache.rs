//! Each worker's cache of resolved credentials, so that a client polling with the
//! same token or session does not cost a database read per request.
//!
//! An entry is trusted for at most a second (a change made outside the server,
//! such as `blitz user set-password`, shows within that), and not at all once the
//! instance's shared epoch or the cluster's credentials generation (`coord::bus`)
//! moved: every request that can revoke or change credentials (logout, password
//! change or reset, token deletion, an admin's change to a user) moves both after
//! it committed, so revocation takes effect in every worker of this instance on
//! its next request, and in every other instance's within `bus::POLL`. While the
//! cluster's generation is unknown (Redis down), nothing is trusted.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use blitz_master::Scoreboard;

use super::Identity;
use crate::coord::bus::{self, Topic, View};
use crate::coord::Coordinator;

const MAX_AGE: Duration = Duration::from_secs(1);
/// Entries kept before the cache starts afresh (bounds memory per worker).
const MAX_ENTRIES: usize = 16_384;

/// What an entry was resolved under: the instance's epoch and the cluster's
/// credentials generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    local: u64,
    cluster: u64,
}

pub struct IdentityCache {
    epoch: &'static AtomicU64,
    /// The cluster's counters as this worker last read them.
    cluster: View,
    entries: HashMap<String, (Identity, Stamp, Instant)>,
}

impl IdentityCache {
    pub fn new(sb: &Scoreboard) -> IdentityCache {
        IdentityCache {
            epoch: &crate::shm::region(sb).auth_epoch,
            cluster: View::default(),
            entries: HashMap::new(),
        }
    }

    /// Takes the cluster's counters as read for this request (`coord::bus`).
    pub fn observe(&mut self, view: View) {
        self.cluster = view;
    }

    /// The identity cached under `key`, if still trusted.
    pub fn get(&self, key: &str) -> Option<Identity> {
        let (identity, stamp, at) = self.entries.get(key)?;
        let fresh = Some(*stamp) == self.stamp() && at.elapsed() < MAX_AGE;
        fresh.then(|| identity.clone())
    }

    /// The stamp to pass to `put`: taken before the database is read, so that a
    /// revocation committed while the identity was being resolved is never cached
    /// as current. `None` while nothing may be cached.
    pub fn stamp(&self) -> Option<Stamp> {
        Some(Stamp {
            local: self.epoch.load(Ordering::Acquire),
            cluster: self.cluster.generation(Topic::Credentials)?,
        })
    }

    /// Remembers a resolved user identity (never a refusal or an anonymous one).
    pub fn put(&mut self, key: String, identity: &Identity, stamp: Option<Stamp>) {
        let Some(stamp) = stamp else { return };
        if identity.principal().is_none() {
            return;
        }
        if self.entries.len() >= MAX_ENTRIES {
            self.entries.clear();
        }
        self.entries
            .insert(key, (identity.clone(), stamp, Instant::now()));
    }

    /// Credentials may have changed (after the change committed): every worker of
    /// every instance resolves afresh.
    pub fn invalidate_all(&mut self, coord: &Coordinator) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.entries.clear();
        bus::publish(coord, Topic::Credentials);
    }
}
