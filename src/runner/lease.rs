//! Which users' bots this runner drives (CONTRACT C18, ARCHITECTURE §11).
//!
//! On SQLite (one host) it drives every user's: `Leases::single` admits all.
//! On PostgreSQL each user has a lease (`store::cluster`) and the runner drives
//! the users whose lease it holds. Invariants:
//! - a user is driven here only while its local deadline has not passed: the
//!   deadline is set at each successful renewal to the renewal's start plus the
//!   lease minus a margin, so it passes before the database's expiry does, and
//!   a runner frozen past it (SIGSTOP, a long pause) does nothing for that user
//!   when it wakes (`valid`), before it has even asked the database;
//! - a user whose deadline passed is dropped locally at once, with no exchange
//!   call and no database write (`expired`), and taken again only through the
//!   database (`renew` finding it still ours, or `take`), with the epoch that says so;
//! - a user with nothing left to drive is given up (`release`, fenced by the
//!   epoch held here) and forgotten here at once; a start for a user nobody
//!   drives goes to the instance with the fewest bots (`place`).

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::store::cluster::{self, LeaseToken};
use crate::store::sql::Conn;
use crate::store::StoreError;

/// Renewal ends this far before the database's expiry, for the time a renewal
/// takes and the scheduling delay of the loop.
fn margin(lease: Duration) -> Duration {
    lease / 5
}

/// A round waits this long past another instance's lease expiry, for the
/// clocks of this host and the database's to agree that it passed.
const PAST_EXPIRY: Duration = Duration::from_millis(100);
/// Rounds are at least this far apart, whatever expires meanwhile.
const MIN_ROUND_GAP: Duration = Duration::from_secs(1);

pub struct Leases {
    cluster: Option<Cluster>,
}

struct Cluster {
    name: String,
    lease: Duration,
    started_at_ms: i64,
    /// User id → (epoch, local deadline).
    held: Mutex<HashMap<i64, (i64, Instant)>>,
    /// When the first lease another instance holds expires, as of the last
    /// round: if that instance died, its users are adoptable from then on.
    expiry_elsewhere: Mutex<Option<Instant>>,
}

/// Where a command for a user goes (`Leases::place`).
#[derive(Debug, PartialEq, Eq)]
pub enum Place {
    /// This runner drives the user; `true` when it took the lease just now (the
    /// caller reloads the user's paper account).
    Here(bool),
    /// Another instance holds the user's lease.
    Held(String),
    /// Nobody drives the user and that instance has the fewest bots: the
    /// command goes there, and that instance takes the lease.
    Elsewhere(String),
}

/// What one renewal round changed.
#[derive(Debug, Default)]
pub struct Round {
    /// Users whose lease another instance holds now: drop their bots locally.
    pub lost: Vec<i64>,
    /// Users taken (adopted, or found still ours after a local expiry): reload
    /// their paper accounts and resume their bots.
    pub gained: Vec<i64>,
}

impl Leases {
    /// One host: every user is driven here.
    pub fn single() -> Leases {
        Leases { cluster: None }
    }

    /// A cluster member named `name` holding leases for `lease`.
    pub fn cluster(name: &str, lease: Duration) -> Leases {
        Leases {
            cluster: Some(Cluster {
                name: name.to_string(),
                lease,
                started_at_ms: crate::store::now_ms(),
                held: Mutex::new(HashMap::new()),
                expiry_elsewhere: Mutex::new(None),
            }),
        }
    }

    pub fn is_cluster(&self) -> bool {
        self.cluster.is_some()
    }

    pub fn name(&self) -> Option<&str> {
        self.cluster.as_ref().map(|c| c.name.as_str())
    }

    /// When the next round is due after the last one: a third of the lease,
    /// or sooner, just past the expiry of another instance's lease (so that a
    /// dead instance's users are adopted as soon as they may be, not up to a
    /// third of the lease later); `None` on one host.
    pub fn next_round_in(&self) -> Option<Duration> {
        let c = self.cluster.as_ref()?;
        let every = c.lease / 3;
        let expiry = *lock(&c.expiry_elsewhere);
        let soon = expiry.map(|at| at.saturating_duration_since(Instant::now()) + PAST_EXPIRY);
        Some(soon.map_or(every, |soon| {
            soon.clamp(MIN_ROUND_GAP, every.max(MIN_ROUND_GAP))
        }))
    }

    /// Whether this runner may act for `user_id` now (write, call its exchange).
    pub fn valid(&self, user_id: i64) -> bool {
        let Some(c) = &self.cluster else {
            return true;
        };
        let held = lock(&c.held);
        held.get(&user_id)
            .is_some_and(|(_, until)| Instant::now() < *until)
    }

    /// What a write for `user_id` is made under: nothing on one host; in a
    /// cluster the lease held here, or `StoreError::Fenced` when its local
    /// deadline passed (the write is not even sent).
    pub fn token(&self, user_id: i64) -> Result<Option<LeaseToken<'_>>, StoreError> {
        let Some(c) = &self.cluster else {
            return Ok(None);
        };
        let held = lock(&c.held);
        match held.get(&user_id) {
            Some(&(epoch, until)) if Instant::now() < until => Ok(Some(LeaseToken {
                instance: &c.name,
                epoch,
            })),
            _ => Err(StoreError::Fenced),
        }
    }

    /// The users held now (deadline not passed), for the paper book's partition.
    pub fn held(&self) -> HashSet<i64> {
        let Some(c) = &self.cluster else {
            return HashSet::new();
        };
        let now = Instant::now();
        let held = lock(&c.held);
        held.iter()
            .filter(|(_, (_, until))| now < *until)
            .map(|(uid, _)| *uid)
            .collect()
    }

    /// Forgets the users whose local deadline passed and returns them: their bots
    /// must be dropped before anything else runs.
    pub fn expired(&self) -> Vec<i64> {
        let Some(c) = &self.cluster else {
            return Vec::new();
        };
        let now = Instant::now();
        let mut held = lock(&c.held);
        let gone: Vec<i64> = held
            .iter()
            .filter(|(_, (_, until))| now >= *until)
            .map(|(uid, _)| *uid)
            .collect();
        for uid in &gone {
            held.remove(uid);
        }
        gone
    }

    /// Stops counting `user_id` as held here without touching the database: the
    /// next round, renewing the lease still ours there, counts the user as
    /// gained (their bots are then resumed).
    pub fn forget(&self, user_id: i64) {
        if let Some(c) = &self.cluster {
            lock(&c.held).remove(&user_id);
        }
    }

    /// Takes `user_id`'s lease if it is free (a command for a user nobody
    /// drives); `Err(holder)` when another instance holds it. Ok(true) when it
    /// was taken just now (the caller reloads the user's paper account).
    pub fn acquire(&self, conn: &Conn, user_id: i64) -> Result<Result<bool, String>, StoreError> {
        let Some(c) = &self.cluster else {
            return Ok(Ok(false));
        };
        if self.valid(user_id) {
            return Ok(Ok(false));
        }
        let t0 = Instant::now();
        let now = cluster::db_now_ms(conn)?;
        let lease_ms = c.lease.as_millis() as i64;
        match cluster::take(conn, user_id, &c.name, now, lease_ms)? {
            Some(epoch) => {
                lock(&c.held).insert(user_id, (epoch, t0 + c.lease - margin(c.lease)));
                Ok(Ok(true))
            }
            None => {
                let holder = cluster::holder(conn, user_id, now)?;
                Ok(Err(holder.unwrap_or_else(|| "another instance".into())))
            }
        }
    }

    /// `acquire`, but a user nobody drives goes to the live instance with the
    /// fewest bots (CONTRACT C18: a stopped bot goes to the runner with the
    /// fewest bots), this one when it is among them (no hop), else the first by
    /// name. For a start: the other commands of a free user run where they
    /// arrive (`acquire`), and the lease goes again once the user is idle.
    pub fn place(&self, conn: &Conn, user_id: i64) -> Result<Place, StoreError> {
        let Some(c) = &self.cluster else {
            return Ok(Place::Here(false));
        };
        if self.valid(user_id) {
            return Ok(Place::Here(false));
        }
        let now = cluster::db_now_ms(conn)?;
        match cluster::holder(conn, user_id, now)? {
            Some(holder) if holder != c.name => return Ok(Place::Held(holder)),
            // Still ours in the database (the local deadline passed): take it back.
            Some(_) => {}
            None => {
                if let Some(other) = c.fewer_bots_than_here(conn, now)? {
                    return Ok(Place::Elsewhere(other));
                }
            }
        }
        Ok(match self.acquire(conn, user_id)? {
            Ok(taken) => Place::Here(taken),
            Err(holder) => Place::Held(holder),
        })
    }

    /// Gives up `user_id`'s lease (fenced by the epoch held here) and forgets
    /// it; `false` if it was not held here or another instance took it
    /// meanwhile. The caller made sure nothing of the user is driven here.
    pub fn release(&self, conn: &Conn, user_id: i64) -> Result<bool, StoreError> {
        let Some(c) = &self.cluster else {
            return Ok(false);
        };
        let Some((epoch, _)) = lock(&c.held).get(&user_id).copied() else {
            return Ok(false);
        };
        let released = cluster::release(conn, user_id, &c.name, epoch)?;
        // Released, or lost already: not ours either way.
        lock(&c.held).remove(&user_id);
        Ok(released)
    }

    /// The users held here (deadline not passed) with nothing to run in the
    /// database: those `release` may give up once the runner has checked its
    /// own state (no command under way, nothing in its paper book).
    pub fn idle(&self, conn: &Conn) -> Result<Vec<i64>, StoreError> {
        let Some(c) = &self.cluster else {
            return Ok(Vec::new());
        };
        let idle = cluster::idle_held(conn, &c.name)?;
        let now = Instant::now();
        let held = lock(&c.held);
        Ok(idle
            .into_iter()
            .filter(|(uid, epoch)| {
                held.get(uid)
                    .is_some_and(|(e, until)| e == epoch && now < *until)
            })
            .map(|(uid, _)| uid)
            .collect())
    }

    /// One round: heartbeat, renew what is held, then adopt users nobody drives
    /// until this instance has about its share of the cluster's bots.
    pub fn round(&self, conn: &Conn) -> Result<Round, StoreError> {
        let Some(c) = &self.cluster else {
            return Ok(Round::default());
        };
        let lease_ms = c.lease.as_millis() as i64;
        let t0 = Instant::now();
        let until = t0 + c.lease - margin(c.lease);
        let now = cluster::db_now_ms(conn)?;
        let renewed = cluster::renew(conn, &c.name, now, lease_ms)?;
        let mut round = Round::default();
        {
            let mut held = lock(&c.held);
            for (uid, (epoch, _)) in held.iter() {
                if renewed.get(uid) != Some(epoch) {
                    round.lost.push(*uid);
                }
            }
            held.retain(|uid, _| !round.lost.contains(uid));
            for (uid, epoch) in &renewed {
                if held.insert(*uid, (*epoch, until)).is_none() {
                    round.gained.push(*uid);
                }
            }
        }
        let (total, mut mine) = cluster::wanted_bots(conn, &c.name)?;
        cluster::heartbeat(conn, &c.name, c.started_at_ms, mine, now)?;
        let live = cluster::live_instances(conn, now - lease_ms)?.len().max(1) as i64;
        let share = (total + live - 1) / live;
        // Users in id order until the share is reached, taken a chunk at a time
        // (a fail-over adopts thousands); one another instance took meanwhile
        // is skipped, and the next ones make up for it.
        let next = cluster::next_expiry_elsewhere(conn, &c.name, now)?;
        *lock(&c.expiry_elsewhere) = next.map(|at| t0 + Duration::from_millis((at - now) as u64));
        let mut candidates = cluster::adoptable(conn, now)?.into_iter();
        while mine < share.max(1) {
            let mut chunk = Vec::new();
            let mut planned = mine;
            while planned < share.max(1) && chunk.len() < cluster::TAKE_CHUNK {
                let Some((uid, bots)) = candidates.next() else {
                    break;
                };
                chunk.push((uid, bots));
                planned += bots;
            }
            if chunk.is_empty() {
                break;
            }
            let uids: Vec<i64> = chunk.iter().map(|&(uid, _)| uid).collect();
            let taken = cluster::take_many(conn, &uids, &c.name, now, lease_ms)?;
            let mut held = lock(&c.held);
            for (uid, bots) in chunk {
                if let Some(&epoch) = taken.get(&uid) {
                    held.insert(uid, (epoch, until));
                    round.gained.push(uid);
                    mine += bots;
                }
            }
        }
        Ok(round)
    }
}

impl Cluster {
    /// The live instance a new user goes to when this one does not have the
    /// fewest bots (ties: the first by name); `None` when this one has, or no
    /// instance was seen yet (this one's first round is still to come).
    fn fewer_bots_than_here(&self, conn: &Conn, now: i64) -> Result<Option<String>, StoreError> {
        let since = now - self.lease.as_millis() as i64;
        let load = cluster::by_load(conn, since, now)?;
        let Some(fewest) = load.first() else {
            return Ok(None);
        };
        let here_too = load
            .iter()
            .any(|i| i.name == self.name && i.bots_owned == fewest.bots_owned);
        Ok((!here_too).then(|| fewest.name.clone()))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| {
        m.clear_poison();
        p.into_inner()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bots::status::{BotStatus, DesiredState};
    use crate::store::users::{self, NewUser};
    use crate::store::{bots, testing};

    fn user(c: &Conn, i: usize) -> i64 {
        let email = format!("u{i}@x.io");
        let new = NewUser {
            email: &email,
            password_hash: "h",
            is_admin: false,
            verification: None,
        };
        let uid = users::create(c, &new, 1).unwrap();
        let bot = crate::store::user_bots::default_of(c, uid)
            .unwrap()
            .unwrap();
        let running = (DesiredState::Running, BotStatus::Running);
        bots::set_state(c, bot, running.0, running.1, None, 1).unwrap();
        uid
    }

    #[test]
    fn two_instances_share_the_users_and_never_both_hold_one() {
        let c = testing::migrated();
        let users: Vec<i64> = (0..4).map(|i| user(&c, i)).collect();
        let (a, b) = (
            Leases::cluster("a", Duration::from_secs(30)),
            Leases::cluster("b", Duration::from_secs(30)),
        );
        // Both are alive: each takes its half.
        let now = cluster::db_now_ms(&c).unwrap();
        cluster::heartbeat(&c, "a", 1, 0, now).unwrap();
        cluster::heartbeat(&c, "b", 1, 0, now).unwrap();
        let ra = a.round(&c).unwrap();
        let rb = b.round(&c).unwrap();
        assert_eq!((ra.gained.len(), rb.gained.len()), (2, 2), "{ra:?} {rb:?}");
        assert!(ra.gained.iter().all(|u| !rb.gained.contains(u)));
        for u in &users {
            assert_ne!(a.valid(*u), b.valid(*u));
        }
        assert_eq!(b.acquire(&c, ra.gained[0]).unwrap(), Err("a".to_string()));
        assert!(Leases::single().valid(users[0]));
    }

    #[test]
    fn a_free_user_is_placed_on_the_instance_with_the_fewest_bots() {
        let c = testing::migrated();
        let users: Vec<i64> = (0..3).map(|i| user(&c, i)).collect();
        let lease = Duration::from_secs(30);
        let (a, b) = (Leases::cluster("a", lease), Leases::cluster("b", lease));
        // a drives two users (two bots), b none: a new user goes to b.
        let now = cluster::db_now_ms(&c).unwrap();
        cluster::heartbeat(&c, "a", 1, 0, now).unwrap();
        cluster::heartbeat(&c, "b", 1, 0, now).unwrap();
        for u in &users[..2] {
            assert_eq!(a.acquire(&c, *u).unwrap(), Ok(true));
        }
        let new = users[2];
        assert_eq!(a.place(&c, new).unwrap(), Place::Elsewhere("b".into()));
        assert!(!a.valid(new), "a took nothing");
        assert_eq!(b.place(&c, new).unwrap(), Place::Here(true));
        assert_eq!(b.place(&c, new).unwrap(), Place::Here(false));
        assert_eq!(a.place(&c, new).unwrap(), Place::Held("b".into()));
        assert_eq!(a.place(&c, users[0]).unwrap(), Place::Here(false));
        // One host places everything where it is.
        assert_eq!(Leases::single().place(&c, new).unwrap(), Place::Here(false));
    }

    #[test]
    fn an_idle_users_lease_is_released_and_taken_with_the_next_epoch() {
        let c = testing::migrated();
        let u = user(&c, 0);
        let (a, b) = (
            Leases::cluster("a", Duration::from_secs(30)),
            Leases::cluster("b", Duration::from_secs(30)),
        );
        assert_eq!(a.round(&c).unwrap().gained, [u]);
        assert!(a.idle(&c).unwrap().is_empty(), "its bot should run");
        let bot = crate::store::user_bots::default_of(&c, u).unwrap().unwrap();
        let stopped = (DesiredState::Stopped, BotStatus::Stopped);
        bots::set_state(&c, bot, stopped.0, stopped.1, None, 2).unwrap();
        assert_eq!(a.idle(&c).unwrap(), [u]);
        assert!(a.release(&c, u).unwrap());
        assert!(!a.valid(u) && a.held().is_empty());
        assert!(!a.release(&c, u).unwrap(), "no longer held");
        // The next round does not take it back (nothing to run), and b may.
        let r = a.round(&c).unwrap();
        assert!(r.gained.is_empty() && r.lost.is_empty(), "{r:?}");
        assert_eq!(b.acquire(&c, u).unwrap(), Ok(true));
        let epoch = |l: &Leases| lock(&l.cluster.as_ref().unwrap().held)[&u].0;
        assert_eq!(epoch(&b), 2);
    }

    #[test]
    fn the_next_round_comes_as_another_instances_lease_expires() {
        let c = testing::migrated();
        let users: Vec<i64> = (0..2).map(|i| user(&c, i)).collect();
        let lease = Duration::from_secs(30);
        let a = Leases::cluster("a", lease);
        assert_eq!(Leases::single().next_round_in(), None);
        assert_eq!(a.next_round_in(), Some(lease / 3), "no round yet");
        // b holds a user for 4 s: a's next round comes just after that expiry.
        let now = cluster::db_now_ms(&c).unwrap();
        cluster::heartbeat(&c, "b", 1, 1, now).unwrap();
        assert_eq!(
            cluster::take(&c, users[0], "b", now, 4000).unwrap(),
            Some(1)
        );
        a.round(&c).unwrap();
        let next = a.next_round_in().unwrap();
        assert!(
            next > MIN_ROUND_GAP && next <= Duration::from_secs(4) + PAST_EXPIRY,
            "{next:?}"
        );
        // Given up: nothing expires elsewhere any more.
        assert!(cluster::release(&c, users[0], "b", 1).unwrap());
        a.round(&c).unwrap();
        assert_eq!(a.next_round_in(), Some(lease / 3));
    }

    #[test]
    fn a_frozen_holder_is_fenced_locally_and_loses_the_lease() {
        let c = testing::migrated();
        let u = user(&c, 0);
        let a = Leases::cluster("a", Duration::from_secs(3));
        assert_eq!(a.round(&c).unwrap().gained, [u]);
        assert!(a.valid(u));
        // As if frozen past the lease: the deadline passes, then b takes it.
        lock(&a.cluster.as_ref().unwrap().held).insert(u, (1, Instant::now()));
        assert!(!a.valid(u));
        assert_eq!(a.expired(), [u]);
        let later = cluster::db_now_ms(&c).unwrap() + 3000;
        assert_eq!(cluster::take(&c, u, "b", later, 3000).unwrap(), Some(2));
        let r = a.round(&c).unwrap();
        assert!(r.gained.is_empty() && !a.valid(u), "{r:?}");
    }
}
