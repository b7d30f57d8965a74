//! Cursor pagination as Bybit v5 does it: `limit` items a page and an opaque
//! `nextPageCursor` (empty on the last page) that the client sends back as
//! `cursor`. Bybit's cursors are percent-encoded text (docs/v5/order/open-order
//! shows "page_args%3Dfd43...%26symbol%3D6%26"), so a client that sends one back
//! verbatim or encoded once more must both work; ours reads `offset=N` either way.

/// The page of `items` a request asks for and the cursor of the next one; None
/// when the cursor is not one this fake issued.
pub fn page<T: Clone>(items: &[T], limit: usize, cursor: Option<&str>) -> Option<(Vec<T>, String)> {
    let start = match cursor.filter(|c| !c.is_empty()) {
        None => 0,
        Some(c) => {
            let c = c.replace("%3D", "=");
            c.strip_prefix("offset=")?.parse::<usize>().ok()?
        }
    };
    let end = (start + limit).min(items.len());
    let out = items.get(start..end).unwrap_or_default().to_vec();
    let next = if end < items.len() {
        format!("offset%3D{end}")
    } else {
        String::new()
    };
    Some((out, next))
}

/// `limit` as Bybit reads it: [1, max], `default` when absent; None when out of range
/// or not a number.
pub fn limit(raw: Option<&str>, default: usize, max: usize) -> Option<usize> {
    match raw {
        None => Some(default),
        Some(s) => s.parse::<usize>().ok().filter(|n| (1..=max).contains(n)),
    }
}
