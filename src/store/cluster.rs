//! The instances of a cluster and their leases on users (tables `cluster_instances`
//! and `user_leases`, migration 0014; ARCHITECTURE §11, CONTRACT C18).
//!
//! A lease is per user: the user's bots, paper account and exchange streams are
//! driven by one instance at a time, the lease holder. Invariants:
//! - a lease changes holder only once it has expired (`take` is one conditional
//!   statement, so of two instances adopting at once exactly one wins);
//! - each change of holder adds one to `epoch` (the fencing token);
//! - a holder gives a lease up (`release`) by expiring it at 0, fenced by its
//!   epoch; the row stays, so the epoch keeps growing;
//! - times are the database's clock on PostgreSQL (`db_now_ms`), so hosts whose
//!   clocks disagree still agree on whether a lease has expired;
//! - a bot's writes that a later holder relies on (the order journal, the cycle's
//!   counters, a closed cycle) carry the holder's `LeaseToken` and are refused
//!   (`StoreError::Fenced`) once the lease has another epoch or holder.

use std::collections::HashMap;

use super::bots::Wanted;
use super::sql::{Conn, Kind, Param, Row, SqlResult};
use super::StoreError;

/// Milliseconds since the epoch by the database's clock (PostgreSQL), or this
/// host's (SQLite: a single host).
pub fn db_now_ms(conn: &Conn) -> Result<i64, StoreError> {
    match conn.kind() {
        Kind::Sqlite => Ok(super::now_ms()),
        Kind::Postgres => Ok(conn
            .prepare_cached("SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)")?
            .query_row((), |r| r.get(0))?),
    }
}

/// The lease a bot's write is made under: this instance and the epoch it holds.
/// A write that carries it changes nothing unless the lease row still says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseToken<'a> {
    pub instance: &'a str,
    pub epoch: i64,
}

/// The condition a fenced statement adds, with the user's id column and the
/// numbers of the instance and epoch parameters.
pub fn held_under(user_id: &str, instance: usize, epoch: usize) -> String {
    format!(
        "EXISTS (SELECT 1 FROM user_leases WHERE user_id = {user_id} \
         AND instance = ?{instance} AND epoch = ?{epoch})"
    )
}

/// Inside a transaction: whether `token` still holds `user_id`'s lease. On
/// PostgreSQL the lease row is share-locked to the end of the transaction, so
/// another instance's `take` waits for the commit and then finds the new epoch
/// (SQLite has one writer: nothing can take it meanwhile).
pub fn check_held(conn: &Conn, user_id: i64, token: LeaseToken<'_>) -> Result<(), StoreError> {
    let sql = match conn.kind() {
        Kind::Sqlite => {
            "SELECT 1 FROM user_leases WHERE user_id = ?1 AND instance = ?2 AND epoch = ?3"
        }
        Kind::Postgres => {
            "SELECT 1 FROM user_leases WHERE user_id = ?1 AND instance = ?2 AND epoch = ?3
             FOR SHARE"
        }
    };
    let held =
        conn.prepare_cached(sql)?
            .exists(crate::params![user_id, token.instance, token.epoch])?;
    if held {
        Ok(())
    } else {
        Err(StoreError::Fenced)
    }
}

/// Records that `name` is alive at `now_ms` holding `bots_owned` bots.
pub fn heartbeat(
    conn: &Conn,
    name: &str,
    started_at_ms: i64,
    bots_owned: i64,
    now_ms: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO cluster_instances (name, started_at_ms, seen_at_ms, bots_owned)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (name) DO UPDATE SET started_at_ms = excluded.started_at_ms,
             seen_at_ms = excluded.seen_at_ms, bots_owned = excluded.bots_owned",
    )?
    .execute(crate::params![name, started_at_ms, now_ms, bots_owned])?;
    Ok(())
}

/// An instance seen recently, with the bots it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub name: String,
    pub bots_owned: i64,
}

impl Instance {
    /// From a row of (name, bots).
    fn from_row(r: &Row<'_>) -> SqlResult<Instance> {
        Ok(Instance {
            name: r.get(0)?,
            bots_owned: r.get(1)?,
        })
    }
}

/// The instances seen since `since_ms`, by name.
pub fn live_instances(conn: &Conn, since_ms: i64) -> Result<Vec<Instance>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT name, bots_owned FROM cluster_instances WHERE seen_at_ms >= ?1 ORDER BY name",
    )?;
    let rows = stmt
        .query_map([since_ms], Instance::from_row)?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Extends every lease `name` holds to `now_ms + lease_ms`; returns them as
/// `user_id → epoch`. A lease another instance took is not among them, nor one
/// `name` gave up (`release`): a lease that merely expired and that nobody took
/// is still `name`'s.
pub fn renew(
    conn: &Conn,
    name: &str,
    now_ms: i64,
    lease_ms: i64,
) -> Result<HashMap<i64, i64>, StoreError> {
    const EXTEND: &str = "UPDATE user_leases SET expires_at_ms = ?2
         WHERE instance = ?1 AND expires_at_ms > 0 RETURNING user_id, epoch";
    let extend = |conn: &Conn| -> Result<HashMap<i64, i64>, StoreError> {
        let mut stmt = conn.prepare_cached(EXTEND)?;
        let rows = stmt
            .query_map(crate::params![name, now_ms + lease_ms], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    };
    if conn.kind() == Kind::Sqlite {
        return extend(conn);
    }
    // PostgreSQL: the rows are locked first in user id order, as `take_many`
    // locks them, so that a renewal and another instance's take of many users
    // never wait for each other both ways (a deadlock); then updated by a plain
    // scan. Not one statement joining the locking sub-select: after a fail-over
    // the statistics still say the new holder has no rows, and the planner's
    // nested loop then locks the sub-select again for every row (20,000 users
    // took 23 s instead of 0.1 s, past the lease).
    let tx = conn.unchecked_transaction()?;
    tx.prepare_cached(
        "SELECT COUNT(*) FROM (SELECT 1 FROM user_leases
             WHERE instance = ?1 AND expires_at_ms > 0 ORDER BY user_id FOR UPDATE) locked",
    )?
    .query_row([name], |r| r.get::<_, i64>(0))?;
    let rows = extend(&tx)?;
    tx.commit()?;
    Ok(rows)
}

/// Users with bots that should run and no live lease, with how many such bots,
/// by user id: what an instance may adopt.
pub fn adoptable(conn: &Conn, now_ms: i64) -> Result<Vec<(i64, i64)>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT b.user_id, COUNT(*) FROM user_bots b
         LEFT JOIN user_leases l ON l.user_id = b.user_id
         WHERE b.desired_state = 'running' AND (l.user_id IS NULL OR l.expires_at_ms <= ?1)
         GROUP BY b.user_id ORDER BY b.user_id",
    )?;
    let rows = stmt
        .query_map([now_ms], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Takes `user_id`'s lease for `name` if it has none or it has expired; returns
/// the new epoch, or `None` when another instance holds it (or just took it: the
/// condition is checked on the row as it is when written, so two takers cannot
/// both win).
pub fn take(
    conn: &Conn,
    user_id: i64,
    name: &str,
    now_ms: i64,
    lease_ms: i64,
) -> Result<Option<i64>, StoreError> {
    use super::OptionalExt;
    Ok(conn
        .prepare_cached(
            "INSERT INTO user_leases (user_id, instance, epoch, expires_at_ms)
             VALUES (?1, ?2, 1, ?3)
             ON CONFLICT (user_id) DO UPDATE SET instance = excluded.instance,
                 epoch = user_leases.epoch + 1, expires_at_ms = excluded.expires_at_ms
             WHERE user_leases.expires_at_ms <= ?4
             RETURNING epoch",
        )?
        .query_row(
            crate::params![user_id, name, now_ms + lease_ms, now_ms],
            |r| r.get(0),
        )
        .optional()?)
}

/// At most this many users in one `take_many` statement.
pub const TAKE_CHUNK: usize = 200;

/// `take` for several users, `TAKE_CHUNK` in one statement (a fail-over adopts
/// thousands): user id → new epoch of those taken; the others are held by
/// another instance, as for `take`. The rows are locked in the order of
/// `user_ids`, which must ascend (see `renew`).
pub fn take_many(
    conn: &Conn,
    user_ids: &[i64],
    name: &str,
    now_ms: i64,
    lease_ms: i64,
) -> Result<HashMap<i64, i64>, StoreError> {
    debug_assert!(user_ids.windows(2).all(|w| w[0] < w[1]), "ascending ids");
    let expires = now_ms + lease_ms;
    let mut taken = HashMap::new();
    for chunk in user_ids.chunks(TAKE_CHUNK) {
        let rows: Vec<String> = (0..chunk.len())
            .map(|i| format!("(?{}, ?1, 1, ?2)", i + 4))
            .collect();
        let sql = format!(
            "INSERT INTO user_leases (user_id, instance, epoch, expires_at_ms) VALUES {}
             ON CONFLICT (user_id) DO UPDATE SET instance = excluded.instance,
                 epoch = user_leases.epoch + 1, expires_at_ms = excluded.expires_at_ms
             WHERE user_leases.expires_at_ms <= ?3
             RETURNING user_id, epoch",
            rows.join(", ")
        );
        let mut values: Vec<&dyn Param> = vec![&name, &expires, &now_ms];
        values.extend(chunk.iter().map(|u| u as &dyn Param));
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(values.as_slice(), |r| Ok((r.get(0)?, r.get(1)?)))?;
        for row in rows {
            let (user_id, epoch) = row?;
            taken.insert(user_id, epoch);
        }
    }
    Ok(taken)
}

/// Bots that should run, in the whole cluster and among the users `name` holds.
pub fn wanted_bots(conn: &Conn, name: &str) -> Result<(i64, i64), StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT COUNT(*), COALESCE(SUM(CASE WHEN l.instance = ?1 THEN 1 ELSE 0 END), 0)
             FROM user_bots b LEFT JOIN user_leases l ON l.user_id = b.user_id
             WHERE b.desired_state = 'running'",
        )?
        .query_row([name], |r| Ok((r.get(0)?, r.get(1)?)))?)
}

/// The bots of user `user_id` that should run, as `(bot id, exchange)`.
pub fn wanted_of(conn: &Conn, user_id: i64) -> Result<Vec<Wanted>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, user_id, exchange FROM user_bots
         WHERE user_id = ?1 AND desired_state = 'running' ORDER BY id",
    )?;
    let rows = stmt
        .query_map([user_id], Wanted::from_row)?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// `wanted_of` for every user whose lease `name` holds, in one read: what a
/// round that adopted many users resumes (a whole instance's after a restart or
/// a fail-over).
pub fn wanted_held(conn: &Conn, name: &str) -> Result<Vec<Wanted>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT b.id, b.user_id, b.exchange FROM user_bots b
         JOIN user_leases l ON l.user_id = b.user_id
         WHERE l.instance = ?1 AND b.desired_state = 'running' ORDER BY b.id",
    )?;
    let rows = stmt
        .query_map([name], Wanted::from_row)?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Bots with status `running` of the users `name` holds (what `/readyz`
/// compares with the runner's own count in a cluster).
pub fn count_running_of(conn: &Conn, name: &str) -> Result<i64, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT COUNT(*) FROM user_bots b JOIN user_leases l ON l.user_id = b.user_id
             WHERE b.status = 'running' AND l.instance = ?1",
        )?
        .query_row([name], |r| r.get(0))?)
}

/// Gives up `user_id`'s lease if `name` still holds it under `epoch` (the
/// user has nothing left to drive), so the next start is placed on whichever
/// instance has the fewest bots. The row stays with `expires_at_ms = 0`, which
/// `renew` never extends: the next `take` adds one to the epoch as for any change
/// of holder. Fenced: `false` if another instance took the lease meanwhile.
pub fn release(conn: &Conn, user_id: i64, name: &str, epoch: i64) -> Result<bool, StoreError> {
    let n = conn
        .prepare_cached(
            "UPDATE user_leases SET expires_at_ms = 0
             WHERE user_id = ?1 AND instance = ?2 AND epoch = ?3",
        )?
        .execute(crate::params![user_id, name, epoch])?;
    Ok(n > 0)
}

/// The users whose lease `name` holds (not given up) and who have no bot that
/// should run or is starting, running or stopping, with the lease's epoch: the
/// candidates for `release`.
pub fn idle_held(conn: &Conn, name: &str) -> Result<Vec<(i64, i64)>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT l.user_id, l.epoch FROM user_leases l
         WHERE l.instance = ?1 AND l.expires_at_ms > 0
           AND NOT EXISTS (SELECT 1 FROM user_bots b WHERE b.user_id = l.user_id
                           AND (b.desired_state = 'running'
                                OR b.status IN ('starting', 'running', 'stopping')))
         ORDER BY l.user_id",
    )?;
    let rows = stmt
        .query_map([name], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// The instances seen since `since_ms` with the bots that should run of the
/// users whose live lease (at `now_ms`) each holds, fewest first (then by name):
/// where a user nobody drives is placed.
pub fn by_load(conn: &Conn, since_ms: i64, now_ms: i64) -> Result<Vec<Instance>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT i.name, (SELECT COUNT(*) FROM user_bots b
                         JOIN user_leases l ON l.user_id = b.user_id
                         WHERE l.instance = i.name AND l.expires_at_ms > ?2
                           AND b.desired_state = 'running') AS bots
         FROM cluster_instances i WHERE i.seen_at_ms >= ?1
         ORDER BY bots, i.name",
    )?;
    let rows = stmt
        .query_map([since_ms, now_ms], Instance::from_row)?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// The live holder of `user_id`'s lease, if any.
pub fn holder(conn: &Conn, user_id: i64, now_ms: i64) -> Result<Option<String>, StoreError> {
    use super::OptionalExt;
    Ok(conn
        .prepare_cached(
            "SELECT instance FROM user_leases WHERE user_id = ?1 AND expires_at_ms > ?2",
        )?
        .query_row([user_id, now_ms], |r| r.get(0))
        .optional()?)
}

/// When the first live lease held by another instance than `name` expires: if
/// that instance died, its users may be adopted from then on.
pub fn next_expiry_elsewhere(
    conn: &Conn,
    name: &str,
    now_ms: i64,
) -> Result<Option<i64>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT MIN(expires_at_ms) FROM user_leases WHERE instance <> ?1 AND expires_at_ms > ?2",
        )?
        .query_row(crate::params![name, now_ms], |r| r.get(0))?)
}

/// Every live lease as `user_id → instance` (for the admin's status page).
pub fn holders(conn: &Conn, now_ms: i64) -> Result<HashMap<i64, String>, StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT user_id, instance FROM user_leases WHERE expires_at_ms > ?1")?;
    let rows = stmt
        .query_map([now_ms], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bots::status::{BotStatus, DesiredState};
    use crate::store::bots;
    use crate::store::testing::{migrated, TestDb};
    use crate::store::users::{self, NewUser};

    const LEASE: i64 = 3000;

    /// A database with `n` users whose default bot should run.
    fn db(n: usize) -> (TestDb, Vec<i64>) {
        let c = migrated();
        let mut ids = Vec::new();
        for i in 0..n {
            let email = format!("u{i}@x.io");
            let new = NewUser {
                email: &email,
                password_hash: "h",
                is_admin: false,
                verification: None,
            };
            let uid = users::create(&c, &new, 1).unwrap();
            let bot = crate::store::user_bots::default_of(&c, uid)
                .unwrap()
                .unwrap();
            let running = (DesiredState::Running, BotStatus::Running);
            bots::set_state(&c, bot, running.0, running.1, None, 1).unwrap();
            ids.push(uid);
        }
        (c, ids)
    }

    #[test]
    fn only_one_instance_takes_a_lease_until_it_expires() {
        let (c, users) = db(2);
        let u = users[0];
        assert_eq!(adoptable(&c, 1000).unwrap(), [(u, 1), (users[1], 1)]);
        assert_eq!(take(&c, u, "a", 1000, LEASE).unwrap(), Some(1));
        assert_eq!(take(&c, u, "b", 1001, LEASE).unwrap(), None);
        assert_eq!(adoptable(&c, 1001).unwrap(), [(users[1], 1)]);
        assert_eq!(holder(&c, u, 1001).unwrap().as_deref(), Some("a"));
        // Expired: the next taker wins with the next epoch, the old holder's
        // renewal no longer returns it.
        assert_eq!(take(&c, u, "b", 1000 + LEASE, LEASE).unwrap(), Some(2));
        assert!(renew(&c, "a", 4500, LEASE).unwrap().is_empty());
        let b = renew(&c, "b", 4500, LEASE).unwrap();
        assert_eq!(b, HashMap::from([(u, 2)]));
        assert_eq!(holders(&c, 4500).unwrap(), HashMap::from([(u, "b".into())]));
        assert_eq!(holder(&c, u, 4500 + LEASE).unwrap(), None);
        assert_eq!(wanted_bots(&c, "b").unwrap(), (2, 1));
        assert_eq!(wanted_of(&c, u).unwrap().len(), 1);
        assert_eq!(wanted_held(&c, "b").unwrap(), wanted_of(&c, u).unwrap());
        assert!(wanted_held(&c, "a").unwrap().is_empty());
        assert_eq!(count_running_of(&c, "b").unwrap(), 1);
    }

    #[test]
    fn many_leases_are_taken_in_one_statement_as_one_by_one() {
        let (c, users) = db(TAKE_CHUNK + 2);
        let (first, rest) = (users[0], &users[1..]);
        assert_eq!(take(&c, first, "a", 1000, LEASE).unwrap(), Some(1));
        // All but a's, in chunks; epoch 1 for a new lease.
        let taken = take_many(&c, &users, "b", 1001, LEASE).unwrap();
        assert_eq!(taken.len(), rest.len());
        assert!(rest.iter().all(|u| taken.get(u) == Some(&1)));
        assert_eq!(holder(&c, first, 1001).unwrap().as_deref(), Some("a"));
        // a's expired: b takes it with the next epoch, and none of its own again.
        let later = 1000 + LEASE;
        let taken = take_many(&c, &users, "b", later, LEASE).unwrap();
        assert_eq!(taken, HashMap::from([(first, 2)]));
        assert!(renew(&c, "a", later, LEASE).unwrap().is_empty());
        assert_eq!(renew(&c, "b", later, LEASE).unwrap().len(), users.len());
    }

    #[test]
    fn the_next_expiry_elsewhere_is_the_first_live_lease_of_another_instance() {
        let (c, users) = db(3);
        assert_eq!(next_expiry_elsewhere(&c, "a", 1000).unwrap(), None);
        take(&c, users[0], "a", 1000, LEASE).unwrap();
        take(&c, users[1], "b", 1000, LEASE).unwrap();
        take(&c, users[2], "b", 1500, LEASE).unwrap();
        assert_eq!(next_expiry_elsewhere(&c, "b", 1000).unwrap(), Some(4000));
        assert_eq!(next_expiry_elsewhere(&c, "a", 1000).unwrap(), Some(4000));
        // Expired leases are not waited for: they may be adopted now.
        assert_eq!(next_expiry_elsewhere(&c, "a", 4000).unwrap(), Some(4500));
        assert_eq!(next_expiry_elsewhere(&c, "a", 4500).unwrap(), None);
    }

    #[test]
    fn a_starting_runner_leaves_another_holders_stopping_bots_alone() {
        let (c, users) = db(1);
        let u = users[0];
        let bot = crate::store::user_bots::default_of(&c, u).unwrap().unwrap();
        let stopping = (DesiredState::Stopped, BotStatus::Stopping);
        bots::set_state(&c, bot, stopping.0, stopping.1, None, 2).unwrap();
        take(&c, u, "b", 1000, LEASE).unwrap();
        assert_eq!(bots::settle_interrupted(&c, 3, 1001, "a").unwrap(), 0);
        assert_eq!(bots::settle_interrupted(&c, 3, 1001, "b").unwrap(), 1);
    }

    #[test]
    fn a_release_is_fenced_by_epoch_never_renewed_and_the_next_take_counts_on() {
        let (c, users) = db(1);
        let u = users[0];
        assert_eq!(take(&c, u, "a", 1000, LEASE).unwrap(), Some(1));
        assert!(!release(&c, u, "b", 1).unwrap(), "not b's");
        assert!(!release(&c, u, "a", 2).unwrap(), "an epoch a does not hold");
        assert!(release(&c, u, "a", 1).unwrap());
        assert!(renew(&c, "a", 1500, LEASE).unwrap().is_empty(), "given up");
        assert_eq!(holder(&c, u, 1500).unwrap(), None);
        assert_eq!(adoptable(&c, 1500).unwrap(), [(u, 1)]);
        assert_eq!(take(&c, u, "b", 1500, LEASE).unwrap(), Some(2));
        // a's stale epoch cannot give up b's lease.
        assert!(!release(&c, u, "a", 1).unwrap());
        assert_eq!(holder(&c, u, 1600).unwrap().as_deref(), Some("b"));
    }

    #[test]
    fn only_users_with_nothing_to_run_are_idle() {
        let (c, users) = db(3);
        // users[0]'s bot runs; users[1]'s is stopping.
        let (stopping, stopped) = (users[1], users[2]);
        for u in &users {
            take(&c, *u, "a", 1000, LEASE).unwrap();
        }
        let bot = |u| crate::store::user_bots::default_of(&c, u).unwrap().unwrap();
        let states = [
            (stopping, DesiredState::Stopped, BotStatus::Stopping),
            (stopped, DesiredState::Stopped, BotStatus::Stopped),
        ];
        for (u, desired, status) in states {
            bots::set_state(&c, bot(u), desired, status, None, 2).unwrap();
        }
        assert_eq!(idle_held(&c, "a").unwrap(), [(stopped, 1)]);
        assert!(idle_held(&c, "b").unwrap().is_empty());
        assert!(release(&c, stopped, "a", 1).unwrap());
        assert!(idle_held(&c, "a").unwrap().is_empty(), "released already");
    }

    #[test]
    fn placement_ranks_live_instances_by_the_bots_they_hold() {
        let (c, users) = db(3);
        for (name, seen) in [("a", 1000), ("b", 1000), ("c", 1000), ("gone", 10)] {
            heartbeat(&c, name, 1, 99, seen).unwrap();
        }
        take(&c, users[0], "a", 1000, LEASE).unwrap();
        take(&c, users[1], "a", 1000, LEASE).unwrap();
        take(&c, users[2], "c", 1000, LEASE).unwrap();
        let load = |now| -> Vec<(String, i64)> {
            by_load(&c, 500, now)
                .unwrap()
                .into_iter()
                .map(|i| (i.name, i.bots_owned))
                .collect()
        };
        let s = |x: &str| x.to_string();
        assert_eq!(load(1500), [(s("b"), 0), (s("c"), 1), (s("a"), 2)]);
        // A stopped bot and an expired lease count for nobody.
        let bot = crate::store::user_bots::default_of(&c, users[0])
            .unwrap()
            .unwrap();
        bots::set_state(&c, bot, DesiredState::Stopped, BotStatus::Stopped, None, 2).unwrap();
        assert_eq!(load(1500), [(s("b"), 0), (s("a"), 1), (s("c"), 1)]);
        assert_eq!(load(1000 + LEASE), [(s("a"), 0), (s("b"), 0), (s("c"), 0)]);
    }

    #[test]
    fn heartbeats_tell_the_live_instances() {
        let (c, _) = db(0);
        heartbeat(&c, "a", 1, 3, 1000).unwrap();
        heartbeat(&c, "b", 1, 0, 5000).unwrap();
        heartbeat(&c, "a", 1, 4, 6000).unwrap();
        let live = live_instances(&c, 5500).unwrap();
        let a = Instance {
            name: "a".into(),
            bots_owned: 4,
        };
        assert_eq!(live, [a]);
        assert_eq!(live_instances(&c, 0).unwrap().len(), 2);
        assert!(db_now_ms(&c).unwrap() > 1_700_000_000_000);
    }

    /// The writes a later holder relies on carry the lease: once another
    /// instance took it, the old holder's order journal and counters are refused
    /// and change nothing, while the new holder's go through.
    #[test]
    fn a_bots_fenced_writes_are_refused_once_the_lease_moved() {
        use crate::bots::ids::BotRef;
        use crate::store::ledger;
        let (c, users) = db(1);
        let u = users[0];
        let bot_id = crate::store::user_bots::default_of(&c, u).unwrap().unwrap();
        let bot = BotRef { user_id: u, bot_id };
        let a = LeaseToken {
            instance: "a",
            epoch: 1,
        };
        assert_eq!(take(&c, u, "a", 1000, LEASE).unwrap(), Some(1));
        ledger::submitted_under(&c, bot, "bz-1", 5, a).unwrap();
        // A retry of the same order under the same lease keeps its first time.
        ledger::submitted_under(&c, bot, "bz-1", 6, a).unwrap();
        assert_eq!(ledger::submitted_at(&c, u, "bz-1").unwrap(), Some(5));
        let cycle = |n| bots::CycleRow {
            cycle: n,
            tp_n: 0,
            sl_n: 0,
            exchange: "paper",
            symbol: "BTC/USDT",
            side: "long",
            account: None,
            opened_at: None,
            leg_round: 0,
            tr_n: 0,
            trail_best: None,
            next_entry_at: None,
        };
        bots::set_cycle_under(&c, bot_id, &cycle(2), 7, Some(a)).unwrap();
        check_held(&c, u, a).unwrap();

        // a's lease expires and b takes it (epoch 2).
        assert_eq!(take(&c, u, "b", 1000 + LEASE, LEASE).unwrap(), Some(2));
        let b = LeaseToken {
            instance: "b",
            epoch: 2,
        };
        let refused = ledger::submitted_under(&c, bot, "bz-2", 8, a);
        assert!(matches!(refused, Err(StoreError::Fenced)), "{refused:?}");
        assert_eq!(ledger::submitted_at(&c, u, "bz-2").unwrap(), None);
        let refused = bots::set_cycle_under(&c, bot_id, &cycle(1), 8, Some(a));
        assert!(matches!(refused, Err(StoreError::Fenced)), "{refused:?}");
        assert!(matches!(check_held(&c, u, a), Err(StoreError::Fenced)));
        assert_eq!(bots::get(&c, bot_id).unwrap().unwrap().cycle, 2);
        // Even for an order a recorded before: the lease is checked again.
        let refused = ledger::submitted_under(&c, bot, "bz-1", 9, a);
        assert!(matches!(refused, Err(StoreError::Fenced)), "{refused:?}");

        ledger::submitted_under(&c, bot, "bz-2", 10, b).unwrap();
        bots::set_cycle_under(&c, bot_id, &cycle(3), 10, Some(b)).unwrap();
        assert_eq!(ledger::submitted_at(&c, u, "bz-2").unwrap(), Some(10));
        assert_eq!(bots::get(&c, bot_id).unwrap().unwrap().cycle, 3);
    }
}
