//! Funding (docs/bots.md, Paper exchange): every 8 hours of the paper clock — at
//! 00:00, 08:00 and 16:00 UTC — each open position pays or receives
//! `size × mark × rate`: a long pays a positive rate, a short receives it (and the
//! other way round for a negative rate). The rate is the live quote's funding rate
//! with live prices, else `PAPER_FUNDING_RATE`. After a downtime each boundary
//! crossed is settled once, at the current marks.

use crate::params;
use crate::store::sql::Conn;
use rust_decimal::Decimal;

use super::book::{Book, Dirty, MktId, Settlement};
use super::PaperError;
use crate::bots::ladder::Side;
use crate::exchange::FundingPayment;
use crate::money::sql::{self as money_sql, Sql};

/// Funding is settled at every multiple of this since the Unix epoch (00:00,
/// 08:00, 16:00 UTC).
pub const FUNDING_EVERY_MS: i64 = 8 * 3_600_000;

/// The latest funding boundary at or before `ms`.
pub fn boundary_at_or_before(ms: i64) -> i64 {
    ms.div_euclid(FUNDING_EVERY_MS) * FUNDING_EVERY_MS
}

/// What a position of `side` worth `value` receives (+) or pays (−) at `rate`.
pub fn funding_amount(side: Side, value: Decimal, rate: Decimal) -> Decimal {
    crate::money::pnl(-side.sign() * value * rate)
}

impl Book {
    /// Settles, for each account in memory, every funding boundary after its own
    /// last settled one, up to `now`. An account's clock moves also when it holds
    /// nothing: a position opened later must not pay for boundaries before it.
    pub fn settle_funding(&mut self, now: i64, dirty: &mut Dirty) {
        let due = boundary_at_or_before(now);
        if self.funded_ms.is_some_and(|f| f >= due) {
            return;
        }
        // In account order, so that a seeded exchange settles the same way each run.
        let mut behind: Vec<(i64, i64)> = self
            .accounts
            .iter()
            .filter(|(_, a)| a.funded_ms < due)
            .map(|(&uid, a)| (uid, a.funded_ms))
            .collect();
        behind.sort_unstable();
        for (uid, mut last) in behind {
            while last < due {
                last += FUNDING_EVERY_MS;
                self.settle_account(uid, last, dirty);
            }
            if let Some(acct) = self.accounts.get_mut(&uid) {
                acct.funded_ms = due;
            }
            dirty.balances.insert(uid);
        }
        self.funded_ms = Some(due);
    }

    /// One boundary's funding of every position of one account.
    fn settle_account(&mut self, uid: i64, at: i64, dirty: &mut Dirty) {
        let mut held: Vec<MktId> = self
            .accounts
            .get(&uid)
            .map(|a| a.positions.keys().copied().collect())
            .unwrap_or_default();
        held.sort_unstable();
        for mkt in held {
            let m = &self.markets[mkt];
            let rate = m
                .quote
                .and_then(|q| q.funding_rate)
                .filter(|_| self.live.is_some())
                .unwrap_or(self.funding_rate);
            let mark = m.price;
            for side in [Side::Long, Side::Short] {
                let size = self.position(uid, mkt, side).size;
                if size <= Decimal::ZERO || rate.is_zero() {
                    continue;
                }
                let amount = funding_amount(side, size * mark, rate);
                self.account_mut(uid, dirty).balance += amount;
                dirty.settlements.push(Settlement {
                    user_id: uid,
                    mkt,
                    side,
                    amount,
                    rate,
                    time_ms: at,
                });
            }
        }
    }
}

/// Writes the settlements (inside the caller's transaction; each account's clock
/// is written with its balance).
pub(super) fn write(conn: &Conn, book: &Book, dirty: &Dirty) -> crate::store::SqlResult<()> {
    for s in &dirty.settlements {
        conn.prepare_cached(
            "INSERT INTO paper_funding (user_id, symbol, side, amount, rate, time_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![
            s.user_id,
            book.markets[s.mkt].symbol,
            super::persist::side_str(s.side),
            Sql(s.amount),
            Sql(s.rate),
            s.time_ms
        ])?;
    }
    Ok(())
}

/// The account's settlements on `symbol` at or after `since_ms`, oldest first.
pub(super) fn read(
    conn: &Conn,
    uid: i64,
    symbol: &str,
    since_ms: i64,
) -> Result<Vec<FundingPayment>, PaperError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, side, amount, time_ms FROM paper_funding
         WHERE user_id = ?1 AND symbol = ?2 AND time_ms >= ?3 ORDER BY id",
    )?;
    let mut rows = stmt.query(params![uid, symbol, since_ms])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(FundingPayment {
            id: r.get::<_, i64>(0)?.to_string(),
            symbol: symbol.to_owned(),
            amount: money_sql::get(&r, 2)?,
            time_ms: r.get(3)?,
            side: Some(super::persist::parse_side(&r.get::<_, String>(1)?)?),
        });
    }
    Ok(out)
}
