//! Deterministic client order ids: `bz-<bot id>-<cycle>-<purpose>`. They depend
//! only on which bot, which cycle and what for, so a restarted bot computes the
//! same ids and finds its orders instead of placing them twice. A ladder leg
//! re-placed after a stop and start carries its round: `l<i>` first, then
//! `l<i>r<k>`. A user's default bot made by the upgrade to several bots has the
//! user's id, so the `bz-<user id>-…` orders placed before it stay its own.
//! See docs/bots.md, Client order ids.

/// One bot and its owner: rows of the per-bot tables carry both (per-user
/// queries, such as PnL over all of a user's bots, need no join).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BotRef {
    pub user_id: i64,
    pub bot_id: i64,
}

/// What an order is for within a cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Entry,
    /// Ladder leg `i` (1-based; the entry is leg 0) of placement round `k`
    /// (0 first; each start of an open cycle after a stop is a new round).
    Leg(usize, u32),
    /// The n-th take-profit placement of the cycle (it moves with the average).
    TakeProfit(u32),
    /// The n-th stop-loss placement.
    StopLoss(u32),
    /// The n-th reduce-only market close of a `close_position` stop in the
    /// cycle (0: the unnumbered `x` of ids written before closes were counted).
    Close(u32),
    /// The n-th reduce-only market close of a trailing take-profit.
    Trailing(u32),
}

impl Purpose {
    /// The ladder leg's index, for legs.
    pub fn leg(self) -> Option<usize> {
        match self {
            Purpose::Leg(i, _) => Some(i),
            _ => None,
        }
    }
}

/// The prefix of every order of bot `bot_id`.
pub fn bot_prefix(bot_id: i64) -> String {
    format!("bz-{bot_id}-")
}

/// The bot whose tag `id` carries, for any well-formed id of any bot: an order
/// of a sibling bot on the same account is told from a foreign one by this.
pub fn tagged_bot(id: &str) -> Option<i64> {
    let (bot, rest) = id.strip_prefix("bz-")?.split_once('-')?;
    let bot: i64 = bot.parse().ok().filter(|_| !bot.starts_with('+'))?;
    parse(bot, &format!("bz-{bot}-{rest}")).map(|_| bot)
}

pub fn client_id(bot_id: i64, cycle: i64, purpose: Purpose) -> String {
    let tail = match purpose {
        Purpose::Entry => "e".to_string(),
        Purpose::Leg(i, 0) => format!("l{i}"),
        Purpose::Leg(i, k) => format!("l{i}r{k}"),
        Purpose::TakeProfit(n) => format!("tp{n}"),
        Purpose::StopLoss(n) => format!("sl{n}"),
        Purpose::Close(0) => "x".to_string(),
        Purpose::Close(n) => format!("x{n}"),
        Purpose::Trailing(n) => format!("tr{n}"),
    };
    format!("bz-{bot_id}-{cycle}-{tail}")
}

/// Parses one of bot `bot_id`'s ids back into (cycle, purpose); `None` for
/// anything else, including other bots' ids and foreign orders.
pub fn parse(bot_id: i64, id: &str) -> Option<(i64, Purpose)> {
    let rest = id.strip_prefix(&bot_prefix(bot_id))?;
    let (cycle, tail) = rest.split_once('-')?;
    let cycle: i64 = cycle.parse().ok()?;
    let num = |s: &str| s.parse::<u32>().ok().filter(|_| !s.starts_with('+'));
    let purpose = match tail {
        "e" => Purpose::Entry,
        "x" => Purpose::Close(0),
        t if t.starts_with('x') => Purpose::Close(num(&t[1..])?),
        t if t.starts_with("tp") => Purpose::TakeProfit(num(&t[2..])?),
        t if t.starts_with("sl") => Purpose::StopLoss(num(&t[2..])?),
        t if t.starts_with("tr") => Purpose::Trailing(num(&t[2..])?),
        t if t.starts_with('l') => {
            let (i, k) = match t[1..].split_once('r') {
                Some((i, k)) => (num(i)?, num(k)?),
                None => (num(&t[1..])?, 0),
            };
            Purpose::Leg(i as usize, k)
        }
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
            Purpose::Leg(3, 0),
            Purpose::Leg(3, 2),
            Purpose::TakeProfit(2),
            Purpose::StopLoss(1),
            Purpose::Close(0),
            Purpose::Close(2),
            Purpose::Trailing(4),
        ] {
            let id = client_id(42, 7, p);
            assert_eq!(parse(42, &id), Some((7, p)), "{id}");
        }
        assert_eq!(client_id(42, 7, Purpose::Leg(2, 0)), "bz-42-7-l2");
        assert_eq!(client_id(42, 7, Purpose::Leg(2, 1)), "bz-42-7-l2r1");
        assert_eq!(client_id(42, 7, Purpose::Trailing(1)), "bz-42-7-tr1");
        assert_eq!(client_id(42, 7, Purpose::Close(1)), "bz-42-7-x1");
        // The one close id of a cycle written before closes were counted.
        assert_eq!(parse(42, "bz-42-7-x"), Some((7, Purpose::Close(0))));
        // Ids written before rounds existed still read as round 0.
        assert_eq!(parse(42, "bz-42-7-l12"), Some((7, Purpose::Leg(12, 0))));
        assert_eq!(client_id(1, 0, Purpose::TakeProfit(1)), "bz-1-0-tp1");
    }

    #[test]
    fn other_ids_are_not_ours() {
        assert_eq!(parse(4, "bz-42-7-e"), None);
        assert_eq!(parse(42, "manual-order"), None);
        assert_eq!(parse(42, "bz-42-x-e"), None);
        assert_eq!(parse(42, "bz-42-7-lx"), None);
        assert_eq!(parse(42, "bz-42-7-tp+1"), None);
        assert_eq!(parse(42, "bz-42-7-l1r"), None);
        assert_eq!(parse(42, "bz-42-7-l1rx"), None);
        assert_eq!(parse(42, "bz-42-7-lr1"), None);
        assert_eq!(parse(42, "bz-42-7-xy"), None);
    }

    #[test]
    fn the_tag_names_its_bot() {
        assert_eq!(tagged_bot("bz-42-7-tp1"), Some(42));
        assert_eq!(tagged_bot(&client_id(9, 1, Purpose::Leg(2, 1))), Some(9));
        for other in ["bz-42", "bz-x-7-e", "bz-+4-7-e", "bz-4-7-q", "manual-1", ""] {
            assert_eq!(tagged_bot(other), None, "{other}");
        }
    }
}
