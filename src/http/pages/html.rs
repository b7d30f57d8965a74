//! The HTML page frame and escaping. Pages carry no inline script or style, so the
//! default self-only CSP holds.

use blitz_worker::Response;

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Where the maintenance notice and banner go; `WebApp` fills it in for every
/// page it serves (see `notice_html`), so no page can forget them.
pub const NOTICE_SLOT: &str = "<!--blitz-notice-->";

/// The notice block: the maintenance message and the banner, escaped.
pub fn notice_html(maintenance: bool, banner: &str) -> String {
    let mut out = String::new();
    if maintenance {
        out.push_str(
            "<div class=\"notice maintenance\" role=\"status\">The service is under \
            maintenance: starting, stopping and recovering bots is paused.</div>",
        );
    }
    if !banner.is_empty() {
        out.push_str(&format!(
            "<div class=\"notice banner\" role=\"status\">{}</div>",
            escape(banner)
        ));
    }
    out
}

/// A complete page; `title` is text, `main` is already-escaped HTML.
pub fn page(status: u16, title: &str, main: &str) -> Response {
    let body = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · Blitz</title></head><body>{NOTICE_SLOT}<main>{main}</main></body></html>\n",
        escape(title)
    );
    Response::new(status)
        .header("Content-Type", "text/html; charset=utf-8")
        .header("Cache-Control", "no-store")
        .body(body.into_bytes())
}

/// An error page for page routes (HTML instead of the API's JSON).
pub fn error_page(status: u16, title: &str, message: &str) -> Response {
    page(
        status,
        title,
        &format!(
            "<h1>{}</h1><p>{}</p><p><a href=\"/\">Back to Blitz</a></p>",
            escape(title),
            escape(message)
        ),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_markup() {
        assert_eq!(
            super::escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
