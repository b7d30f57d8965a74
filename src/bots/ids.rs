//! Deterministic client order ids: `bz-<uid>-<cycle>-<purpose>`. They depend
//! only on who, which cycle and what for, so a restarted bot computes the same ids
//! and finds its orders instead of placing them twice.
//! See docs/bots.md, Client order ids.

/// What an order is for within a cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Entry,
    /// Ladder leg `i` (1-based; the entry is leg 0).
    Leg(usize),
    /// The n-th take-profit placement of the cycle (it moves with the average).
    TakeProfit(u32),
    /// The n-th stop-loss placement.
    StopLoss(u32),
    /// The reduce-only market order of a `close_position` stop.
    Close,
}

/// The prefix of every order of user `uid`.
pub fn user_prefix(uid: i64) -> String {
    format!("bz-{uid}-")
}

pub fn client_id(uid: i64, cycle: i64, purpose: Purpose) -> String {
    let tail = match purpose {
        Purpose::Entry => "e".to_string(),
        Purpose::Leg(i) => format!("l{i}"),
        Purpose::TakeProfit(n) => format!("tp{n}"),
        Purpose::StopLoss(n) => format!("sl{n}"),
        Purpose::Close => "x".to_string(),
    };
    format!("bz-{uid}-{cycle}-{tail}")
}

/// Parses one of user `uid`'s ids back into (cycle, purpose); `None` for anything
/// else, including other users' ids and foreign orders.
pub fn parse(uid: i64, id: &str) -> Option<(i64, Purpose)> {
    let rest = id.strip_prefix(&user_prefix(uid))?;
    let (cycle, tail) = rest.split_once('-')?;
    let cycle: i64 = cycle.parse().ok()?;
    let num = |s: &str| s.parse::<u32>().ok().filter(|_| !s.starts_with('+'));
    let purpose = match tail {
        "e" => Purpose::Entry,
        "x" => Purpose::Close,
        t if t.starts_with("tp") => Purpose::TakeProfit(num(&t[2..])?),
        t if t.starts_with("sl") => Purpose::StopLoss(num(&t[2..])?),
        t if t.starts_with('l') => Purpose::Leg(num(&t[1..])? as usize),
        _ => return None,
    };
    Some((cycle, purpose))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip() {
        for p in [
            Purpose::Entry,
            Purpose::Leg(3),
            Purpose::TakeProfit(2),
            Purpose::StopLoss(1),
            Purpose::Close,
        ] {
            let id = client_id(42, 7, p);
            assert_eq!(parse(42, &id), Some((7, p)), "{id}");
        }
        assert_eq!(client_id(42, 7, Purpose::Leg(2)), "bz-42-7-l2");
        assert_eq!(client_id(1, 0, Purpose::TakeProfit(1)), "bz-1-0-tp1");
    }

    #[test]
    fn other_ids_are_not_ours() {
        assert_eq!(parse(4, "bz-42-7-e"), None);
        assert_eq!(parse(42, "manual-order"), None);
        assert_eq!(parse(42, "bz-42-x-e"), None);
        assert_eq!(parse(42, "bz-42-7-lx"), None);
        assert_eq!(parse(42, "bz-42-7-tp+1"), None);
    }
}
