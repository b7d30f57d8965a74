//! The paper exchange in a cluster: each instance's book holds only the accounts
//! whose users it drives (`Paper::partition`), on one shared database. An account
//! moves between books when its user's lease moves; its funding must follow it.

use std::collections::HashSet;
use std::path::Path;

use super::funding::FUNDING_EVERY_MS;
use super::tests_storage::{database, entry, params};
use super::*;
use crate::exchange::Exchange;
use crate::store::sql::Conn;

const BTC: &str = "BTC/USDT";
/// A funding boundary (2024-01-01 08:00 UTC).
const BOUNDARY: i64 = 1_704_067_200_000 + FUNDING_EVERY_MS;

/// An instance's paper exchange on the shared database, holding `users`.
fn instance(path: &Path, users: &[i64], now: i64) -> Arc<Paper> {
    let p = Paper::open(database(path), params(), now).unwrap();
    p.partition(users.iter().copied().collect::<HashSet<_>>());
    p
}

fn boundaries_paid(p: &Arc<Paper>, uid: i64) -> Vec<i64> {
    let paid = p.account(uid).funding(BTC, 0).unwrap();
    paid.iter().map(|f| f.time_ms).collect()
}

/// Instance A dies just before a boundary that instance B then settles for its own
/// accounts; B adopts A's users after the boundary: each adopted position is paid
/// for that boundary once, and B's own are not paid again.
#[test]
fn an_adopted_account_is_funded_for_the_boundary_its_dead_holder_missed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("paper.db");
    let a = instance(&path, &[1, 2], BOUNDARY - 10_000);
    let b = instance(&path, &[3], BOUNDARY - 10_000);
    for (p, uid) in [(&a, 1), (&a, 2), (&b, 3)] {
        p.account(uid).place(&entry(&format!("e{uid}"))).unwrap();
    }
    a.advance(BOUNDARY - 1_000).unwrap();
    drop(a);

    b.advance(BOUNDARY + 1_000).unwrap();
    assert_eq!(boundaries_paid(&b, 3), vec![BOUNDARY]);
    // B wins the dead instance's leases.
    b.partition([1, 2, 3].into_iter().collect());
    b.advance(BOUNDARY + 2_000).unwrap();
    for uid in [1, 2, 3] {
        assert_eq!(boundaries_paid(&b, uid), vec![BOUNDARY], "user {uid}");
    }
    // The next boundary: each account once more, on its own clock.
    b.advance(BOUNDARY + FUNDING_EVERY_MS).unwrap();
    let both = vec![BOUNDARY, BOUNDARY + FUNDING_EVERY_MS];
    for uid in [1, 2, 3] {
        assert_eq!(boundaries_paid(&b, uid), both, "user {uid}");
    }
}

/// An account settled by its holder moves to an instance whose book has not
/// crossed that boundary yet: it is not paid twice, and a restart of the whole
/// exchange (one book for every account) pays nothing again either.
#[test]
fn a_moved_account_is_not_funded_twice_for_a_boundary() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("paper.db");
    let a = instance(&path, &[1], BOUNDARY - 10_000);
    let b = instance(&path, &[2], BOUNDARY - 10_000);
    a.account(1).place(&entry("e1")).unwrap();
    b.account(2).place(&entry("e2")).unwrap();
    b.advance(BOUNDARY - 1_000).unwrap();
    a.advance(BOUNDARY + 1_000).unwrap();
    assert_eq!(boundaries_paid(&a, 1), vec![BOUNDARY]);
    // User 1's lease moves from A to B, which is still before the boundary.
    a.partition(HashSet::new());
    b.partition([1, 2].into_iter().collect());
    b.advance(BOUNDARY + 1_500).unwrap();
    assert_eq!(boundaries_paid(&b, 1), vec![BOUNDARY]);
    assert_eq!(boundaries_paid(&b, 2), vec![BOUNDARY]);
    let balance = b.account(1).balance().unwrap();
    drop((a, b));

    let whole = Paper::open(Conn::open(&path).unwrap(), params(), BOUNDARY + 5_000).unwrap();
    whole.advance(BOUNDARY + 6_000).unwrap();
    assert_eq!(boundaries_paid(&whole, 1), vec![BOUNDARY]);
    assert_eq!(boundaries_paid(&whole, 2), vec![BOUNDARY]);
    assert_eq!(whole.account(1).balance().unwrap(), balance);
}
