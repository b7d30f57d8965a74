//! `blitz-master`: a generic pre-fork supervisor in the spirit of gunicorn's arbiter
//! and nginx's master process.
//!
//! It binds listeners (or adopts systemd's), allocates one shared-memory scoreboard,
//! forks children into slots, and then only supervises: signals, heartbeats, respawn,
//! rolling replacement, back-off, pidfile and sd_notify. It knows nothing of HTTP,
//! users or bots; the application plugs in through the [`App`] trait.

mod arbiter;
mod backoff;
mod child;
pub mod clock;
mod listener;
mod listener_set;
mod memory;
pub mod notify;
mod pidfile;
mod policy;
pub mod proctitle;
mod scoreboard;
mod signals;
mod upgrade;

pub use arbiter::{run, App, ChildCtx, Event, ExitReason, Link, Role, Settings};
pub use listener::{Address, Listener, ListenerKind};
pub use listener_set::ListenerSet;
pub use scoreboard::{
    Scoreboard, SlotHandle, SlotState, SLOT_REQ_BYTES, TOTAL_SLOTS, WORKER_SLOTS,
};
pub use signals::shield as shield_signals;
