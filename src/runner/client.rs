//! How an HTTP worker asks the bot runner to do something and waits for the answer
//! (at most 10 s). The runner's listening socket belongs to the master, so a
//! request made while the runner restarts waits in the socket's queue and is
//! answered by the new runner instead of failing.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::protocol::{OpResult, Request};

/// How long a worker waits for the runner's answer.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    #[error("the bot runner is not reachable: {0}")]
    Unavailable(std::io::Error),
    #[error("the bot runner did not answer in time")]
    Timeout,
    #[error("the bot runner's answer is not understood: {0}")]
    Protocol(String),
}

pub fn call(socket: &Path, req: &Request, timeout: Duration) -> Result<OpResult, RpcError> {
    call_as(socket, req, timeout)
}

/// `call` for any request line and reply type (the paper-account commands).
pub fn call_as<Q: Serialize, A: DeserializeOwned>(
    socket: &Path,
    req: &Q,
    timeout: Duration,
) -> Result<A, RpcError> {
    let deadline = Instant::now() + timeout;
    let mut stream = UnixStream::connect(socket).map_err(RpcError::Unavailable)?;
    let mut line = serde_json::to_vec(req).map_err(|e| RpcError::Protocol(e.to_string()))?;
    line.push(b'\n');
    stream
        .set_write_timeout(Some(timeout))
        .map_err(RpcError::Unavailable)?;
    stream
        .write_all(&line)
        .map_err(|e| timeout_or(e, RpcError::Unavailable))?;
    let mut reader = BufReader::new(stream);
    let mut answer = String::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(RpcError::Timeout);
        }
        reader
            .get_ref()
            .set_read_timeout(Some(left))
            .map_err(RpcError::Unavailable)?;
        match reader.read_line(&mut answer) {
            Ok(0) => {
                return Err(RpcError::Protocol(
                    "connection closed without an answer".into(),
                ))
            }
            Ok(_) if answer.ends_with('\n') => break,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(timeout_or(e, RpcError::Unavailable)),
        }
    }
    serde_json::from_str(&answer).map_err(|e| RpcError::Protocol(e.to_string()))
}

fn timeout_or(e: std::io::Error, other: fn(std::io::Error) -> RpcError) -> RpcError {
    match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => RpcError::Timeout,
        _ => other(e),
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Write};
    use std::os::unix::net::UnixListener;

    use super::*;
    use crate::runner::protocol::{Actor, Op, Outcome};

    fn request() -> Request {
        Request {
            op: Op::Start,
            user_id: 7,
            bot_id: 0,
            mode: None,
            actor: Actor::User,
        }
    }

    #[test]
    fn answers_are_read_and_silence_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let server = std::thread::spawn(move || {
            // First connection: answer. Second: read, never answer.
            let (s, _) = listener.accept().unwrap();
            let mut line = String::new();
            BufReader::new(&s).read_line(&mut line).unwrap();
            let got: Request = serde_json::from_str(&line).unwrap();
            let mut reply = serde_json::to_vec(&OpResult::new(Outcome::Started, "ok")).unwrap();
            reply.push(b'\n');
            (&s).write_all(&reply).unwrap();
            let (silent, _) = listener.accept().unwrap();
            (got, silent)
        });
        let r = call(&path, &request(), Duration::from_secs(5)).unwrap();
        assert_eq!(r.outcome, Outcome::Started);
        let started = Instant::now();
        let e = call(&path, &request(), Duration::from_millis(200)).unwrap_err();
        assert!(matches!(e, RpcError::Timeout), "{e:?}");
        assert!(started.elapsed() < Duration::from_secs(2));
        let (got, _silent) = server.join().unwrap();
        assert_eq!(got, request());
        drop(dir);
        let gone = call(&path, &request(), Duration::from_millis(200)).unwrap_err();
        assert!(matches!(gone, RpcError::Unavailable(_)), "{gone:?}");
    }
}
