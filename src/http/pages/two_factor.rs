//! Two-factor login on the Settings page: its section (status; while a setup waits
//! for its first code, the QR code and the secret), and the plain HTML forms that
//! set up, enable (showing the recovery codes once) and disable it. The forms post
//! here, not to the JSON API, so the flow needs no script; each answer redirects
//! back to `/settings` with an outcome the section states, except enabling, whose
//! page shows the recovery codes. See docs/http-api.md, Two-factor login.

use askama::Template;
use blitz_worker::Response;

use super::frame::Frame;
use super::html::render;
use super::{qr, PageError};
use crate::auth::two_factor::{self, Enrolment, TwoFactorError};
use crate::auth::{AccountError, Via};
use crate::http::ctx::Ctx;
use crate::http::input;
use crate::store::users::User;

/// The enrolment waiting for its first code, as the page shows it.
pub struct PendingView {
    pub qr_svg: String,
    /// In groups of four, for typing into an app by hand.
    pub secret: String,
    pub otpauth_uri: String,
}

/// What the Settings page's two-factor section shows.
pub struct TwoFactorView {
    pub enabled: bool,
    pub recovery_left: i64,
    pub pending: Option<PendingView>,
    /// The outcome of the last form post: (`ok` or `bad`, message).
    pub outcome: Option<(&'static str, &'static str)>,
}

/// The outcomes a form post redirects with, by their `?2fa=` key.
const OUTCOMES: [(&str, &str, &str); 8] = [
    ("off", "ok", "Two-factor login is off."),
    ("setup", "ok", "Scan the QR code, then confirm with the code your app shows."),
    ("invalid-code", "bad", "That code was not accepted. Check that your phone's clock is right and type the newest code."),
    ("wrong-password", "bad", "The password is incorrect."),
    ("too-many", "bad", "Too many failed attempts. Wait a minute and try again."),
    ("already-on", "bad", "Two-factor login is already on."),
    ("not-pending", "bad", "Start the setup first."),
    ("not-on", "bad", "Two-factor login is off."),
];

pub fn view(ctx: &mut Ctx<'_, '_>, user: &User) -> Result<TwoFactorView, PageError> {
    let key = ctx
        .secret_key()
        .map_err(|e| PageError::Internal(e.to_string()))?;
    let conn = ctx.db.conn()?;
    let pending = two_factor::pending(&conn, &key, user).map_err(internal)?;
    let outcome = input::query_param(ctx.req.query, "2fa").and_then(|k| {
        OUTCOMES
            .iter()
            .find(|(key, _, _)| *key == k)
            .map(|(_, class, msg)| (*class, *msg))
    });
    Ok(TwoFactorView {
        enabled: user.two_factor,
        recovery_left: two_factor::recovery_left(&conn, user.id).map_err(internal)?,
        pending: pending.map(pending_view).transpose()?,
        outcome,
    })
}

fn pending_view(e: Enrolment) -> Result<PendingView, PageError> {
    let label = "QR code to scan with an authenticator app";
    let qr_svg = qr::svg(&e.otpauth_uri, label)
        .ok_or_else(|| PageError::Internal("otpauth URI too long for a QR code".into()))?;
    let chars: Vec<char> = e.secret.chars().collect();
    let groups: Vec<String> = chars.chunks(4).map(|c| c.iter().collect()).collect();
    Ok(PendingView {
        qr_svg,
        secret: groups.join(" "),
        otpauth_uri: e.otpauth_uri,
    })
}

fn internal(e: TwoFactorError) -> PageError {
    PageError::Internal(e.to_string())
}

#[derive(Template)]
#[template(path = "recovery_codes.html", config = "src/http/pages/askama.toml")]
struct RecoveryCodes {
    frame: Frame,
    codes: Vec<String>,
}

/// `POST /settings/2fa/setup`: a new pending secret, then back to the QR code.
pub fn setup(ctx: &mut Ctx<'_, '_>) -> Response {
    let result = with_user(ctx, |ctx, user, _, key| {
        two_factor::setup(&mut *ctx.db.conn()?, key, user)?;
        Ok(back("setup"))
    });
    answer(ctx, result)
}

/// `POST /settings/2fa/enable`: the first code turns it on; the answer is the only
/// page that ever shows the recovery codes.
pub fn enable(ctx: &mut Ctx<'_, '_>) -> Response {
    let code = field(ctx, "code");
    let result = with_user(ctx, |ctx, user, session, key| {
        let codes = two_factor::enable(&mut *ctx.db.conn()?, key, user.id, &code, session)?;
        let frame = Frame::for_user(
            &ctx.identity,
            "Recovery codes",
            "settings",
            &ctx.page_notice,
        );
        Ok(render(200, &RecoveryCodes { frame, codes }))
    });
    answer(ctx, result)
}

/// `POST /settings/2fa/disable`: password and a code (TOTP or recovery).
pub fn disable(ctx: &mut Ctx<'_, '_>) -> Response {
    let (password, code) = (field(ctx, "password"), field(ctx, "code"));
    let result = with_user(ctx, |ctx, user, _, key| {
        two_factor::disable(
            &mut *ctx.db.conn()?,
            ctx.coord,
            key,
            user,
            &password,
            &code,
            ctx.client_ip,
        )?;
        Ok(back("off"))
    });
    answer(ctx, result)
}

type Outcome = Result<Response, TwoFactorError>;

/// Runs `f` for the logged-in caller, their session and the instance key. Only a
/// browser session may change two-factor login (as in the API): a bearer token
/// is refused.
fn with_user(
    ctx: &mut Ctx<'_, '_>,
    f: impl FnOnce(&mut Ctx<'_, '_>, &User, i64, &crate::secrets::SecretKey) -> Outcome,
) -> Outcome {
    let p = ctx
        .identity
        .principal()
        .ok_or_else(|| AccountError::Internal("a user route without a user".into()))?;
    let Via::Session { id: session, .. } = p.via else {
        return Err(TwoFactorError::NeedsSession);
    };
    let user = p.user.clone();
    let key = ctx.secret_key()?;
    f(ctx, &user, session, &key)
}

/// A refusal becomes the redirect that states it; internal errors a 500 page.
fn answer(ctx: &Ctx<'_, '_>, result: Outcome) -> Response {
    let refused = match result {
        Ok(r) => return r,
        Err(TwoFactorError::InvalidCode | TwoFactorError::LoginCode) => "invalid-code",
        Err(TwoFactorError::WrongPassword) => "wrong-password",
        Err(TwoFactorError::AlreadyOn) => "already-on",
        Err(TwoFactorError::NotPending) => "not-pending",
        Err(TwoFactorError::NotOn) => "not-on",
        Err(TwoFactorError::Account(AccountError::TooManyAttempts { .. })) => "too-many",
        Err(TwoFactorError::NeedsSession) => {
            return super::error_page(
                403,
                "Forbidden",
                "Two-factor login can only be changed from a logged-in session.",
                &ctx.page_notice,
            )
        }
        Err(e) => {
            slog::error!(ctx.log, "page failed"; "error" => %e);
            return super::server_error(&ctx.page_notice);
        }
    };
    back(refused)
}

fn back(outcome: &str) -> Response {
    Response::new(303)
        .header("Location", format!("/settings?2fa={outcome}#two-factor"))
        .header("Cache-Control", "no-store")
}

fn field(ctx: &Ctx<'_, '_>, name: &str) -> String {
    input::is_form(ctx.req)
        .then(|| input::form_field(ctx.req.body, name))
        .flatten()
        .unwrap_or_default()
}
