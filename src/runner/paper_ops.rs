//! The runner's paper-account commands (`blitz paper …`, docs/operations.md): the
//! runner owns the paper exchange, so changes to it from outside go through here.

use std::sync::Arc;

use crate::bots::config::side_name;
use crate::exchange::paper::Paper;

use super::protocol::{PaperOp, PaperReply, PaperRequest};

pub(super) fn execute(paper: &Arc<Paper>, req: &PaperRequest) -> PaperReply {
    match req.op {
        PaperOp::ClosePosition => close_position(paper, req),
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
    }
}
