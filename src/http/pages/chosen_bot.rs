//! The bot a page shows: `?bot=<id>` among the caller's bots, else their first
//! (the default bot). Another user's bot, an id that was never given and a page
//! of a user without bots all get the same 404, so no page tells whether someone
//! else's bot exists.

use super::PageError;
use crate::http::input;
use crate::store::user_bots::BotInfo;

/// The bot of the `bot` query parameter in `list` (the caller's bots), or the
/// first when the parameter is absent or not a number.
pub fn pick<'a>(list: &'a [BotInfo], query: &str) -> Result<&'a BotInfo, PageError> {
    let wanted = input::query_param(query, "bot").and_then(|b| b.parse::<i64>().ok());
    let found = match wanted {
        Some(id) => list.iter().find(|b| b.id == id),
        None => list.first(),
    };
    found.ok_or(PageError::NotFound)
}
