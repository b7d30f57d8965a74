//! The key check and the proxy columns (migration 0013).

use super::*;
use crate::store::users::{self, NewUser};

fn setup() -> (crate::store::testing::TestDb, i64, i64, i64) {
    let c = crate::store::testing::migrated();
    let user = |email| {
        let new = NewUser {
            email,
            password_hash: "h",
            is_admin: false,
            verification: None,
        };
        users::create(&c, &new, 1).unwrap()
    };
    let (a, b) = (user("a@x.io"), user("b@x.io"));
    let new = NewAccount {
        name: "Main",
        exchange: "bybit",
        api_key_enc: "k",
        api_key_last4: "abcd",
        api_secret_enc: "s",
    };
    let id = create(&c, a, &new, 5).unwrap();
    (c, a, b, id)
}

#[test]
fn an_unchecked_account_says_so_and_a_check_is_listed_as_stored() {
    let (c, a, b, id) = setup();
    let listed = get(&c, a, id).unwrap().unwrap();
    assert_eq!((listed.key, listed.proxy_shown), (None, None));
    let check = KeyCheck {
        trade: true,
        read_only: false,
        expires_at: Some(1_900_000_000),
        ip_whitelist: Some(vec!["1.2.3.4".into(), "5.6.7.8".into()]),
        checked_at: 77,
    };
    assert!(!set_key_check(&c, b, id, &check).unwrap(), "not b's");
    assert!(set_key_check(&c, a, id, &check).unwrap());
    assert_eq!(get(&c, a, id).unwrap().unwrap().key, Some(check.clone()));
    let anywhere = KeyCheck {
        expires_at: None,
        ip_whitelist: None,
        ..check
    };
    set_key_check(&c, a, id, &anywhere).unwrap();
    assert_eq!(list(&c, a).unwrap()[0].key, Some(anywhere));
}

#[test]
fn a_proxy_is_set_read_sealed_and_cleared_by_its_owner_only() {
    let (c, a, b, id) = setup();
    assert_eq!(proxy(&c, a, id).unwrap(), None);
    assert!(!set_proxy(&c, b, id, Some(("sealed", "http://p:1"))).unwrap());
    assert!(set_proxy(&c, a, id, Some(("sealed", "http://p:1"))).unwrap());
    assert_eq!(proxy(&c, a, id).unwrap().as_deref(), Some("sealed"));
    assert_eq!(proxy(&c, b, id).unwrap(), None, "not b's");
    assert_eq!(
        get(&c, a, id).unwrap().unwrap().proxy_shown.as_deref(),
        Some("http://p:1")
    );
    assert!(set_proxy(&c, a, id, None).unwrap());
    assert_eq!(proxy(&c, a, id).unwrap(), None);
    assert_eq!(get(&c, a, id).unwrap().unwrap().proxy_shown, None);
    assert!(!rename(&c, b, id, "x").unwrap());
    assert!(rename(&c, a, id, "Renamed").unwrap());
    assert_eq!(get(&c, a, id).unwrap().unwrap().name, "Renamed");
}
