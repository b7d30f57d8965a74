//! Outgoing mail: messages are composed by the account code, queued in the database
//! with the change that caused them, and delivered by the mailer process.

pub mod compose;
mod deliver;
mod mailer;
pub mod sealing;

pub use deliver::{DeliverError, Delivery};
pub use mailer::run;
