use super::*;
use crate::exchange::{OrderKind, OrderStatus};
use crate::money::dec;

/// The order topic's example (docs/v5/websocket/private/order), trimmed.
const ORDER: &str = r#"{"id":"5923240c6880ab-c59f-420b-9adb-3639adc9dd90","topic":"order",
  "creationTime":1672364262474,"data":[{"symbol":"ETHUSDT","orderId":"5cf98598-39a7-459e-97bf-76ca765ee020",
  "side":"Sell","orderType":"Market","cancelType":"UNKNOWN","price":"72.5","qty":"1",
  "orderIv":"","timeInForce":"IOC","orderStatus":"Filled","orderLinkId":"bz-1-1-e",
  "lastPriceOnCreated":"","reduceOnly":false,"leavesQty":"","leavesValue":"","cumExecQty":"1",
  "cumExecValue":"75","avgPrice":"75","blockTradeId":"","positionIdx":2,"cumExecFee":"0.0358635",
  "createdTime":"1672364262444","updatedTime":"1672364262457","rejectReason":"EC_NoError",
  "stopOrderType":"","tpslMode":"","triggerPrice":"","takeProfit":"","stopLoss":"",
  "tpTriggerBy":"","slTriggerBy":"","tpLimitPrice":"","slLimitPrice":"","triggerDirection":0,
  "triggerBy":"","closeOnTrigger":false,"category":"linear","placeType":"","smpType":"None",
  "smpGroup":0,"smpOrderId":"","feeCurrency":""}]}"#;

const EXECUTION: &str = r#"{"id":"592324803b2785-26fa-4214-9963-bdd4727f07be","topic":"execution",
  "creationTime":1672364174455,"data":[{"category":"linear","symbol":"XRPUSDT","execFee":"0.005061",
  "execId":"7e2ae69c-4edf-5800-a352-893d52b446aa","execPrice":"0.3374","execQty":"25",
  "execType":"Trade","execValue":"8.435","isMaker":false,"feeRate":"0.0006","tradeIv":"",
  "markIv":"","blockTradeId":"","markPrice":"0.3391","indexPrice":"","underlyingPrice":"",
  "leavesQty":"0","orderId":"f6e324ff-99c2-4e89-9739-3086e47f9381","orderLinkId":"",
  "orderPrice":"0.3207","orderQty":"25","orderType":"Market","stopOrderType":"UNKNOWN",
  "side":"Sell","execTime":"1672364174443","isLeverage":"0","closedSize":"","seq":4688002127}]}"#;

const POSITION: &str = r#"{"id":"1003076014fb7eedb-c7e6-45d6-a8c1-270f0169171a","topic":"position",
  "creationTime":1697682317044,"data":[{"positionIdx":2,"tradeMode":0,"riskId":1,
  "riskLimitValue":"2000000","symbol":"BTCUSDT","side":"","size":"0","entryPrice":"0",
  "leverage":"10","positionValue":"0","positionBalance":"0","markPrice":"28184.5",
  "positionIM":"0","positionMM":"0","takeProfit":"0","stopLoss":"0","trailingStop":"0",
  "unrealisedPnl":"0","cumRealisedPnl":"-25.06579337","createdTime":"1694402496913",
  "updatedTime":"1697682317038","tpslMode":"Full","liqPrice":"0","bustPrice":"",
  "category":"linear","positionStatus":"Normal","adlRankIndicator":0,"autoAddMargin":0,
  "leverageSysUpdatedTime":"","mmrSysUpdatedTime":"","seq":8327597863,"isReduceOnly":false},
  {"positionIdx":1,"symbol":"BTCUSDT","side":"Buy","size":"0.01","entryPrice":"28000.5",
  "markPrice":"28184.5","updatedTime":"1697682317040","category":"linear"}]}"#;

const WALLET: &str = r#"{"id":"592324d2bce751-ad38-48eb-8f42-4671d1fb4d4e","topic":"wallet",
  "creationTime":1700034722104,"data":[{"accountIMRate":"0","accountMMRate":"0",
  "totalEquity":"10262.91335023","totalWalletBalance":"9684.46297164","accountType":"UNIFIED",
  "coin":[{"coin":"BTC","walletBalance":"0.1"},{"coin":"USDT","equity":"9684.5",
  "walletBalance":"9684.46297164","cumRealisedPnl":"-8.9"}]}]}"#;

#[test]
fn the_auth_message_signs_get_realtime_and_the_expiry() {
    let key = ApiKey {
        key: "k".into(),
        secret: "s".into(),
    };
    let msg: serde_json::Value = serde_json::from_str(&auth(&key, 1_000)).unwrap();
    assert_eq!(msg["op"], "auth");
    assert_eq!(msg["args"][0], "k");
    assert_eq!(msg["args"][1], 11_000);
    assert_eq!(msg["args"][2], hmac_hex("s", "GET/realtime11000"));
    let sub: serde_json::Value = serde_json::from_str(&subscribe()).unwrap();
    assert_eq!(sub["args"].as_array().unwrap().len(), 4);
}

#[test]
fn reads_the_documented_order_update() {
    let Frame::Updates(u) = read(ORDER).unwrap() else {
        panic!("updates")
    };
    let Update::Order { order, time_ms, .. } = &u[0] else {
        panic!("{u:?}")
    };
    assert_eq!(*time_ms, 1672364262457);
    assert_eq!(order.symbol, "ETH/USDT");
    assert_eq!(order.client_id, "bz-1-1-e");
    assert_eq!(
        (order.kind, order.status),
        (OrderKind::Market, OrderStatus::Filled)
    );
    assert_eq!(
        (order.filled_qty, order.avg_fill_price, order.fee),
        (dec!(1), dec!(75), dec!(0.0358635))
    );
    assert_eq!(order.position_side, Side::Short);
}

#[test]
fn reads_fills_positions_and_the_usdt_wallet() {
    let Frame::Updates(u) = read(EXECUTION).unwrap() else {
        panic!()
    };
    let Update::Execution { symbol, exec } = &u[0] else {
        panic!("{u:?}")
    };
    assert_eq!(symbol, "XRP/USDT");
    assert_eq!(
        (exec.qty, exec.price, exec.time_ms),
        (dec!(25), dec!(0.3374), 1672364174443)
    );
    let Frame::Updates(u) = read(POSITION).unwrap() else {
        panic!()
    };
    assert_eq!(u.len(), 2);
    let Update::Position {
        position, time_ms, ..
    } = &u[1]
    else {
        panic!()
    };
    assert_eq!((position.side, position.size), (Side::Long, dec!(0.01)));
    assert_eq!(
        (position.avg_entry, *time_ms),
        (dec!(28000.5), 1697682317040)
    );
    assert_eq!(
        read(WALLET).unwrap(),
        Frame::Updates(vec![Update::Wallet {
            balance: dec!(9684.46297164),
            time_ms: 1700034722104
        }])
    );
}

#[test]
fn acks_and_pongs_are_told_apart_from_data() {
    let ok = r#"{"success":true,"ret_msg":"","op":"auth","conn_id":"cejreaspqfh3sjdnldmg-p"}"#;
    assert_eq!(
        read(ok).unwrap(),
        Frame::Ack {
            op: "auth".into(),
            success: true,
            msg: String::new()
        }
    );
    let bad = r#"{"success":false,"ret_msg":"Params Error","op":"subscribe","conn_id":"x"}"#;
    assert!(matches!(
        read(bad).unwrap(),
        Frame::Ack { success: false, .. }
    ));
    let pong = r#"{"req_id":"","op":"pong","args":["1675418560633"],"conn_id":"x"}"#;
    assert_eq!(read(pong).unwrap(), Frame::Other);
}

#[test]
fn garbled_frames_are_malformed_never_zero() {
    for bad in [
        "not json".to_string(),
        ORDER.replace(r#""cumExecQty":"1""#, r#""cumExecQty":"x""#),
        ORDER.replace(r#""updatedTime":"1672364262457","#, ""),
        POSITION.replace(r#""size":"0.01""#, r#""size":"""#),
        WALLET.replace(
            r#""walletBalance":"9684.46297164""#,
            r#""walletBalance":"""#,
        ),
        EXECUTION.replace(r#""execQty":"25""#, r#""execQty":null"#),
    ] {
        assert!(
            matches!(read(&bad), Err(ExchangeError::Malformed(_))),
            "{bad}: {:?}",
            read(&bad)
        );
    }
}
