//! The runner's paper-account commands (`blitz paper …`, docs/operations.md): the
//! runner owns the paper exchange, so changes to it from outside go through here.

use std::sync::Arc;

use crate::store::sql::Conn;

use crate::bots::config::side_name;
use crate::exchange::paper::Paper;

use super::manager::{Manager, PaperReset};
use super::protocol::{PaperOp, PaperReply, PaperRequest};

pub(super) fn execute(m: &Manager, conn: &Conn, req: &PaperRequest) -> PaperReply {
    match req.op {
        PaperOp::ClosePosition => close_position(m.paper(), req),
        PaperOp::ResetAccount => reset_account(m, conn, req.user_id),
    }
}

/// Resets the account unless one of the user's bots could still trade on it or
/// still holds a cycle there (see [`Manager::reset_paper`]).
fn reset_account(m: &Manager, conn: &Conn, uid: i64) -> PaperReply {
    let reply = |done, message: String| PaperReply {
        done,
        ..PaperReply::refused(message)
    };
    match m.reset_paper(conn, uid) {
        PaperReset::Done => reply(true, format!("user {uid}'s paper account was reset")),
        PaperReset::BotActive => PaperReply {
            bot_active: true,
            ..reply(
                false,
                "stop the bots before resetting the paper account".into(),
            )
        },
        PaperReset::PositionOpen => PaperReply {
            position_open: true,
            ..reply(
                false,
                "a bot's last cycle is still open: start the bot and stop it with \
                 close_position (if the position already closed while the bot was \
                 stopped, the start records how), then reset the paper account"
                    .into(),
            )
        },
        PaperReset::Failed(message) => reply(false, message),
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
        client_id,
        ..PaperReply::refused(message)
    }
}
