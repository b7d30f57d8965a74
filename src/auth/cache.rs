//! Each worker's cache of resolved credentials, so that a client polling with the
//! same token or session does not cost a database read per request.
//!
//! An entry is trusted for at most a second (a change made outside the server,
//! such as `blitz user set-password`, shows within that), and not at all once the
//! shared epoch moved: every request that can revoke or change credentials (logout,
//! password change or reset, token deletion, an admin's change to a user) moves it
//! after it committed, so revocation takes effect in every worker on its next
//! request.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use blitz_master::Scoreboard;

use super::Identity;

const MAX_AGE: Duration = Duration::from_secs(1);
/// Entries kept before the cache starts afresh (bounds memory per worker).
const MAX_ENTRIES: usize = 16_384;

pub struct IdentityCache {
    epoch: &'static AtomicU64,
    entries: HashMap<String, (Identity, u64, Instant)>,
}

impl IdentityCache {
    pub fn new(sb: &Scoreboard) -> IdentityCache {
        IdentityCache {
            epoch: &crate::shm::region(sb).auth_epoch,
            entries: HashMap::new(),
        }
    }

    /// The identity cached under `key`, if still trusted.
    pub fn get(&self, key: &str) -> Option<Identity> {
        let (identity, epoch, at) = self.entries.get(key)?;
        let fresh = *epoch == self.epoch.load(Ordering::Acquire) && at.elapsed() < MAX_AGE;
        fresh.then(|| identity.clone())
    }

    /// The epoch to pass to `put`: read before the database, so that a revocation
    /// committed while the identity was being resolved is never cached as current.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Remembers a resolved user identity (never a refusal or an anonymous one).
    pub fn put(&mut self, key: String, identity: &Identity, epoch: u64) {
        if identity.principal().is_none() {
            return;
        }
        if self.entries.len() >= MAX_ENTRIES {
            self.entries.clear();
        }
        self.entries
            .insert(key, (identity.clone(), epoch, Instant::now()));
    }

    /// Credentials may have changed (after the change committed): every worker
    /// resolves afresh.
    pub fn invalidate_all(&mut self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.entries.clear();
    }
}
