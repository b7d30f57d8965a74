//! A scrape: sums every slot and the retired accumulator under the fold sequence
//! lock, reads the per-user cells and `/proc`, and renders the text format through
//! the `prometheus` crate's encoder.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use blitz_master::{Scoreboard, SlotState, WORKER_SLOTS};
use prometheus::proto::{
    Bucket, Counter, Gauge, Histogram, LabelPair, Metric, MetricFamily, MetricType,
};
use prometheus::TextEncoder;

use super::cells::HistValue;
use super::families::{
    self, stat, ErrorKind, BOT_STATUSES, BUCKETS, FILL_BUCKETS, GROUPS, PRIORITIES, REDIS_OPS,
    REGISTRIES, RESTART_REASONS, STREAM_EVENT_KINDS,
};
use super::segment::{SLOTS, STATIC_CAP};
use super::{process, Shared, FOLD_SEQ, MASTER_PID, SHARED, WORKER_HIGH};

/// `app_info`'s labels.
pub struct AppInfo<'a> {
    pub version: &'a str,
    pub environment: &'a str,
}

/// Sums of the per-process cells at one instant.
struct Snapshot {
    hot: Vec<(u16, Vec<String>, u64)>,
    hist: Vec<(Vec<String>, HistValue)>,
    stats: [u64; STATIC_CAP],
}

fn snapshot(s: &Shared) -> Snapshot {
    let high = s.header[WORKER_HIGH].load(Ordering::Relaxed) as usize;
    let slots: Vec<usize> = (0..high.min(WORKER_SLOTS))
        .chain(WORKER_SLOTS..SLOTS)
        .collect();
    let hot: Vec<_> = s.hot.entries().collect();
    let hist: Vec<_> = s.hist.entries().collect();
    let seq = &s.header[FOLD_SEQ];
    let started = std::time::Instant::now();
    let mut tries = 0u32;
    loop {
        let before = seq.load(Ordering::Acquire);
        if before & 1 == 1 && started.elapsed() < super::cells::MAX_WAIT {
            super::cells::back_off(&mut tries);
            continue;
        }
        let snap = Snapshot {
            hot: hot
                .iter()
                .map(|(i, f, l)| {
                    let v = slots
                        .iter()
                        .map(|sl| s.cells.counter(*sl, *i).load(Ordering::Relaxed))
                        .sum();
                    (*f, l.clone(), v)
                })
                .collect(),
            hist: hist
                .iter()
                .map(|(i, _, l)| {
                    let mut v = HistValue::default();
                    slots
                        .iter()
                        .for_each(|sl| v.add(&s.cells.read_hist(*sl, *i)));
                    (l.clone(), v)
                })
                .collect(),
            stats: std::array::from_fn(|i| {
                slots
                    .iter()
                    .map(|sl| s.cells.stat(*sl, i).load(Ordering::Relaxed))
                    .sum()
            }),
        };
        // A fold (odd, or moved on) may have counted a process twice or not at all:
        // take it again. A fold lasts microseconds; only a master stalled for a
        // whole second would let a snapshot through unchecked.
        std::sync::atomic::fence(Ordering::Acquire);
        let stable = before & 1 == 0 && seq.load(Ordering::Relaxed) == before;
        if stable || started.elapsed() >= super::cells::MAX_WAIT {
            return snap;
        }
        super::cells::back_off(&mut tries);
    }
}

fn labels(pairs: &[(&str, &str)]) -> Vec<LabelPair> {
    pairs
        .iter()
        .map(|(k, v)| {
            let mut l = LabelPair::default();
            l.set_name(k.to_string());
            l.set_value(v.to_string());
            l
        })
        .collect()
}

fn counter(pairs: &[(&str, &str)], v: f64) -> Metric {
    let mut c = Counter::default();
    c.set_value(v);
    let mut m = Metric::default();
    m.set_label(labels(pairs));
    m.set_counter(c);
    m
}

fn gauge(pairs: &[(&str, &str)], v: f64) -> Metric {
    let mut g = Gauge::default();
    g.set_value(v);
    let mut m = Metric::default();
    m.set_label(labels(pairs));
    m.set_gauge(g);
    m
}

fn histogram(pairs: &[(&str, &str)], v: &HistValue) -> Metric {
    // The finite buckets; the encoder adds `+Inf` from the sample count.
    let mut cumulative = 0;
    let buckets = BUCKETS
        .iter()
        .zip(v.buckets)
        .map(|(le, n)| {
            cumulative += n;
            let mut b = Bucket::default();
            b.set_upper_bound(*le);
            b.set_cumulative_count(cumulative);
            b
        })
        .collect();
    let mut h = Histogram::default();
    h.set_bucket(buckets);
    h.set_sample_count(v.count);
    h.set_sample_sum(v.sum);
    let mut m = Metric::default();
    m.set_label(labels(pairs));
    m.set_histogram(h);
    m
}

/// The text of one family; a family without series still shows its HELP and TYPE.
fn write(out: &mut String, name: &str, help: &str, kind: MetricType, metrics: Vec<Metric>) {
    if metrics.is_empty() {
        let t = match kind {
            MetricType::COUNTER => "counter",
            MetricType::HISTOGRAM => "histogram",
            _ => "gauge",
        };
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {t}\n"));
        return;
    }
    let mut mf = MetricFamily::default();
    mf.set_name(name.to_string());
    mf.set_help(help.to_string());
    mf.set_field_type(kind);
    mf.set_metric(metrics);
    // Only fails for an empty or unnamed family, excluded above.
    let _ = TextEncoder::new().encode_utf8(&[mf], out);
}

/// The `/metrics` text.
pub fn render(sb: &Scoreboard, info: &AppInfo<'_>) -> String {
    let Some(s) = SHARED.get() else {
        return String::new();
    };
    let snap = snapshot(s);
    let mut out = String::with_capacity(64 * 1024);
    http(&mut out, &snap);
    bots(&mut out, s);
    let known: Vec<[&str; 2]> = ErrorKind::ALL.iter().map(|k| k.labels()).collect();
    let errors = series(&snap, families::ERRORS, &["type", "component"], &known);
    write(
        &mut out,
        "errors_total",
        "Application errors by type and component.",
        MetricType::COUNTER,
        errors,
    );
    // A gauge by meaning, but dashboards query this name and `_total` is reserved
    // for counters: untyped keeps the name and passes `promtool check metrics`.
    // (The crate's untyped model is deprecated; one label-less line is written here.)
    let active = snap.stats[stat::ACTIVE_BOTS];
    out.push_str(&format!(
        "# HELP active_bots_total Bots the bot runner is running.\n\
         # TYPE active_bots_total untyped\nactive_bots_total {active}\n"
    ));
    let app = gauge(
        &[("version", info.version), ("environment", info.environment)],
        1.0,
    );
    write(
        &mut out,
        "app_info",
        "Application version and environment.",
        MetricType::GAUGE,
        vec![app],
    );
    processes(&mut out, s, sb);
    supervisor(&mut out, &snap, sb);
    out
}

/// A series may own two registry entries if its first claimer stalled mid-claim
/// (see `registry`): rows with the same labels are summed, so the output never
/// repeats a series.
///
/// `known` label sets are shown at 0 until they first count.
fn series<const N: usize>(
    snap: &Snapshot,
    family: u16,
    names: &[&str],
    known: &[[&str; N]],
) -> Vec<Metric> {
    // Borrowed keys: a scrape copies no label text.
    let mut rows: BTreeMap<Vec<&str>, u64> = known.iter().map(|l| (l.to_vec(), 0)).collect();
    for (_, l, v) in snap.hot.iter().filter(|(f, ..)| *f == family) {
        *rows
            .entry(l.iter().map(String::as_str).collect())
            .or_default() += v;
    }
    rows.iter()
        .map(|(l, v)| {
            let pairs: Vec<(&str, &str)> = names.iter().copied().zip(l.iter().copied()).collect();
            counter(&pairs, *v as f64)
        })
        .collect()
}

fn http(out: &mut String, snap: &Snapshot) {
    let requests = series::<3>(
        snap,
        families::HTTP_REQUESTS,
        &["method", "endpoint", "status"],
        &[],
    );
    write(
        out,
        "http_requests_total",
        "HTTP requests by method, route and status.",
        MetricType::COUNTER,
        requests,
    );
    let mut rows: BTreeMap<&[String], HistValue> = BTreeMap::new();
    for (l, v) in &snap.hist {
        rows.entry(l.as_slice()).or_default().add(v);
    }
    let durations = rows
        .iter()
        .filter(|(l, _)| l.len() == 2)
        .map(|(l, v)| histogram(&[("method", &l[0]), ("endpoint", &l[1])], v))
        .collect();
    write(
        out,
        "http_request_duration_seconds",
        "HTTP request latency by method and route.",
        MetricType::HISTOGRAM,
        durations,
    );
}

fn bots(out: &mut String, s: &Shared) {
    let mut by_family: [BTreeMap<Vec<String>, u64>; 3] = Default::default();
    for (i, f, l) in s.user.entries() {
        let family = usize::from(f);
        let (Some(rows), Some(statuses)) = (by_family.get_mut(family), BOT_STATUSES.get(family))
        else {
            continue;
        };
        if let Some(user) = l.first() {
            for status in *statuses {
                rows.entry(vec![user.clone(), status.to_string()])
                    .or_default();
            }
        }
        *rows.entry(l).or_default() += s.user.value(i).load(Ordering::Relaxed);
    }
    let names = [
        ("bot_starts_total", "Bot starts by user and outcome."),
        ("bot_stops_total", "Bot stops by user and outcome."),
        ("bot_recovers_total", "Bot recovers by user and outcome."),
    ];
    for ((name, help), rows) in names.into_iter().zip(by_family) {
        let metrics = rows
            .iter()
            .filter(|(l, _)| l.len() == 2)
            .map(|(l, v)| counter(&[("user_id", &l[0]), ("status", &l[1])], *v as f64))
            .collect();
        write(out, name, help, MetricType::COUNTER, metrics);
    }
}

/// Every live process of the instance with its `process` label.
fn live(s: &Shared, sb: &Scoreboard) -> Vec<(String, i32)> {
    let mut all = vec![(
        "master".to_string(),
        s.header[MASTER_PID].load(Ordering::Relaxed) as i32,
    )];
    for i in 0..WORKER_SLOTS {
        let slot = sb.slot(i);
        if slot.state() != SlotState::Free && slot.pid() > 0 {
            all.push((format!("worker-{i}"), slot.pid()));
        }
    }
    for (k, name) in crate::serve::SINGLETONS.iter().enumerate() {
        let slot = sb.slot(Scoreboard::singleton_slot(k));
        if slot.state() != SlotState::Free && slot.pid() > 0 {
            all.push((name.to_string(), slot.pid()));
        }
    }
    all
}

fn processes(out: &mut String, s: &Shared, sb: &Scoreboard) {
    let stats: Vec<_> = live(s, sb)
        .into_iter()
        .filter_map(|(name, pid)| process::stats(pid).map(|st| (name, st)))
        .collect();
    let each = |f: &dyn Fn(&process::ProcessStats) -> f64, as_counter: bool| -> Vec<Metric> {
        stats
            .iter()
            .map(|(n, st)| {
                if as_counter {
                    counter(&[("process", n)], f(st))
                } else {
                    gauge(&[("process", n)], f(st))
                }
            })
            .collect()
    };
    write(
        out,
        "process_resident_memory_bytes",
        "Resident memory size in bytes.",
        MetricType::GAUGE,
        each(&|p| p.resident_bytes, false),
    );
    write(
        out,
        "process_cpu_seconds_total",
        "Total user and system CPU time spent in seconds.",
        MetricType::COUNTER,
        each(&|p| p.cpu_seconds, true),
    );
    write(
        out,
        "process_open_fds",
        "Number of open file descriptors.",
        MetricType::GAUGE,
        each(&|p| p.open_fds, false),
    );
    write(
        out,
        "process_start_time_seconds",
        "Start time of the process since unix epoch in seconds.",
        MetricType::GAUGE,
        each(&|p| p.start_time_seconds, false),
    );
}

/// The market-data process's families, one series per venue.
fn market_data(out: &mut String, snap: &Snapshot) {
    let venues: Vec<&str> = crate::market::Venue::ALL.iter().map(|v| v.name()).collect();
    let up = venues
        .iter()
        .enumerate()
        .map(|(k, v)| gauge(&[("venue", v)], snap.stats[stat::MD_STREAM_UP + k] as f64))
        .collect();
    write(
        out,
        "blitz_market_data_stream_up",
        "Whether the venue's public price stream is connected and delivering.",
        MetricType::GAUGE,
        up,
    );
    let counters = [
        (
            "blitz_market_data_messages_total",
            "Frames received on the venue's public price stream.",
            stat::MD_MESSAGES,
        ),
        (
            "blitz_market_data_malformed_total",
            "Stream frames and REST answers of the venue that could not be read.",
            stat::MD_MALFORMED,
        ),
        (
            "blitz_market_data_rest_polls_total",
            "Public REST ticker calls to the venue (fallback and stale refreshes).",
            stat::MD_REST_POLLS,
        ),
        (
            "blitz_market_data_reconnects_total",
            "Connection attempts of the venue's public price stream.",
            stat::MD_RECONNECTS,
        ),
    ];
    for (name, help, base) in counters {
        write(
            out,
            name,
            help,
            MetricType::COUNTER,
            indexed(snap, base, "venue", &venues),
        );
    }
}

/// The exchanges' request budgets (`exchange::rest::budget`), by exchange and
/// priority.
fn exchange_budgets(out: &mut String, snap: &Snapshot) {
    let venues: Vec<&str> = crate::market::Venue::ALL.iter().map(|v| v.name()).collect();
    let by_priority = |base: usize| -> Vec<Metric> {
        let mut all = Vec::new();
        for (e, exchange) in venues.iter().enumerate() {
            for (p, priority) in PRIORITIES.iter().enumerate() {
                let v = snap.stats[base + e * PRIORITIES.len() + p] as f64;
                all.push(counter(
                    &[("exchange", exchange), ("priority", priority)],
                    v,
                ));
            }
        }
        all
    };
    let families = [
        (
            "blitz_exchange_requests_total",
            "REST requests sent to the exchange, by the priority of their budget class.",
            stat::EX_REQUESTS,
        ),
        (
            "blitz_exchange_budget_waits_total",
            "REST requests that waited for room in the exchange's request budget.",
            stat::EX_WAITS,
        ),
        (
            "blitz_exchange_budget_refused_total",
            "REST requests not sent because their turn in the budget would have come after their deadline.",
            stat::EX_REFUSED,
        ),
    ];
    for (name, help, base) in families {
        write(out, name, help, MetricType::COUNTER, by_priority(base));
    }
    write(
        out,
        "blitz_exchange_ip_bans_total",
        "IP bans the exchange announced to this server (Bybit 403 \"access too frequent\", BingX 418).",
        MetricType::COUNTER,
        indexed(snap, stat::EX_IP_BANS, "exchange", &venues),
    );
}

/// One counter per label value of a static family starting at `base`.
/// The bot runner's private account streams, per exchange (no per-account
/// label: their number is bounded by the exchanges).
fn exchange_streams(out: &mut String, snap: &Snapshot) {
    let names: Vec<&str> = crate::market::Venue::ALL.iter().map(|v| v.name()).collect();
    let states = names.iter().enumerate().flat_map(|(k, v)| {
        [
            ("connected", stat::STREAMS_CONNECTED + k),
            ("down", stat::STREAMS_DOWN + k),
        ]
        .map(|(state, i)| gauge(&[("exchange", v), ("state", state)], snap.stats[i] as f64))
    });
    write(
        out,
        "blitz_exchange_streams",
        "Private account streams of the bot runner, by exchange and state.",
        MetricType::GAUGE,
        states.collect(),
    );
    let kinds = &STREAM_EVENT_KINDS;
    let events = names.iter().enumerate().flat_map(|(k, v)| {
        kinds.iter().enumerate().map(move |(j, kind)| {
            let i = stat::STREAM_EVENTS + k * kinds.len() + j;
            counter(&[("exchange", v), ("kind", kind)], snap.stats[i] as f64)
        })
    });
    write(
        out,
        "blitz_exchange_stream_events_total",
        "Account events received on the private streams, by exchange and kind.",
        MetricType::COUNTER,
        events.collect(),
    );
    for (name, help, base) in [
        (
            "blitz_exchange_stream_reconnects_total",
            "Connection attempts of the private account streams.",
            stat::STREAM_RECONNECTS,
        ),
        (
            "blitz_exchange_stream_malformed_total",
            "Private-stream frames that could not be read.",
            stat::STREAM_MALFORMED,
        ),
    ] {
        let series = indexed(snap, base, "exchange", &names);
        write(out, name, help, MetricType::COUNTER, series);
    }
    let fills = names
        .iter()
        .enumerate()
        .map(|(k, v)| {
            fill_histogram(
                v,
                &snap.stats[stat::FILL_TO_ENGINE + k * stat::FILL_WORDS..],
            )
        })
        .collect();
    write(
        out,
        "blitz_exchange_fill_to_engine_seconds",
        "Time from a fill's exchange timestamp to the first bot step that read it.",
        MetricType::HISTOGRAM,
        fills,
    );
}

/// One exchange's fill-latency histogram from its cells (buckets, `+Inf`,
/// count, sum in microseconds).
fn fill_histogram(exchange: &str, cells: &[u64]) -> Metric {
    let n = FILL_BUCKETS.len();
    let mut cumulative = 0;
    let buckets = FILL_BUCKETS
        .iter()
        .zip(cells)
        .map(|(le, c)| {
            cumulative += c;
            let mut b = Bucket::default();
            b.set_upper_bound(*le);
            b.set_cumulative_count(cumulative);
            b
        })
        .collect();
    let mut h = Histogram::default();
    h.set_bucket(buckets);
    h.set_sample_count(cells[n + 1]);
    h.set_sample_sum(cells[n + 2] as f64 / 1e6);
    let mut m = Metric::default();
    m.set_label(labels(&[("exchange", exchange)]));
    m.set_histogram(h);
    m
}

fn indexed(snap: &Snapshot, base: usize, label: &str, values: &[&str]) -> Vec<Metric> {
    values
        .iter()
        .enumerate()
        .map(|(k, v)| counter(&[(label, v)], snap.stats[base + k] as f64))
        .collect()
}

fn supervisor(out: &mut String, snap: &Snapshot, sb: &Scoreboard) {
    let alive = (0..WORKER_SLOTS)
        .filter(|i| sb.slot(*i).state() != SlotState::Free)
        .count();
    write(
        out,
        "blitz_workers",
        "HTTP worker processes alive.",
        MetricType::GAUGE,
        vec![gauge(&[], alive as f64)],
    );
    let restarts = [
        (
            "blitz_worker_restarts_total",
            "Worker replacements by reason.",
            stat::WORKER_RESTARTS,
        ),
        (
            "blitz_bot_runner_restarts_total",
            "Bot runner replacements by reason.",
            stat::RUNNER_RESTARTS,
        ),
        (
            "blitz_mailer_restarts_total",
            "Mailer replacements by reason.",
            stat::MAILER_RESTARTS,
        ),
        (
            "blitz_market_data_restarts_total",
            "Market-data process replacements by reason.",
            stat::MARKET_DATA_RESTARTS,
        ),
    ];
    for (name, help, base) in restarts {
        write(
            out,
            name,
            help,
            MetricType::COUNTER,
            indexed(snap, base, "reason", &RESTART_REASONS),
        );
    }
    let one = |i: usize| vec![counter(&[], snap.stats[i] as f64)];
    write(
        out,
        "blitz_rate_limit_rejections_total",
        "Requests refused by a rate limit, by group.",
        MetricType::COUNTER,
        indexed(snap, stat::RATE_LIMITED, "group", &GROUPS),
    );
    write(
        out,
        "blitz_rate_limit_table_full_total",
        "Keys that lost their count to a new key because the shared table had no room, by group.",
        MetricType::COUNTER,
        indexed(snap, stat::TABLE_FULL, "group", &GROUPS),
    );
    write(
        out,
        "blitz_lock_conflicts_total",
        "Bot operations refused because another one of the same user was running.",
        MetricType::COUNTER,
        one(stat::LOCK_CONFLICTS),
    );
    write(
        out,
        "blitz_redis_errors_total",
        "Failed Redis calls by operation.",
        MetricType::COUNTER,
        indexed(snap, stat::REDIS_ERRORS, "op", &REDIS_OPS),
    );
    write(
        out,
        "blitz_redis_fallbacks_total",
        "Switches from Redis to the local coordination tables.",
        MetricType::COUNTER,
        one(stat::REDIS_FALLBACKS),
    );
    market_data(out, snap);
    exchange_budgets(out, snap);
    exchange_streams(out, snap);
    write(
        out,
        "blitz_market_refresh_failures_total",
        "Failed refreshes of the market catalogue or candles (the previous copy is served).",
        MetricType::COUNTER,
        one(stat::MARKET_REFRESH_FAILURES),
    );
    write(
        out,
        "blitz_metrics_series_overflow_total",
        "Series not recorded because their table was full, by table.",
        MetricType::COUNTER,
        indexed(snap, stat::OVERFLOW, "registry", &REGISTRIES),
    );
}
