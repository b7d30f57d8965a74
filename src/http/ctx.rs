//! What a handler gets besides the request: configuration, the database, the log,
//! the caller's identity and address.

use blitz_worker::Request;
use slog::Logger;

use super::router::Params;
use crate::auth::Identity;
use crate::config::Config;
use crate::secrets::{SecretError, SecretKey};
use crate::store::settings::Notice;
use crate::store::Db;

pub struct Ctx<'a, 'r> {
    pub config: &'a Config,
    pub db: &'a mut Db,
    pub log: &'a Logger,
    pub notice: &'a mut super::notice::NoticeCache,
    pub coord: &'a crate::coord::Coordinator,
    /// The instance's price board (`market::board`), filled by the market-data
    /// process: live quotes without a database read.
    pub prices: &'a crate::market::Board,
    pub identity: Identity,
    pub client_ip: &'a str,
    pub req: &'a Request<'r>,
    pub params: Params<'r>,
    /// The maintenance notice and banner as pages show them (read only for page
    /// routes; the default for the API).
    pub page_notice: Notice,
}

impl Ctx<'_, '_> {
    /// The instance key that seals secrets at rest (`crate::secrets`).
    pub fn secret_key(&self) -> Result<SecretKey, SecretError> {
        SecretKey::resolve(
            self.config.secret_key.as_deref(),
            self.config.instance_dir(),
        )
    }
}
