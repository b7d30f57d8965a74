//! The runner's paper-account commands (`blitz paper …`, docs/operations.md): the
//! runner owns the paper exchange, so changes to it from outside go through here.

use std::sync::Arc;

use rusqlite::Connection;

use crate::bots::config::side_name;
use crate::exchange::paper::Paper;
use crate::store::bots;

use super::protocol::{PaperOp, PaperReply, PaperRequest};

pub(super) fn execute(paper: &Arc<Paper>, conn: &Connection, req: &PaperRequest) -> PaperReply {
    match req.op {
        PaperOp::ClosePosition => close_position(paper, req),
        PaperOp::ResetAccount => reset_account(paper, conn, req.user_id),
    }
}

/// Resets the account unless the user's bot is active (it would trade on an
/// account that vanished under it).
fn reset_account(paper: &Arc<Paper>, conn: &Connection, uid: i64) -> PaperReply {
    let reply = |done, bot_active, message: String| PaperReply {
        done,
        message,
        client_id: None,
        bot_active,
    };
    match bots::get(conn, uid) {
        Ok(Some(row)) if row.status.is_active() => {
            return reply(
                false,
                true,
                "stop the bot before resetting its paper account".into(),
            )
        }
        Ok(_) => {}
        Err(e) => return reply(false, false, format!("cannot read the bot's state: {e}")),
    }
    match paper.reset_account(uid) {
        Ok(()) => reply(true, false, format!("user {uid}'s paper account was reset")),
        Err(e) => reply(
            false,
            false,
            format!("the paper exchange refused the reset: {e}"),
        ),
    }
}

/// Closes the position with a manual market order, as a trader on the exchange's
/// site would; the bot trading it sees a close from outside.
fn close_position(paper: &Arc<Paper>, req: &PaperRequest) -> PaperReply {
    let what = format!("{} {}", side_name(req.side), req.symbol);
    let (done, message, client_id) = match paper
        .account(req.user_id)
        .close_position(&req.symbol, req.side)
    {
        Ok(Some(o)) => (
            true,
            format!(
                "closed user {}'s {what} position: {} at {} (fee {}), order {}",
                req.user_id, o.filled_qty, o.avg_fill_price, o.fee, o.client_id
            ),
            Some(o.client_id),
        ),
        Ok(None) => (
            false,
            format!(
                "user {} has no {what} position on the paper exchange",
                req.user_id
            ),
            None,
        ),
        Err(e) => (
            false,
            format!("the paper exchange refused to close {what}: {e}"),
            None,
        ),
    };
    PaperReply {
        done,
        message,
        client_id,
        bot_active: false,
    }
}
