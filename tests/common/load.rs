//! A small load generator for the fault scenarios: client threads issuing requests
//! until told to stop, counting every failure (connect error, reset, bad status).
//!
//! A scenario's record is one `FAULT` line on stderr (requests, failures, p99 and
//! max latency). Failures are asserted by the tests; latency is only reported: on a
//! shared machine it measures the machine as much as the server.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::client::Conn;

#[derive(Default)]
pub struct Tally {
    pub ok: AtomicU64,
    pub failed: AtomicU64,
    pub errors: Mutex<Vec<String>>,
    pub pids: Mutex<std::collections::BTreeSet<String>>,
    /// Latency of every successful request, in microseconds.
    pub latency_us: Mutex<Vec<u32>>,
}

pub struct Load {
    stop: Arc<AtomicBool>,
    pub tally: Arc<Tally>,
    threads: Vec<JoinHandle<()>>,
}

/// How each client uses connections.
#[derive(Clone, Copy)]
pub enum Mode {
    /// A new connection per request (`Connection: close`).
    Close,
    /// Keep-alive; reconnect only when the server said `Connection: close`.
    KeepAlive,
}

impl Load {
    pub fn start(port: u16, clients: usize, mode: Mode, path: &'static str) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let tally = Arc::new(Tally::default());
        let threads = (0..clients)
            .map(|_| {
                let (stop, tally) = (stop.clone(), tally.clone());
                std::thread::spawn(move || client_loop(port, mode, path, &stop, &tally))
            })
            .collect();
        Load {
            stop,
            tally,
            threads,
        }
    }

    pub fn ok(&self) -> u64 {
        self.tally.ok.load(Ordering::Relaxed)
    }

    /// Waits until at least `n` more requests succeeded (load is really flowing).
    pub fn wait_progress(&self, n: u64) {
        let start = self.ok();
        super::wait_for(Duration::from_secs(20), "load progress", || {
            self.ok() >= start + n
        });
    }

    /// The `p`-th percentile latency so far, in milliseconds.
    pub fn percentile_ms(&self, p: f64) -> f64 {
        let mut all = self.tally.latency_us.lock().unwrap().clone();
        if all.is_empty() {
            return 0.0;
        }
        all.sort_unstable();
        let i = ((all.len() - 1) as f64 * p / 100.0).round() as usize;
        f64::from(all[i]) / 1000.0
    }

    /// Forgets the latencies recorded so far (to measure one phase).
    pub fn reset_latency(&self) {
        self.tally.latency_us.lock().unwrap().clear();
    }

    /// Stops the clients and prints the scenario's `FAULT` record; returns
    /// (succeeded, failed, first errors).
    pub fn report(self, scenario: &str) -> (u64, u64, Vec<String>) {
        let (p99, max) = (self.percentile_ms(99.0), self.percentile_ms(100.0));
        let (ok, failed, errors) = self.finish();
        eprintln!(
            "FAULT scenario=\"{scenario}\" requests={} failed={failed} p99_ms={p99:.1} max_ms={max:.1}",
            ok + failed
        );
        (ok, failed, errors)
    }

    /// `report`, asserting that not one request failed and some succeeded; returns
    /// how many succeeded.
    pub fn assert_no_failures(self, scenario: &str) -> u64 {
        let (ok, failed, errors) = self.report(scenario);
        assert_eq!(
            failed,
            0,
            "{scenario}: {failed} of {} requests failed: {errors:?}",
            ok + failed
        );
        assert!(ok > 0, "{scenario}: no request succeeded");
        ok
    }

    /// Stops the clients; returns (succeeded, failed, first errors).
    pub fn finish(self) -> (u64, u64, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().unwrap();
        }
        let errors = self.tally.errors.lock().unwrap().clone();
        (
            self.tally.ok.load(Ordering::Relaxed),
            self.tally.failed.load(Ordering::Relaxed),
            errors,
        )
    }
}

fn client_loop(port: u16, mode: Mode, path: &str, stop: &AtomicBool, tally: &Tally) {
    let mut conn: Option<Conn> = None;
    while !stop.load(Ordering::Relaxed) {
        if conn.is_none() {
            match Conn::open(port) {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    tally.failed.fetch_add(1, Ordering::Relaxed);
                    record(tally, format!("connect: {e}"));
                    continue;
                }
            }
        }
        let result = (|| -> std::io::Result<(u16, bool)> {
            let Some(c) = conn.as_mut() else {
                return Err(std::io::ErrorKind::NotConnected.into());
            };
            let close = matches!(mode, Mode::Close);
            let req = if close {
                format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            } else {
                format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n")
            };
            let started = std::time::Instant::now();
            c.send(req.as_bytes())?;
            let r = c.read_response(false)?;
            let us = u32::try_from(started.elapsed().as_micros()).unwrap_or(u32::MAX);
            tally.latency_us.lock().unwrap().push(us);
            Ok((r.status, close || r.header("Connection") == Some("close")))
        })();
        match result {
            Ok((200, reconnect)) => {
                tally.ok.fetch_add(1, Ordering::Relaxed);
                if reconnect {
                    conn = None;
                }
            }
            Ok((status, _)) => {
                tally.failed.fetch_add(1, Ordering::Relaxed);
                record(tally, format!("status {status}"));
                conn = None;
            }
            Err(e) => {
                // The connection was established: this request was lost.
                tally.failed.fetch_add(1, Ordering::Relaxed);
                record(tally, format!("request: {e}"));
                conn = None;
            }
        }
    }
}

fn record(tally: &Tally, e: String) {
    let mut errs = tally.errors.lock().unwrap();
    if errs.len() < 10 || (e.starts_with("request:") && errs.len() < 20) {
        errs.push(e);
    }
}
