//! `/login`, `/register` and `/forgot`: forms that post to the JSON account API
//! from the page's script. The login form also works without the script: it posts
//! to `POST /login` (and, with two-factor login, the code to `POST /login/2fa`),
//! which check the form's CSRF token against the page's `blitz_login` cookie
//! (`auth::csrf`) before they look at the password or code.

use askama::Template;
use blitz_worker::Response;

use super::frame::Frame;
use super::html::render;
use crate::auth::accounts::{LoggedIn, LoginStep};
use crate::auth::two_factor::{self, TwoFactorError};
use crate::auth::{accounts, cookie, csrf, AccountError};
use crate::http::ctx::Ctx;
use crate::http::input;
use crate::secrets::SecretKey;

#[derive(Template)]
#[template(path = "login.html", config = "src/http/pages/askama.toml")]
struct Login {
    /// `frame.csrf` holds the login form's token.
    frame: Frame,
    next: String,
    /// The address typed before a refusal, so it need not be typed again.
    email: String,
    problem: Option<String>,
    /// Set once the password was right for an account with two-factor login: the
    /// page then asks for the code instead (`POST /login/2fa`).
    ticket: Option<String>,
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
    login_form(ctx, 200, next, String::new(), None, None)
}

/// The login page with a token for the browser's nonce (reused when it has one,
/// so that two open login tabs both stay valid).
fn login_form(
    ctx: &Ctx<'_, '_>,
    status: u16,
    next: String,
    email: String,
    problem: Option<&str>,
    ticket: Option<String>,
) -> Response {
    let mut frame = Frame::anonymous("Log in", &ctx.page_notice);
    // Without the key the scripted login still works; the plain form is refused.
    let nonce = instance_key(ctx).map(|key| {
        let nonce = login_nonce(ctx)
            .filter(|n| csrf::is_login_nonce(&key, n))
            .map_or_else(|| csrf::new_login_nonce(&key), str::to_string);
        frame.csrf = csrf::login_token(&key, &nonce);
        nonce
    });
    let page = Login {
        frame,
        next,
        email,
        problem: problem.map(str::to_string),
        ticket,
    };
    let resp = render(status, &page);
    match nonce {
        Some(nonce) => resp.header(
            "Set-Cookie",
            cookie::set_login(&nonce, ctx.config.session_secure),
        ),
        None => resp,
    }
}

fn login_nonce<'a>(ctx: &Ctx<'a, '_>) -> Option<&'a str> {
    cookie::named(ctx.req.header_all("cookie"), cookie::LOGIN_NAME)
}

fn instance_key(ctx: &Ctx<'_, '_>) -> Option<SecretKey> {
    SecretKey::resolve(ctx.config.secret_key.as_deref(), ctx.config.instance_dir())
        .inspect_err(|e| slog::error!(ctx.log, "no secret key for the login form"; "error" => %e))
        .ok()
}

/// `POST /login`: the form without the page's script. A token that does not match
/// the browser's `blitz_login` cookie is refused before the password is read; the
/// rest follows `POST /api/auth/login`, answered as pages.
pub fn submit(ctx: &mut Ctx<'_, '_>) -> Response {
    let next = next_path(ctx.req.query);
    let (email, password) = (form_field(ctx, "email"), form_field(ctx, "password"));
    if !form_is_genuine(ctx) {
        return expired_form(ctx);
    }
    let done = ctx
        .db
        .conn()
        .map_err(AccountError::from)
        .and_then(|mut c| accounts::login(&mut c, ctx.coord, &email, &password, ctx.client_ip));
    match done {
        Ok(LoginStep::Done(done)) => logged_in(&next, &done, ctx.config.session_secure),
        Ok(LoginStep::SecondFactor { ticket }) => {
            login_form(ctx, 200, next, email, None, Some(ticket))
        }
        Err(e) => refused(ctx, next, email, None, e),
    }
}

/// `POST /login/2fa`: the code step of the form without the page's script; the
/// ticket comes from the page `submit` rendered.
pub fn submit_code(ctx: &mut Ctx<'_, '_>) -> Response {
    let next = next_path(ctx.req.query);
    let (ticket, code) = (form_field(ctx, "ticket"), form_field(ctx, "code"));
    if !form_is_genuine(ctx) {
        return expired_form(ctx);
    }
    let Some(key) = instance_key(ctx) else {
        return super::server_error(&ctx.page_notice);
    };
    let done = ctx
        .db
        .conn()
        .map_err(|e| TwoFactorError::Account(e.into()))
        .and_then(|mut c| {
            two_factor::verify_login(&mut c, ctx.coord, &key, &ticket, &code, ctx.client_ip)
        });
    match done {
        Ok(done) => logged_in(&next, &done, ctx.config.session_secure),
        Err(TwoFactorError::LoginCode) => {
            let problem = Some("Invalid code: check your authenticator app and try again.");
            login_form(ctx, 401, next, String::new(), problem, Some(ticket))
        }
        Err(TwoFactorError::LoginTicket) => login_form(
            ctx,
            401,
            next,
            String::new(),
            Some("The code step expired: log in again."),
            None,
        ),
        Err(TwoFactorError::Account(e)) => refused(ctx, next, String::new(), Some(ticket), e),
        Err(e) => {
            slog::error!(ctx.log, "two-factor login failed"; "error" => %e);
            super::server_error(&ctx.page_notice)
        }
    }
}

fn form_field(ctx: &Ctx<'_, '_>, name: &str) -> String {
    input::is_form(ctx.req)
        .then(|| input::form_field(ctx.req.body, name))
        .flatten()
        .unwrap_or_default()
}

/// Whether the form's token matches the browser's `blitz_login` cookie: checked
/// before the password or code is looked at.
fn form_is_genuine(ctx: &Ctx<'_, '_>) -> bool {
    let token = form_field(ctx, "csrf_token");
    match (instance_key(ctx), login_nonce(ctx)) {
        (Some(key), Some(nonce)) => csrf::login_matches(&key, nonce, &token),
        _ => false,
    }
}

fn expired_form(ctx: &Ctx<'_, '_>) -> Response {
    super::error_page(
        403,
        "Login form expired",
        "This login form has expired or did not come from this site. \
         Open the login page again and retry.",
        &ctx.page_notice,
    )
}

fn logged_in(next: &str, done: &LoggedIn, secure: bool) -> Response {
    Response::new(303)
        .header("Location", next.to_string())
        .header("Cache-Control", "no-store")
        .header("Set-Cookie", cookie::set(&done.cookie, secure))
}

/// A refused login, answered as the login page again with what went wrong.
fn refused(
    ctx: &Ctx<'_, '_>,
    next: String,
    email: String,
    ticket: Option<String>,
    e: AccountError,
) -> Response {
    let page = |status, problem: &str| {
        login_form(
            ctx,
            status,
            next.clone(),
            email.clone(),
            Some(problem),
            None,
        )
    };
    match e {
        AccountError::BadCredentials => page(401, "Invalid email or password."),
        AccountError::NotVerified => page(
            403,
            "Your e-mail address is not verified yet: open the link in the mail we sent you.",
        ),
        AccountError::Disabled => page(403, "This account is disabled."),
        AccountError::TooManyAttempts { retry_after_s } => login_form(
            ctx,
            429,
            next.clone(),
            email.clone(),
            Some("Too many failed login attempts; wait a minute and try again."),
            ticket,
        )
        .header("Retry-After", retry_after_s.to_string()),
        e => {
            slog::error!(ctx.log, "login failed"; "error" => %e);
            super::server_error(&ctx.page_notice)
        }
    }
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
