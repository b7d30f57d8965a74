//! Every change of an account's book, recorded as an event (the outbox) for the
//! fakes' private streams: an order placed, triggered, (partially) filled or
//! cancelled, each fill, a position change and a wallet change. The book keeps
//! the whole list (a test reads it) and hands each new event at once to every
//! stream connection listening on the account, so a connection blocks on its
//! channel instead of polling the book: O(1) per event, whatever the number of
//! accounts.

use std::sync::mpsc::Sender;

use rust_decimal::Decimal;
use tungstenite::Message;

use super::fake_book::{Dir, FakeOrder, Fill, Pos};
use super::fake_http::now_ms;

/// What changed.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// The order as it is after the change.
    Order(FakeOrder),
    /// One fill and its order after it.
    Execution { fill: Fill, order: FakeOrder },
    /// A side's position after a fill, with the mark and its leverage.
    Position {
        dir: Dir,
        pos: Pos,
        mark: Decimal,
        leverage: u32,
        /// Profit realised by the fill that moved it.
        realized: Decimal,
    },
    /// The wallet balance after the change, and by how much it moved.
    Wallet { balance: Decimal, delta: Decimal },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// Per account, from 1.
    pub seq: u64,
    /// The fake's wall-clock time (ms) when the book recorded it.
    pub at_ms: i64,
    pub change: Change,
}

/// What a stream connection's writer receives on its channel.
#[derive(Debug)]
pub enum Input {
    /// A frame the client sent.
    Client(Message),
    /// An event of the account it listens to (boxed: events are large).
    Event(Box<Event>),
    /// A frame a test injects, sent as it is.
    Raw(Message),
    /// BingX: the listen key was expired by the test.
    Expire,
    /// The reader saw the connection end.
    Gone,
}

#[derive(Debug, Default)]
pub struct Outbox {
    pub events: Vec<Event>,
    listeners: Vec<Sender<Input>>,
    next_seq: u64,
}

impl Outbox {
    /// Records an event and hands it to every live listener (a listener whose
    /// connection has ended is forgotten).
    pub fn push(&mut self, change: Change) {
        self.next_seq += 1;
        let e = Event {
            seq: self.next_seq,
            at_ms: now_ms(),
            change,
        };
        self.listeners
            .retain(|l| l.send(Input::Event(Box::new(e.clone()))).is_ok());
        self.events.push(e);
    }

    /// A stream connection starts receiving this account's new events.
    pub fn listen(&mut self, to: Sender<Input>) {
        self.listeners.push(to);
    }

    pub fn listeners(&self) -> usize {
        self.listeners.len()
    }
}
