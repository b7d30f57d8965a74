use std::io::Write;

use flate2::write::GzEncoder;
use flate2::Compression;

use super::*;
use crate::exchange::OrderStatus;
use crate::money::dec;

/// The `ORDER_TRADE_UPDATE` example of BingX's reference.
const FILL: &str = r#"{"e":"ORDER_TRADE_UPDATE","E":1696843635475,"o":{"s":"BTC-USDT",
  "c":"bz-7-1-e","i":1711312357852147712,"S":"BUY","o":"MARKET","q":"0.00100000",
  "p":"27692.90000000","sp":"0.00000000","ap":"27692.90000000","x":"TRADE","X":"FILLED",
  "N":"USDT","n":"-0.01384645","T":0,"wt":"MARK_PRICE","ps":"LONG","rp":"0.00000000",
  "z":"0.00100000"}}"#;

/// The `ACCOUNT_UPDATE` example.
const ACCOUNT: &str = r#"{"e":"ACCOUNT_UPDATE","E":1696244249320,"a":{"m":"ORDER",
  "B":[{"a":"USDT","wb":"5277.59264687","cw":"5233.21709203","bc":"0"}],
  "P":[{"s":"LINK-USDT","pa":"108.84300000","ep":"7.25620000","up":"1.42220000",
  "mt":"isolated","iw":"23.19081642","ps":"SHORT"}]}}"#;

fn gz(text: &str) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(text.as_bytes()).unwrap();
    e.finish().unwrap()
}

#[test]
fn reads_a_gzipped_fill_with_its_fee_as_a_delta() {
    let text = gunzip(&gz(FILL)).unwrap();
    let Frame::Updates(u) = read(&text).unwrap() else {
        panic!()
    };
    let Update::Order {
        order,
        time_ms,
        fee_delta,
    } = &u[0]
    else {
        panic!("{u:?}")
    };
    assert_eq!(
        (order.symbol.as_str(), order.exchange_id.as_str()),
        ("BTC/USDT", "1711312357852147712")
    );
    assert_eq!(
        (order.status, order.filled_qty),
        (OrderStatus::Filled, dec!(0.001))
    );
    assert_eq!(order.avg_fill_price, dec!(27692.9));
    assert_eq!(
        (*time_ms, *fee_delta),
        (1696843635475, Some(dec!(0.01384645)))
    );
    assert!(!order.reduce_only);
    // With its own time, the order's change is dated by it.
    let timed = FILL.replace(r#""T":0"#, r#""T":1696843635470"#);
    let Frame::Updates(u) = read(&timed).unwrap() else {
        panic!()
    };
    assert!(matches!(
        u[0],
        Update::Order {
            time_ms: 1696843635470,
            ..
        }
    ));
}

#[test]
fn reads_the_wallet_and_positions_and_the_control_events() {
    let Frame::Updates(u) = read(ACCOUNT).unwrap() else {
        panic!()
    };
    assert_eq!(
        u[0],
        Update::Wallet {
            balance: dec!(5277.59264687),
            time_ms: 1696244249320
        }
    );
    let Update::Position {
        symbol, position, ..
    } = &u[1]
    else {
        panic!()
    };
    assert_eq!(symbol, "LINK/USDT");
    assert_eq!((position.side, position.size), (Side::Short, dec!(108.843)));
    assert_eq!(read("Ping").unwrap(), Frame::Ping);
    assert_eq!(
        read(r#"{"e":"listenKeyExpired","E":1676964520421,"listenKey":"53c1"}"#).unwrap(),
        Frame::ListenKeyExpired
    );
    assert_eq!(
        read(r#"{"e":"ACCOUNT_CONFIG_UPDATE","E":1,"ac":{"s":"BTC-USDT","l":10}}"#).unwrap(),
        Frame::Other
    );
}

#[test]
fn garbled_frames_are_malformed() {
    assert!(gunzip(b"not gzip").is_err());
    for bad in [
        "{".to_string(),
        FILL.replace(r#""z":"0.00100000""#, r#""z":"""#),
        FILL.replace(r#""X":"FILLED""#, r#""X":"SLEEPING""#),
        FILL.replace(r#""n":"-0.01384645","#, ""),
        FILL.replace(r#""ps":"LONG""#, r#""ps":"BOTH""#),
        ACCOUNT.replace(r#""wb":"5277.59264687""#, r#""wb":"x""#),
        r#"{"e":"ORDER_TRADE_UPDATE","E":1}"#.to_string(),
    ] {
        assert!(
            matches!(read(&bad), Err(ExchangeError::Malformed(_))),
            "{bad}: {:?}",
            read(&bad)
        );
    }
}
