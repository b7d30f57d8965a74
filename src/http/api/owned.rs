//! A path's `<id>` resolved to something the caller owns (CONTRACT C14).
//!
//! Invariant: another user's bot or exchange account, an id that was never given,
//! and a segment that is not a positive whole number all get the same answer —
//! the app's 404 `{"error":"Not found"}` — before any other check (body, state,
//! runner), so no answer tells whether someone else's id exists.

use crate::store::sql::Conn;

use super::ApiError;
use crate::http::ctx::Ctx;
use crate::http::reply;
use crate::store::user_bots::{self, BotInfo};

/// The app's 404 for the JSON API.
pub fn not_found() -> ApiError {
    reply::error(404, "Not found").into()
}

/// The path parameter `name` as an id (`parse_id`), or the 404.
pub fn path_id(ctx: &Ctx<'_, '_>, name: &str) -> Result<i64, ApiError> {
    ctx.params
        .get(name)
        .and_then(parse_id)
        .ok_or_else(not_found)
}

/// A positive id written in ASCII digits only (no sign, no exponent, no blank),
/// so that one resource has one path.
pub fn parse_id(segment: &str) -> Option<i64> {
    Some(segment)
        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|s| s.parse::<i64>().ok())
        .filter(|id| *id > 0)
}

/// The caller's user id (the route admits only signed-in users).
pub fn caller(ctx: &Ctx<'_, '_>) -> Result<i64, ApiError> {
    ctx.identity
        .user_id()
        .ok_or_else(|| reply::error(401, "Authentication required").into())
}

/// The bot named by the path's `<id>`, if it is the caller's.
pub fn bot(ctx: &mut Ctx<'_, '_>) -> Result<BotInfo, ApiError> {
    let uid = caller(ctx)?;
    let id = path_id(ctx, "id")?;
    let conn = ctx.db.conn()?;
    bot_of(&conn, uid, id)
}

/// Bot `id` of user `uid`, or the 404.
pub fn bot_of(conn: &Conn, uid: i64, id: i64) -> Result<BotInfo, ApiError> {
    user_bots::get(conn, uid, id)?.ok_or_else(not_found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_positive_whole_numbers_are_ids() {
        assert_eq!(parse_id("42"), Some(42));
        for bad in [
            "",
            "0",
            "-1",
            "+1",
            "1.5",
            "1e3",
            "abc",
            " 1",
            "99999999999999999999",
        ] {
            assert_eq!(parse_id(bad), None, "{bad}");
        }
    }
}
