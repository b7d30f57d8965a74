//! The plumbing both fakes' private streams share: one writer thread per
//! connection blocking on its channel (client frames, the account's events,
//! injected frames), a reader thread feeding that channel, the registry of live
//! connections (to drop them all or inject a frame), the faults a test switches
//! on, and the log of when each execution was pushed (for the benchmark's
//! latency). What a venue says lives in a `Protocol` (fake_bybit_ws.rs,
//! fake_bingx_ws.rs).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tungstenite::protocol::Role;
use tungstenite::{Message, WebSocket};

use super::fake_http::now_ms;
use super::fake_outbox::{Event, Input};

/// One execution pushed to a client: which account, its exec id (Bybit
/// `execId`, BingX trade id), its order's client id, and the fake's wall-clock
/// time (ms) when the frame was written to the socket.
#[derive(Clone, Debug, PartialEq)]
pub struct Emitted {
    pub account: usize,
    pub exec_id: String,
    pub client_id: String,
    pub emitted_ms: i64,
}

/// What a protocol step sends, and whether the connection ends after it.
#[derive(Default)]
pub struct Step {
    pub out: Vec<Message>,
    /// Executions in `out`: (account, exec id, client id).
    pub execs: Vec<(usize, String, String)>,
    pub close: bool,
}

impl Step {
    pub fn send(m: Message) -> Step {
        Step {
            out: vec![m],
            ..Step::default()
        }
    }
}

/// A venue's side of one connection.
pub trait Protocol: Send {
    /// A text frame from the client.
    fn on_text(&mut self, text: &str, tx: &Sender<Input>, streams: &Streams) -> Step;
    /// A new event of the account the connection listens to.
    fn on_event(&mut self, e: &Event) -> Step;
    /// How long the writer may wait before `on_tick` (heartbeats, expiry).
    fn wait(&self) -> Duration {
        Duration::from_secs(3600)
    }
    fn on_tick(&mut self) -> Step {
        Step::default()
    }
    /// The test expired the connection's credentials (BingX listen key).
    fn on_expire(&mut self) -> Step {
        Step::default()
    }
}

struct Live {
    stream: TcpStream,
    tx: Sender<Input>,
}

/// The private streams of one fake.
#[derive(Default)]
pub struct Streams {
    live: Mutex<HashMap<u64, Live>>,
    next: AtomicU64,
    pub connections_total: AtomicU64,
    refuse_auths: AtomicUsize,
    deaf: AtomicBool,
    silent: AtomicBool,
    emitted: Mutex<Vec<Emitted>>,
    pings: AtomicU64,
    pongs: AtomicU64,
}

impl Streams {
    /// Closes every private socket now (TCP shutdown, no close frame).
    pub fn drop_all(&self) {
        for l in self.live.lock().unwrap().values() {
            let _ = l.stream.shutdown(Shutdown::Both);
        }
    }

    /// Sends `m` as it is on every live connection.
    pub fn send_raw(&self, m: Message) {
        for l in self.live.lock().unwrap().values() {
            let _ = l.tx.send(Input::Raw(m.clone()));
        }
    }

    pub fn expire_all(&self) {
        for l in self.live.lock().unwrap().values() {
            let _ = l.tx.send(Input::Expire);
        }
    }

    /// The next `n` authentications are refused.
    pub fn refuse_auths(&self, n: usize) {
        self.refuse_auths.store(n, Ordering::SeqCst);
    }

    /// Takes one refusal, if any are left.
    pub fn take_refusal(&self) -> bool {
        self.refuse_auths
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }

    /// While on, pings (JSON, text or WebSocket control) go unanswered.
    pub fn set_deaf(&self, on: bool) {
        self.deaf.store(on, Ordering::SeqCst);
    }

    pub fn deaf(&self) -> bool {
        self.deaf.load(Ordering::SeqCst)
    }

    /// While on, the book's events are not pushed (they are lost, as a stream
    /// that silently stalls loses them); heartbeats still work.
    pub fn set_silent(&self, on: bool) {
        self.silent.store(on, Ordering::SeqCst);
    }

    pub fn live(&self) -> usize {
        self.live.lock().unwrap().len()
    }

    pub fn emitted(&self) -> Vec<Emitted> {
        self.emitted.lock().unwrap().clone()
    }

    /// When the execution with this id was first pushed (wall-clock ms).
    pub fn emitted_at(&self, exec_id: &str) -> Option<i64> {
        let log = self.emitted.lock().unwrap();
        log.iter()
            .find(|e| e.exec_id == exec_id)
            .map(|e| e.emitted_ms)
    }

    /// Pings the clients sent that were answered.
    pub fn pings_answered(&self) -> u64 {
        self.pings.load(Ordering::SeqCst)
    }

    pub fn count_ping(&self) {
        self.pings.fetch_add(1, Ordering::SeqCst);
    }

    /// Pongs the clients sent (BingX answers the server's `Ping`).
    pub fn pongs(&self) -> u64 {
        self.pongs.load(Ordering::SeqCst)
    }

    pub fn count_pong(&self) {
        self.pongs.fetch_add(1, Ordering::SeqCst);
    }

    fn register(&self, stream: TcpStream, tx: Sender<Input>) -> u64 {
        let id = self.next.fetch_add(1, Ordering::SeqCst);
        self.connections_total.fetch_add(1, Ordering::SeqCst);
        self.live.lock().unwrap().insert(id, Live { stream, tx });
        id
    }
}

/// The reader's side of the socket: reads go through, writes are dropped, so
/// tungstenite's automatic answers (pong, close) never interleave with the
/// writer's frames; the writer answers control pings itself.
struct ReadOnly(TcpStream);

impl Read for ReadOnly {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
}

impl Write for ReadOnly {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn read_loop(stream: TcpStream, tx: Sender<Input>) {
    let mut ws = WebSocket::from_raw_socket(ReadOnly(stream), Role::Server, None);
    loop {
        match ws.read() {
            Ok(m) => {
                let close = matches!(m, Message::Close(_));
                if tx.send(Input::Client(m)).is_err() || close {
                    return;
                }
            }
            Err(_) => {
                let _ = tx.send(Input::Gone);
                return;
            }
        }
    }
}

/// Runs one accepted connection (`stream` right after the HTTP head was
/// peeked) until either side ends it. `refuse` (an HTTP status line and body)
/// answers the upgrade with an error instead.
pub fn serve(
    streams: Arc<Streams>,
    mut stream: TcpStream,
    refuse: Option<(&str, &str)>,
    mut proto: impl Protocol,
    tx_hook: impl FnOnce(&Sender<Input>),
) {
    if let Some((status, body)) = refuse {
        let mut head = [0u8; 8192];
        let _ = stream.read(&mut head);
        let _ = stream.write_all(
            format!(
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        );
        return;
    }
    let (Ok(raw), Ok(reader)) = (stream.try_clone(), stream.try_clone()) else {
        return;
    };
    let Ok(mut ws) = tungstenite::accept(stream) else {
        return;
    };
    let (tx, rx) = channel();
    let id = streams.register(raw, tx.clone());
    let reader_tx = tx.clone();
    std::thread::spawn(move || read_loop(reader, reader_tx));
    tx_hook(&tx);
    loop {
        let step = match rx.recv_timeout(proto.wait()) {
            Err(RecvTimeoutError::Timeout) => proto.on_tick(),
            Err(RecvTimeoutError::Disconnected) => break,
            Ok(input) => match input {
                Input::Client(Message::Text(t)) => proto.on_text(t.as_str(), &tx, &streams),
                Input::Client(Message::Ping(d)) if !streams.deaf() => {
                    streams.count_ping();
                    Step::send(Message::Pong(d))
                }
                Input::Client(Message::Close(_)) | Input::Gone => break,
                Input::Client(_) => Step::default(),
                Input::Event(_) if streams.silent.load(Ordering::SeqCst) => Step::default(),
                Input::Event(e) => proto.on_event(&e),
                Input::Raw(m) => Step::send(m),
                Input::Expire => proto.on_expire(),
            },
        };
        if write(&mut ws, &streams, &step).is_err() || step.close {
            let _ = ws.close(None);
            let _ = ws.flush();
            break;
        }
    }
    if let Some(l) = streams.live.lock().unwrap().remove(&id) {
        let _ = l.stream.shutdown(Shutdown::Both);
    }
}

fn write(ws: &mut WebSocket<TcpStream>, streams: &Streams, step: &Step) -> tungstenite::Result<()> {
    for m in &step.out {
        ws.send(m.clone())?;
    }
    if !step.execs.is_empty() {
        let now = now_ms();
        let mut log = streams.emitted.lock().unwrap();
        for (account, exec_id, client_id) in &step.execs {
            log.push(Emitted {
                account: *account,
                exec_id: exec_id.clone(),
                client_id: client_id.clone(),
                emitted_ms: now,
            });
        }
    }
    Ok(())
}
