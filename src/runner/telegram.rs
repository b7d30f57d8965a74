//! Telegram notifications through the Bot API, off the strategy's path: the
//! engine only queues a message; one sender thread delivers with a short timeout.
//! A full queue or a failed delivery is logged and dropped — it never blocks a bot.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::time::Duration;

use slog::{warn, Logger};

/// Messages waiting beyond this are dropped (Telegram is down or slow).
const QUEUE: usize = 1024;
const TIMEOUT: Duration = Duration::from_secs(5);

/// Where one user's notifications go.
#[derive(Clone)]
pub struct Target {
    pub token: String,
    pub chat_id: String,
}

impl std::fmt::Debug for Target {
    /// The bot token is a credential: never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Target {{ chat_id: {:?}, token: *** }}", self.chat_id)
    }
}

struct Message {
    target: Target,
    text: String,
}

#[derive(Clone)]
pub struct Notifier {
    tx: SyncSender<Message>,
    log: Logger,
}

impl Notifier {
    /// Starts the sender thread. `base_url` is the Bot API's (`TELEGRAM_API_URL`).
    pub fn start(base_url: String, log: Logger) -> std::io::Result<Notifier> {
        let (tx, rx) = sync_channel(QUEUE);
        let thread_log = log.clone();
        std::thread::Builder::new()
            .name("telegram".into())
            .spawn(move || deliver_all(&base_url, &rx, &thread_log))?;
        Ok(Notifier { tx, log })
    }

    pub fn send(&self, target: &Target, text: &str) {
        let msg = Message {
            target: target.clone(),
            text: text.to_string(),
        };
        if let Err(TrySendError::Full(_)) = self.tx.try_send(msg) {
            warn!(self.log, "telegram queue full; notification dropped"; "chat_id" => &target.chat_id);
        }
    }
}

fn deliver_all(base_url: &str, rx: &Receiver<Message>, log: &Logger) {
    let agent = ureq::AgentBuilder::new().timeout(TIMEOUT).build();
    for msg in rx {
        let url = format!(
            "{}/bot{}/sendMessage",
            base_url.trim_end_matches('/'),
            msg.target.token
        );
        let result = agent
            .post(&url)
            .send_json(serde_json::json!({"chat_id": msg.target.chat_id, "text": msg.text}));
        if let Err(e) = result {
            // The URL holds the token: log the kind of failure only.
            let what = match e {
                ureq::Error::Status(code, _) => format!("HTTP {code}"),
                ureq::Error::Transport(t) => t.kind().to_string(),
            };
            warn!(log, "telegram delivery failed"; "chat_id" => &msg.target.chat_id, "error" => what);
        }
    }
}
