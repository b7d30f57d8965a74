//! `/login`, `/register` and `/forgot`: forms that post to the JSON account API
//! from the page's script.

use askama::Template;
use blitz_worker::Response;

use super::frame::Frame;
use super::html::render;
use crate::http::ctx::Ctx;
use crate::http::input;

#[derive(Template)]
#[template(path = "login.html", config = "src/http/pages/askama.toml")]
struct Login {
    frame: Frame,
    next: String,
}

#[derive(Template)]
#[template(path = "register.html", config = "src/http/pages/askama.toml")]
struct Register {
    frame: Frame,
}

#[derive(Template)]
#[template(path = "forgot.html", config = "src/http/pages/askama.toml")]
struct Forgot {
    frame: Frame,
}

/// Where to go after logging in: a local path only, never another site. Only
/// visible ASCII passes: a tab or line break would be dropped by the browser
/// (turning `/\t/evil` into `//evil`) or split a `Location` header.
fn next_path(query: &str) -> String {
    input::query_param(query, "next")
        .filter(|n| {
            n.starts_with('/')
                && !n.starts_with("//")
                && n.bytes().all(|b| b.is_ascii_graphic() && b != b'\\')
        })
        .unwrap_or_else(|| "/".into())
}

pub fn login(ctx: &mut Ctx<'_, '_>) -> Response {
    let next = next_path(ctx.req.query);
    if ctx.identity.principal().is_some() {
        return Response::new(303)
            .header("Location", next)
            .header("Cache-Control", "no-store");
    }
    render(
        200,
        &Login {
            frame: Frame::anonymous("Log in", &ctx.page_notice),
            next,
        },
    )
}

pub fn register(ctx: &mut Ctx<'_, '_>) -> Response {
    render(
        200,
        &Register {
            frame: Frame::anonymous("Create an account", &ctx.page_notice),
        },
    )
}

pub fn forgot(ctx: &mut Ctx<'_, '_>) -> Response {
    render(
        200,
        &Forgot {
            frame: Frame::anonymous("Forgot password", &ctx.page_notice),
        },
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(super::next_path("next=%2Fsettings"), "/settings");
        assert_eq!(super::next_path("next=%2F%2Fevil.example"), "/");
        assert_eq!(super::next_path("next=https%3A%2F%2Fevil.example"), "/");
        assert_eq!(super::next_path(""), "/");
        // Characters a browser drops or a header would split on.
        for bad in [
            "%2F%09%2Fevil.example",
            "%2F%0A%2Fevil.example",
            "%2F%0D%0ASet-Cookie:x",
            "%2F%5Cevil.example",
            "%2F%20x",
        ] {
            assert_eq!(super::next_path(&format!("next={bad}")), "/", "{bad}");
        }
        assert_eq!(super::next_path("next=%2Fpnl%3Fdays%3D90"), "/pnl?days=90");
    }
}
