//! What every page's frame shows: title, assets, the CSRF token for forms and
//! `fetch` calls, and the navigation of the logged-in user.

use crate::auth::{csrf, Identity, Via};
use crate::store::settings::Notice;

use super::assets;

pub struct NavUser {
    pub email: String,
    pub is_admin: bool,
}

pub struct Frame {
    pub title: String,
    pub css: String,
    pub scripts: Vec<String>,
    pub icon: String,
    /// A freshly masked CSRF token of the session (empty without one): forms carry
    /// it as `csrf_token`, scripts send it as `X-CSRF-Token`.
    pub csrf: String,
    pub user: Option<NavUser>,
    /// Which navigation entry is the current page.
    pub active: &'static str,
    /// The maintenance notice and banner: every page shows them.
    pub notice: Notice,
}

impl Frame {
    /// The frame of a page for anyone (login, errors, mail links).
    pub fn anonymous(title: &str, notice: &Notice) -> Frame {
        Frame {
            title: title.to_string(),
            css: assets::url("app.css"),
            scripts: assets::SCRIPTS.iter().map(|s| assets::url(s)).collect(),
            icon: assets::url("favicon.svg"),
            csrf: String::new(),
            user: None,
            active: "",
            notice: notice.clone(),
        }
    }

    /// Adds the price chart's library, before the page scripts that draw with it
    /// (they run in order, `defer`).
    pub fn with_chart(mut self) -> Frame {
        self.scripts.insert(0, assets::url(assets::CHART_LIB));
        self
    }

    /// The banner, escaped as every text the server writes into its own markup.
    pub fn banner_html(&self) -> String {
        super::html::escape(&self.notice.banner)
    }

    /// The frame of a logged-in page.
    pub fn for_user(
        identity: &Identity,
        title: &str,
        active: &'static str,
        notice: &Notice,
    ) -> Frame {
        let mut frame = Frame::anonymous(title, notice);
        frame.active = active;
        if let Some(p) = identity.principal() {
            if let Via::Session { csrf_secret, .. } = &p.via {
                frame.csrf = csrf::masked(csrf_secret);
            }
            frame.user = Some(NavUser {
                email: p.user.email.clone(),
                is_admin: p.user.is_admin,
            });
        }
        frame
    }
}
