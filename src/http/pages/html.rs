//! The HTML response and the plain message page.
//! Pages carry no inline script or style, so the default self-only CSP holds.

use askama::Template;
use blitz_worker::Response;

use super::frame::Frame;
use crate::store::settings::Notice;

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

/// A rendered template as an HTML response (never cached: pages are per user).
pub fn render(status: u16, t: &impl Template) -> Response {
    match t.render() {
        Ok(body) => html_response(status, body),
        Err(_) => html_response(
            500,
            "<!doctype html><title>Error · Blitz</title><p>Something went wrong.</p>".into(),
        ),
    }
}

fn html_response(status: u16, body: String) -> Response {
    Response::new(status)
        .header("Content-Type", "text/html; charset=utf-8")
        .header("Cache-Control", "no-store")
        .body(body.into_bytes())
}

#[derive(Template)]
#[template(path = "plain.html", config = "src/http/pages/askama.toml")]
struct Plain<'a> {
    frame: Frame,
    main: &'a str,
}

/// A simple page; `title` is text, `main` is already-escaped HTML.
pub fn page(status: u16, title: &str, main: &str, notice: &Notice) -> Response {
    render(
        status,
        &Plain {
            frame: Frame::anonymous(title, notice),
            main,
        },
    )
}

/// An error page for page routes (HTML instead of the API's JSON).
pub fn error_page(status: u16, title: &str, message: &str, notice: &Notice) -> Response {
    page(
        status,
        title,
        &format!(
            "<h1>{}</h1><p>{}</p><p><a href=\"/\">Back to Blitz</a></p>",
            escape(title),
            escape(message)
        ),
        notice,
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

    #[test]
    fn pages_show_the_notice_escaped_and_no_inline_code() {
        let notice = crate::store::settings::Notice {
            maintenance: true,
            banner: "<b>back at 6</b>".into(),
        };
        let r = super::error_page(404, "Not found", "<x>", &notice);
        let body = String::from_utf8(r.body.as_slice().to_vec()).unwrap();
        assert!(body.starts_with("<!doctype html>"));
        assert!(body.contains("&lt;x&gt;"));
        assert!(
            body.contains("under maintenance") && body.contains("&lt;b&gt;back at 6"),
            "{body}"
        );
        assert!(!body.contains("<script>") && !body.contains("style="));
        let quiet = super::error_page(404, "Not found", "x", &Default::default());
        let body = String::from_utf8(quiet.body.as_slice().to_vec()).unwrap();
        assert!(!body.contains("class=\"notice"));
    }
}
