//! The blocking part of the streams, on a few connect threads so the event
//! loop never waits: opening a socket (with Bybit's authentication and
//! subscription, or BingX's listen key), and BingX's listen-key upkeep. Each
//! result goes back to the loop through a channel, and wakes it.

use std::collections::HashMap;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use mio::Waker;
use serde::Deserialize;

use super::conn::{self, Socket};
use super::{bybit, listen_key};
use crate::exchange::bybit::types::ServerTime;
use crate::exchange::proxy::Proxy;
use crate::exchange::rest::{local_ms, wire, ApiKey, Http};

/// Where the streams are and how long one connect may take.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `BYBIT_WS_PRIVATE_URL`.
    pub bybit_ws: String,
    /// `BINGX_WS_USER_URL`.
    pub bingx_ws: String,
    /// Bybit's REST base, for its server time (the authentication's expiry is
    /// on Bybit's clock).
    pub bybit_rest: String,
    /// BingX's REST base, for the listen keys.
    pub bingx_rest: String,
    pub timeout: Duration,
}

/// What opens an account's stream: its key, and the egress proxy every
/// connection of the account goes through (docs/bots.md, Proxies).
#[derive(Debug, Clone)]
pub struct Access {
    pub key: ApiKey,
    pub proxy: Option<Proxy>,
}

/// Work for a connect thread; `id` names the loop's connection.
pub enum Job {
    Open {
        id: u64,
        exchange: &'static str,
        key: Access,
        listen_key: Option<String>,
    },
    Extend {
        id: u64,
        key: Access,
        listen_key: String,
    },
    Delete {
        key: Access,
        listen_key: String,
    },
}

/// An open, authenticated, subscribed socket, with the data frames that came
/// while the subscription was being confirmed.
pub struct Opened {
    pub socket: Socket,
    pub early: Vec<conn::Frame>,
    pub listen_key: Option<String>,
    /// The exchange's clock minus ours (ms).
    pub offset_ms: i64,
}

pub enum Done {
    Opened {
        id: u64,
        result: Result<Box<Opened>, String>,
    },
    /// A listen key's extension: `false` means it must be recreated.
    Extended { id: u64, ok: bool },
}

/// The connect threads.
pub struct Pool {
    jobs: Sender<Job>,
}

impl Pool {
    pub fn start(
        threads: usize,
        settings: Settings,
        done: Sender<Done>,
        waker: Arc<Waker>,
    ) -> std::io::Result<Pool> {
        let (jobs, rx) = channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for k in 0..threads {
            let (rx, done, waker, settings) =
                (rx.clone(), done.clone(), waker.clone(), settings.clone());
            std::thread::Builder::new()
                .name(format!("stream-connect-{k}"))
                .spawn(move || work(&rx, &done, &waker, &settings))?;
        }
        Ok(Pool { jobs })
    }

    pub fn submit(&self, job: Job) {
        let _ = self.jobs.send(job);
    }
}

fn work(rx: &Mutex<Receiver<Job>>, done: &Sender<Done>, waker: &Waker, settings: &Settings) {
    let timeout_ms = settings.timeout.as_millis() as u64;
    loop {
        let job = match rx.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        // Each job through its account's proxy (connects are rare: an agent
        // per job costs nothing that matters).
        let access = match &job {
            Job::Open { key, .. } | Job::Extend { key, .. } | Job::Delete { key, .. } => key,
        };
        let http = Http::with_proxy(timeout_ms, access.proxy.as_ref());
        let out = match job {
            Job::Open {
                id,
                exchange,
                key,
                listen_key,
            } => Done::Opened {
                id,
                result: open(&http, settings, exchange, &key, listen_key).map(Box::new),
            },
            Job::Extend {
                id,
                key,
                listen_key,
            } => Done::Extended {
                id,
                ok: listen_key::extend(&http, &settings.bingx_rest, &key.key, &listen_key).is_ok(),
            },
            Job::Delete { key, listen_key } => {
                let _ = listen_key::delete(&http, &settings.bingx_rest, &key.key, &listen_key);
                continue;
            }
        };
        if done.send(out).is_err() {
            return;
        }
        let _ = waker.wake();
    }
}

fn open(
    http: &Http,
    settings: &Settings,
    exchange: &'static str,
    access: &Access,
    listen_key: Option<String>,
) -> Result<Opened, String> {
    let (key, proxy) = (&access.key, access.proxy.as_ref());
    match exchange {
        "bybit" => open_bybit(http, settings, key, proxy),
        "bingx" => {
            let lk = match listen_key {
                Some(lk) => lk,
                None => listen_key::create(http, &settings.bingx_rest, key)
                    .map_err(|e| format!("listen key: {e}"))?,
            };
            let sep = if settings.bingx_ws.contains('?') {
                '&'
            } else {
                '?'
            };
            let url = format!("{}{sep}listenKey={lk}", settings.bingx_ws);
            let socket = Socket::connect(&url, settings.timeout, proxy)?;
            Ok(Opened {
                socket,
                early: Vec::new(),
                listen_key: Some(lk),
                offset_ms: clock_offset_ms(http, settings, "bingx")?,
            })
        }
        other => Err(format!("no private stream for {other}")),
    }
}

/// `GET /v5/market/time`'s answer (docs/v5/market/time).
#[derive(Deserialize)]
struct BybitTime {
    result: ServerTime,
}

/// `GET /openApi/swap/v2/server/time`'s answer.
#[derive(Deserialize)]
struct BingxTime {
    data: BingxServerTime,
}

#[derive(Deserialize)]
struct BingxServerTime {
    #[serde(rename = "serverTime", deserialize_with = "wire::int")]
    server_time: i64,
}

/// How long a measured clock offset serves every connect to that exchange.
/// These server-time reads are outside the request budget: one per connect
/// would make a reconnect storm (every account of the server after a network
/// blip or an exchange restart) hundreds of requests in seconds, on top of the
/// budget's, past Bybit's 600 per 5 s per IP. Clocks drift by milliseconds a
/// day; the authentication is valid for 10 s.
const OFFSET_FOR: Duration = Duration::from_secs(300);

/// The exchange's clock minus ours (ms), from its server time: Bybit refuses
/// an authentication whose expiry is in its past, and the fills' times are on
/// the exchange's clock. Measured once per `OFFSET_FOR` and process.
fn clock_offset_ms(http: &Http, settings: &Settings, exchange: &str) -> Result<i64, String> {
    static KNOWN: OnceLock<Mutex<HashMap<String, (Instant, i64)>>> = OnceLock::new();
    let known = KNOWN.get_or_init(|| Mutex::new(HashMap::new()));
    let base = match exchange {
        "bybit" => &settings.bybit_rest,
        _ => &settings.bingx_rest,
    };
    let key = format!("{exchange} {base}");
    let lock = || known.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((at, offset)) = lock().get(&key) {
        if at.elapsed() < OFFSET_FOR {
            return Ok(*offset);
        }
    }
    let offset = measure_offset_ms(http, settings, exchange)?;
    lock().insert(key, (Instant::now(), offset));
    Ok(offset)
}

fn measure_offset_ms(http: &Http, settings: &Settings, exchange: &str) -> Result<i64, String> {
    let sent = local_ms();
    let url = match exchange {
        "bybit" => format!("{}/v5/market/time", settings.bybit_rest),
        _ => format!(
            "{}/openApi/swap/v2/server/time?timestamp={sent}",
            settings.bingx_rest
        ),
    };
    let a = http
        .send("GET", &url, &[], None)
        .map_err(|e| format!("server time: {e}"))?;
    let bad = |e: crate::exchange::ExchangeError| e.to_string();
    let server = if exchange == "bybit" {
        let t: BybitTime = wire::parse("server time", &a.body).map_err(bad)?;
        match t.result.nanos.parse::<i128>() {
            Ok(n) if n > 0 => (n / 1_000_000) as i64,
            _ => t.result.seconds.saturating_mul(1000),
        }
    } else {
        let t: BingxTime = wire::parse("server time", &a.body).map_err(bad)?;
        t.data.server_time
    };
    if server <= 0 {
        return Err(format!("server time: {server} ms"));
    }
    // The answer was read halfway through the round trip.
    let now = local_ms();
    Ok(server - (sent + (now - sent) / 2))
}

/// Connects, authenticates and subscribes, all within the connect timeout.
fn open_bybit(
    http: &Http,
    settings: &Settings,
    key: &ApiKey,
    proxy: Option<&Proxy>,
) -> Result<Opened, String> {
    let deadline = Instant::now() + settings.timeout;
    let offset_ms = clock_offset_ms(http, settings, "bybit")?;
    let now = local_ms() + offset_ms;
    let mut socket = Socket::connect(&settings.bybit_ws, settings.timeout, proxy)?;
    let mut early = Vec::new();
    for (op, msg) in [
        ("auth", bybit::auth(key, now)),
        ("subscribe", bybit::subscribe()),
    ] {
        socket.send(msg)?;
        socket.flush()?;
        loop {
            if Instant::now() >= deadline {
                return Err(format!("no answer to {op}"));
            }
            let Some(frame) = socket.read()? else {
                continue;
            };
            let conn::Frame::Text(text) = &frame else {
                early.push(frame);
                continue;
            };
            match bybit::read(text) {
                Ok(bybit::Frame::Ack {
                    op: got,
                    success,
                    msg,
                }) if got == op => {
                    if !success {
                        return Err(format!("{op} refused: {msg}"));
                    }
                    break;
                }
                _ => early.push(frame),
            }
        }
    }
    Ok(Opened {
        socket,
        early,
        listen_key: None,
        offset_ms,
    })
}
