//! The pages behind the links in our mails: `/verify/<token>` and `/reset/<token>`.

use blitz_worker::Response;

use super::html::{escape, page};
use crate::auth::{accounts, AccountError};
use crate::http::ctx::Ctx;
use crate::http::input;

pub fn verify(ctx: &mut Ctx<'_, '_>) -> Response {
    let token = ctx.params.get("token").unwrap_or("");
    let result = ctx
        .db
        .conn()
        .map_err(AccountError::from)
        .and_then(|c| accounts::verify(&c, token));
    match result {
        Ok(()) => page(
            200,
            "E-mail verified",
            "<h1>E-mail verified</h1><p>Your account is active. \
             <a href=\"/login\">Log in</a> to start your bot.</p>",
            &ctx.page_notice,
        ),
        Err(AccountError::InvalidToken) => super::error_page(
            400,
            "Link invalid or expired",
            "This verification link is invalid, was already used, or has expired.",
            &ctx.page_notice,
        ),
        Err(e) => failure(ctx, e),
    }
}

fn failure(ctx: &Ctx<'_, '_>, e: AccountError) -> Response {
    slog::error!(ctx.log, "page failed"; "error" => %e);
    super::error_page(
        500,
        "Something went wrong",
        "Please try again in a moment.",
        &ctx.page_notice,
    )
}

fn reset_form(token: &str, problem: Option<&str>) -> String {
    let problem = problem.map_or_else(String::new, |p| {
        format!("<p role=\"alert\">{}</p>", escape(p))
    });
    format!(
        "<h1>Choose a new password</h1>{problem}\
         <form method=\"post\" action=\"/reset/{}\">\
         <label for=\"new_password\">New password (at least 8 characters)</label>\
         <input id=\"new_password\" name=\"new_password\" type=\"password\" \
         autocomplete=\"new-password\" minlength=\"8\" required>\
         <button type=\"submit\">Set password</button></form>",
        escape(token)
    )
}

const EXPIRED: &str = "This reset link is invalid, was already used, or has expired.";

pub fn reset_page(ctx: &mut Ctx<'_, '_>) -> Response {
    let token = ctx.params.get("token").unwrap_or("");
    let valid = ctx
        .db
        .conn()
        .map_err(AccountError::from)
        .and_then(|c| accounts::reset_link_valid(&c, token));
    match valid {
        Ok(true) => page(
            200,
            "Reset password",
            &reset_form(token, None),
            &ctx.page_notice,
        ),
        Ok(false) => super::error_page(400, "Link invalid or expired", EXPIRED, &ctx.page_notice),
        Err(e) => failure(ctx, e),
    }
}

/// The form's POST: same rules as `POST /api/auth/reset`.
pub fn reset_submit(ctx: &mut Ctx<'_, '_>) -> Response {
    let token = ctx.params.get("token").unwrap_or("");
    let new = input::is_form(ctx.req)
        .then(|| input::form_field(ctx.req.body, "new_password"))
        .flatten()
        .unwrap_or_default();
    let result = ctx
        .db
        .conn()
        .map_err(AccountError::from)
        .and_then(|mut c| accounts::reset(&mut c, token, &new));
    match result {
        Ok(()) => page(
            200,
            "Password changed",
            "<h1>Password changed</h1><p>You can now <a href=\"/login\">log in</a> \
             with your new password.</p>",
            &ctx.page_notice,
        ),
        Err(AccountError::Invalid(fields)) => {
            let msg = fields.values().next().map_or("is invalid", |m| m.as_str());
            page(
                400,
                "Reset password",
                &reset_form(token, Some(&format!("The password {msg}."))),
                &ctx.page_notice,
            )
        }
        Err(AccountError::InvalidToken) => {
            super::error_page(400, "Link invalid or expired", EXPIRED, &ctx.page_notice)
        }
        Err(e) => failure(ctx, e),
    }
}
