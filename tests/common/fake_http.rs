//! A tiny HTTP/1.1 server for the fake exchanges: one thread per connection, one
//! request per connection (`Connection: close`), a handler that sees the method,
//! path, decoded query, headers and body. `down` makes it drop connections
//! unanswered, which the client sees as a network failure. A WebSocket upgrade
//! (on the same port, as the private streams need) goes to a second handler with
//! the connection itself.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct Request {
    pub method: String,
    pub path: String,
    /// The query string exactly as received (what Bybit signs for a GET).
    pub raw_query: String,
    /// Decoded `(key, value)` pairs in order.
    pub query: Vec<(String, String)>,
    /// Lower-case names.
    pub headers: HashMap<String, String>,
    pub body: String,
}

impl Request {
    pub fn param(&self, k: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    }

    pub fn header(&self, k: &str) -> Option<&str> {
        self.headers
            .get(&k.to_ascii_lowercase())
            .map(|s| s.as_str())
    }
}

pub struct Response {
    /// 0: close the connection without answering.
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn json(body: serde_json::Value) -> Response {
        Response {
            status: 200,
            headers: Vec::new(),
            body: body.to_string(),
        }
    }
}

pub type Handler = Arc<dyn Fn(&Request) -> Response + Send + Sync>;

/// Takes over a connection whose request is a WebSocket upgrade; the request
/// target (`/path?query`) is passed along, the head is still unread.
pub type WsHandler = Arc<dyn Fn(TcpStream, &str) + Send + Sync>;

pub struct FakeHttp {
    pub port: u16,
    down: Arc<AtomicBool>,
}

impl FakeHttp {
    pub fn start(handler: Handler) -> FakeHttp {
        FakeHttp::start_with_ws(handler, None)
    }

    pub fn start_with_ws(handler: Handler, ws: Option<WsHandler>) -> FakeHttp {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let down = Arc::new(AtomicBool::new(false));
        let is_down = down.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                if is_down.load(Ordering::SeqCst) {
                    drop(stream);
                    continue;
                }
                let h = handler.clone();
                let ws = ws.clone();
                std::thread::spawn(move || match ws {
                    Some(ws) => route(stream, &h, &ws),
                    None => serve(stream, &h),
                });
            }
        });
        FakeHttp { port, down }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// While down, connections are closed without an answer.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }
}

/// A WebSocket upgrade to `ws`, anything else to `handler`.
fn route(stream: TcpStream, handler: &Handler, ws: &WsHandler) {
    let Some(head) = peek_head(&stream) else {
        return;
    };
    if head.to_ascii_lowercase().contains("upgrade: websocket") {
        let target = head.split_whitespace().nth(1).unwrap_or("/").to_string();
        ws(stream, &target);
    } else {
        serve(stream, handler);
    }
}

/// The request head, peeked (not consumed) so that it can be read again.
fn peek_head(stream: &TcpStream) -> Option<String> {
    let mut buf = [0u8; 8192];
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let n = stream.peek(&mut buf).ok()?;
        let text = String::from_utf8_lossy(&buf[..n]).to_string();
        if text.contains("\r\n\r\n") {
            return Some(text);
        }
        if n == 0 || n == buf.len() || Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn serve(stream: TcpStream, handler: &Handler) {
    let mut reader = BufReader::new(stream);
    let Some(req) = read_request(&mut reader) else {
        return;
    };
    let resp = handler(&req);
    if resp.status == 0 {
        // The request was processed but its answer is lost on the way back.
        return;
    }
    let mut out = format!(
        "HTTP/1.1 {} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        resp.status,
        resp.body.len()
    );
    for (k, v) in &resp.headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(&resp.body);
    let _ = reader.get_mut().write_all(out.as_bytes());
}

fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).ok()? == 0 || h == "\r\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let length: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    let (path, raw_query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (target, String::new()),
    };
    let query = form_urlencoded::parse(raw_query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    Some(Request {
        method,
        path,
        raw_query,
        query,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// Lower-case hex HMAC-SHA256, computed independently of the server's code.
pub fn hmac_hex(secret: &str, message: &str) -> String {
    use hmac::{Hmac, KeyInit, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(message.as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}
