//! The REST side of a venue's follower: which symbols a poll serves and when,
//! the poll on a helper thread, and how its answers are applied (only to the
//! symbols it was for; never over newer stream news except to fill gaps).

use std::collections::HashSet;

use slog::warn;

use super::{Sym, VenueFeed, FIRST_DATA_MS, MALFORMED_LOG_MS};
use crate::market::feed::job::Job;
use crate::market::feed::partial::Partial;
use crate::market::feed::{bingx, bybit};
use crate::market::{Board, Venue};
use crate::metrics::{self, MarketData};

/// REST polls at most this often.
const REST_EVERY_MS: i64 = 1000;
/// A symbol without news this long while the stream is up gets a REST refresh.
const STALE_REFRESH_MS: i64 = 10_000;
/// A symbol the REST tickers do not list is tried again after this long.
const UNLISTED_RETRY_MS: i64 = 60 * 60 * 1000;
/// BingX's funding rate is only on REST: refreshed this often.
const FUNDING_EVERY_MS: i64 = 60_000;

/// The answers of one REST poll: per path, the body or why there is none.
type RestAnswers = Vec<(&'static str, Result<String, String>)>;

pub(super) struct RestPoll {
    job: Job<RestAnswers>,
    started_ms: i64,
    /// The symbols (venue spelling) whose quotes this poll may update.
    targets: HashSet<String>,
    funding_only: bool,
}

impl VenueFeed {
    /// The symbols a REST poll now would serve, if one is due.
    fn rest_targets(&self, now: i64) -> HashSet<String> {
        if now - self.last_rest_ms < REST_EVERY_MS || now < self.rest_retry_at_ms {
            return HashSet::new();
        }
        let unavailable = self.stream_unavailable(now);
        self.syms
            .iter()
            .filter(|(_, s)| now >= s.unlisted_until_ms)
            .filter(|(_, s)| {
                unavailable
                    || s.refused
                    || now - s.news_ms.max(s.rest_ms).max(s.since_ms) >= STALE_REFRESH_MS
                    || incomplete(s, now) && now - s.rest_ms >= STALE_REFRESH_MS
            })
            .map(|(k, _)| k.clone())
            .collect()
    }

    pub(super) fn poll_rest_when_due(&mut self, now: i64) {
        let targets = self.rest_targets(now);
        if !targets.is_empty() {
            self.start_rest(now, targets, false);
        } else if self.venue == Venue::Bingx
            && !self.syms.is_empty()
            && now - self.last_funding_ms >= FUNDING_EVERY_MS
            && now >= self.rest_retry_at_ms
        {
            let all = self.syms.keys().cloned().collect();
            self.start_rest(now, all, true);
        }
    }

    /// Starts a poll of the public tickers (or, `funding_only`, BingX's premium
    /// index) on a helper thread.
    fn start_rest(&mut self, now: i64, targets: HashSet<String>, funding_only: bool) {
        self.last_rest_ms = now;
        if self.venue == Venue::Bingx {
            self.last_funding_ms = now;
        }
        for t in &targets {
            if let Some(s) = self.syms.get_mut(t) {
                s.rest_ms = now;
            }
        }
        let paths: &'static [&'static str] = match (self.venue, funding_only) {
            (Venue::Bybit, _) => &[bybit::REST_TICKERS],
            (Venue::Bingx, false) => &[bingx::REST_TICKER, bingx::REST_PREMIUM],
            (Venue::Bingx, true) => &[bingx::REST_PREMIUM],
        };
        let urls: Vec<(&'static str, String)> = paths
            .iter()
            .map(|path| {
                metrics::market_data(self.venue, MarketData::RestPoll);
                let url = match self.venue {
                    Venue::Bybit => format!("{}{path}", self.rest_url),
                    Venue::Bingx => format!("{}{path}?timestamp={now}", self.rest_url),
                };
                (*path, url)
            })
            .collect();
        let http = self.http.clone();
        let job = Job::spawn("market-data-rest", move || {
            let mut answers = Vec::new();
            for (path, url) in urls {
                let answer = match http.send("GET", &url, &[], None) {
                    Ok(a) if a.status == 200 => Ok(a.body),
                    Ok(a) => Err(format!("HTTP {}", a.status)),
                    Err(e) => Err(e.to_string()),
                };
                let failed = answer.is_err();
                answers.push((path, answer));
                if failed {
                    break;
                }
            }
            answers
        });
        match job {
            Ok(job) => {
                self.rest = Some(RestPoll {
                    job,
                    started_ms: now,
                    targets,
                    funding_only,
                })
            }
            Err(e) => self.rest_failed(now, &e),
        }
    }

    /// Applies a finished REST poll.
    pub(super) fn rest_answered(&mut self, board: &Board, now: i64) {
        let Some(done) = self.rest.as_ref().and_then(|r| r.job.poll()) else {
            return;
        };
        let Some(poll) = self.rest.take() else { return };
        let answers = match done {
            Ok(a) => a,
            Err(e) => return self.rest_failed(now, &e),
        };
        let mut ok = true;
        for (path, answer) in answers {
            match answer {
                Ok(body) => self.apply_rest(board, &poll, path, &body, now),
                Err(e) => {
                    ok = false;
                    self.rest_failed(now, &e);
                }
            }
        }
        if ok {
            self.rest_backoff.reset();
        }
    }

    fn apply_rest(&mut self, board: &Board, poll: &RestPoll, path: &str, body: &str, now: i64) {
        let keep = |s: &str| poll.targets.contains(s);
        let parsed = match path {
            bybit::REST_TICKERS => bybit::rest_tickers(body, &keep),
            bingx::REST_TICKER => bingx::rest_ticker(body, &keep),
            _ => bingx::rest_premium(body, &keep),
        };
        let (list, bad) = match parsed {
            Ok(p) => p,
            Err(e) => return self.malformed(now, &format!("{path}: {e}")),
        };
        for _ in 0..bad {
            self.malformed(now, &format!("{path}: an entry could not be read"));
        }
        let listed: HashSet<&str> = list.iter().map(|(s, _)| s.as_str()).collect();
        if path != bingx::REST_PREMIUM {
            self.mark_unlisted(&poll.targets, &listed, now);
        }
        for (theirs, mut fields) in list {
            let Some(s) = self.syms.get(&theirs) else {
                continue;
            };
            // When the stream told something newer while the poll ran, only the
            // funding (slow, and not on BingX's stream) and what the stream has
            // not told yet (a book that never came) are taken.
            if poll.funding_only || s.stream_ms > poll.started_ms {
                let gaps = if poll.funding_only {
                    Partial::default()
                } else {
                    s.fields.gaps_from(&fields)
                };
                fields = Partial {
                    funding_rate: fields.funding_rate,
                    next_funding_ms: fields.next_funding_ms,
                    ..gaps
                };
            }
            self.update(board, &theirs, &fields, false, now);
        }
    }

    /// Targets the answer does not list are not polled for an hour.
    fn mark_unlisted(&mut self, targets: &HashSet<String>, listed: &HashSet<&str>, now: i64) {
        for theirs in targets.iter().filter(|t| !listed.contains(t.as_str())) {
            if let Some(s) = self.syms.get_mut(theirs) {
                warn!(self.log, "not listed by the REST tickers; asked again in an hour";
                    "symbol" => &s.ours);
                s.unlisted_until_ms = now + UNLISTED_RETRY_MS;
            }
        }
    }

    pub(super) fn rest_failed(&mut self, now: i64, why: &str) {
        let delay = self.rest_backoff.next_delay_ms();
        self.rest_retry_at_ms = now + delay;
        if now - self.rest_failure_logged_ms >= MALFORMED_LOG_MS {
            warn!(self.log, "public REST tickers unavailable"; "error" => why,
                "retry_in_ms" => delay);
            self.rest_failure_logged_ms = now;
        }
    }
}

/// News came `FIRST_DATA_MS` ago, but not yet all a quote needs (BingX's book
/// channel silent, say): REST fills the gaps.
fn incomplete(s: &Sym, now: i64) -> bool {
    s.first_news_ms >= 0 && now - s.first_news_ms >= FIRST_DATA_MS && s.fields.quote(0).is_none()
}
