//! A blocking call (a stream connect, a REST poll) run on a short-lived helper
//! thread, so the loop's turns never wait for a venue that does not answer.
//! At most one job of each kind per venue runs at a time, and each is bounded by
//! its own timeouts, so the helpers stay few and short-lived.

use std::sync::mpsc::{self, Receiver, TryRecvError};

pub struct Job<T> {
    rx: Receiver<T>,
}

impl<T: Send + 'static> Job<T> {
    pub fn spawn(name: &str, f: impl FnOnce() -> T + Send + 'static) -> Result<Job<T>, String> {
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                let _ = tx.send(f());
            })
            .map_err(|e| format!("cannot start a helper thread: {e}"))?;
        Ok(Job { rx })
    }

    /// `None` while the job runs; its result once done, `Err` if it panicked.
    pub fn poll(&self) -> Option<Result<T, String>> {
        match self.rx.try_recv() {
            Ok(v) => Some(Ok(v)),
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => Some(Err("the helper thread died".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn a_job_reports_its_result_without_blocking_the_caller() {
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let job = Job::spawn("test-job", move || {
            let _ = go_rx.recv();
            7
        })
        .unwrap();
        assert!(job.poll().is_none());
        go_tx.send(()).unwrap();
        let end = Instant::now() + Duration::from_secs(5);
        let got = loop {
            if let Some(r) = job.poll() {
                break r;
            }
            assert!(Instant::now() < end, "the job never finished");
            std::thread::sleep(Duration::from_millis(1));
        };
        assert_eq!(got, Ok(7));
    }

    #[test]
    fn a_panicking_job_is_an_error() {
        let job: Job<i32> = Job::spawn("test-job", || panic!("boom")).unwrap();
        let end = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(r) = job.poll() {
                assert!(r.is_err());
                return;
            }
            assert!(Instant::now() < end, "the job never finished");
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}
