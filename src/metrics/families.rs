//! The application's metric families and the `blitz_*` supervisor families: names,
//! help, labels, and where each keeps its values.

/// Families in the per-process ("hot") registry.
pub const HTTP_REQUESTS: u16 = 0;
pub const ERRORS: u16 = 1;
/// Families in the histogram registry.
pub const HTTP_DURATION: u16 = 0;
/// Families in the user registry (one shared cell per series).
pub const BOT_STARTS: u16 = 0;
pub const BOT_STOPS: u16 = 1;
pub const BOT_RECOVERS: u16 = 2;

/// `http_request_duration_seconds` bucket bounds (the client libraries' defaults);
/// `+Inf` is the 12th bucket.
pub const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Fixed cells per process (`segment::STATIC_CAP`).
pub mod stat {
    /// Gauge set by the bot runner; not folded when a process ends.
    pub const ACTIVE_BOTS: usize = 0;
    pub const LOCK_CONFLICTS: usize = 1;
    pub const REDIS_FALLBACKS: usize = 2;
    /// Set by a worker that retires after `--max-requests`; read by the master
    /// when it reaps the worker, not rendered.
    pub const RETIRING: usize = 3;
    /// Failed refreshes of the market catalogue or candles (`market::refresh`).
    pub const MARKET_REFRESH_FAILURES: usize = 6;
    pub const RATE_LIMITED: usize = 8;
    pub const TABLE_FULL: usize = 16;
    pub const REDIS_ERRORS: usize = 24;
    pub const OVERFLOW: usize = 29;
    pub const WORKER_RESTARTS: usize = 32;
    pub const RUNNER_RESTARTS: usize = 36;
    pub const MAILER_RESTARTS: usize = 40;
    pub const MARKET_DATA_RESTARTS: usize = 44;
    /// Per venue (`market::Venue::ALL` order): a gauge set by the market-data
    /// process, then its counters.
    pub const MD_STREAM_UP: usize = 48;
    pub const MD_MESSAGES: usize = 50;
    pub const MD_MALFORMED: usize = 52;
    pub const MD_REST_POLLS: usize = 54;
    pub const MD_RECONNECTS: usize = 56;
    /// Per exchange (`market::Venue::ALL` order) and priority (`PRIORITIES`
    /// order): `exchange * 3 + priority` cells from each base (`exchange_budget`).
    pub const EX_REQUESTS: usize = 64;
    pub const EX_WAITS: usize = 70;
    pub const EX_REFUSED: usize = 76;
    /// Per exchange.
    pub const EX_IP_BANS: usize = 82;
    /// Per exchange (`market::Venue::ALL` order), set by the bot runner: gauges
    /// of the private account streams connected and down.
    pub const STREAMS_CONNECTED: usize = 84;
    pub const STREAMS_DOWN: usize = 86;
    /// Private-stream events by exchange and kind (`STREAM_EVENT_KINDS`):
    /// cell `STREAM_EVENTS + exchange * 4 + kind`.
    pub const STREAM_EVENTS: usize = 88;
    pub const STREAM_RECONNECTS: usize = 96;
    pub const STREAM_MALFORMED: usize = 98;
    /// Per exchange, `FILL_WORDS` cells: the `FILL_BUCKETS` buckets, `+Inf`,
    /// the count and the sum in microseconds.
    pub const FILL_TO_ENGINE: usize = 100;
    pub const FILL_WORDS: usize = super::FILL_BUCKETS.len() + 3;
    /// Cells that are not counters: zeroed, not folded, when their process ends.
    pub const NOT_COUNTERS: [usize; 8] = [
        ACTIVE_BOTS,
        RETIRING,
        MD_STREAM_UP,
        MD_STREAM_UP + 1,
        STREAMS_CONNECTED,
        STREAMS_CONNECTED + 1,
        STREAMS_DOWN,
        STREAMS_DOWN + 1,
    ];
    const _: () = assert!(FILL_TO_ENGINE + 2 * FILL_WORDS <= crate::metrics::STATIC_CAP);
}

/// `blitz_exchange_fill_to_engine_seconds` bucket bounds: 50 ms steps to a
/// second (the C16 target is 1 s at p99), then 250 ms steps to 2 s (how far a
/// miss is), then 5 and 10 s.
pub const FILL_BUCKETS: [f64; 26] = [
    0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85,
    0.9, 0.95, 1.0, 1.25, 1.5, 1.75, 2.0, 5.0, 10.0,
];
/// The `kind` label of `blitz_exchange_stream_events_total`.
pub const STREAM_EVENT_KINDS: [&str; 4] = ["order", "execution", "position", "wallet"];

/// Label values of the indexed static families.
pub const GROUPS: [&str; 8] = [
    "start",
    "stop",
    "recover",
    "status",
    "login_email_ip",
    "login_ip",
    "register",
    "two_factor_user",
];
// Each group has a cell in the `RATE_LIMITED` and `TABLE_FULL` ranges.
const _: () = assert!(GROUPS.len() <= stat::TABLE_FULL - stat::RATE_LIMITED);
pub const REDIS_OPS: [&str; 5] = ["admit", "clear", "guard", "ping", "bus"];
// Each operation has a cell in the `REDIS_ERRORS` range.
const _: () = assert!(REDIS_OPS.len() <= stat::OVERFLOW - stat::REDIS_ERRORS);
pub const REGISTRIES: [&str; 3] = ["http", "histogram", "user"];
const _: () = assert!(stat::OVERFLOW + REGISTRIES.len() <= stat::WORKER_RESTARTS);
pub const RESTART_REASONS: [&str; 4] = ["max_requests", "timeout", "crash", "stopped"];
/// `exchange::rest::budget::Priority` labels, most urgent first.
pub const PRIORITIES: [&str; 3] = ["protective", "placement", "reconcile"];
// The budget cells fit the static region.
const _: () = assert!(stat::EX_IP_BANS + 2 <= super::segment::STATIC_CAP);

/// The `status` values each bot family (`BOT_STARTS`, `BOT_STOPS`, `BOT_RECOVERS`)
/// can record. A user's series are all shown once one of them exists, so the first
/// failure of a user is an increase from 0 that `rate()` sees, not a new series.
pub const BOT_STATUSES: [&[&str]; 3] = [
    &[
        "success",
        "already_running",
        "invalid_config",
        "missing_credentials",
        "conflict",
        "not_found",
        "error",
    ],
    &["success", "not_running", "not_found", "error"],
    &["success", "not_running", "not_found", "error"],
];

/// Every kind of `errors_total` series. Each is rendered from the first scrape on
/// (at 0 until it happens), so the first error is an increase `rate()` and
/// `increase()` can see rather than a series born at 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// Any response with a 5xx status, protocol-level ones included.
    Http5xx,
    WorkerPanic,
    RunnerPanic,
    /// A running bot ended on an error.
    BotFailed,
    /// A Redis call of the coordination backend failed.
    Redis,
    MailDelivery,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 6] = [
        ErrorKind::Http5xx,
        ErrorKind::WorkerPanic,
        ErrorKind::RunnerPanic,
        ErrorKind::BotFailed,
        ErrorKind::Redis,
        ErrorKind::MailDelivery,
    ];

    /// The `type` and `component` labels.
    pub fn labels(self) -> [&'static str; 2] {
        match self {
            ErrorKind::Http5xx => ["http_5xx", "worker"],
            ErrorKind::WorkerPanic => ["panic", "worker"],
            ErrorKind::RunnerPanic => ["panic", "bot_runner"],
            ErrorKind::BotFailed => ["bot_failed", "bot_runner"],
            ErrorKind::Redis => ["redis", "coordination"],
            ErrorKind::MailDelivery => ["mail_delivery", "mailer"],
        }
    }
}

/// HTTP methods get their own label value; anything else is `other` (bounded).
pub fn method_label(method: &str) -> &'static str {
    const KNOWN: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
    KNOWN
        .iter()
        .find(|m| **m == method)
        .copied()
        .unwrap_or("other")
}

/// Index of `name` in `names`, or the last one.
pub fn position(names: &[&str], name: &str) -> usize {
    names
        .iter()
        .position(|n| *n == name)
        .unwrap_or(names.len() - 1)
}
