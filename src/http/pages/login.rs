//! `/login`, `/register` and `/forgot`: forms that post to the JSON account API
//! (C4.6) from the page's script.

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

/// Where to go after logging in: a local path only, never another site.
fn next_path(query: &str) -> String {
    input::query_param(query, "next")
        .filter(|n| n.starts_with('/') && !n.starts_with("//") && !n.contains('\\'))
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
            frame: Frame::anonymous("Log in"),
            next,
        },
    )
}

pub fn register(_ctx: &mut Ctx<'_, '_>) -> Response {
    render(
        200,
        &Register {
            frame: Frame::anonymous("Create an account"),
        },
    )
}

pub fn forgot(_ctx: &mut Ctx<'_, '_>) -> Response {
    render(
        200,
        &Forgot {
            frame: Frame::anonymous("Forgot password"),
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
    }
}
