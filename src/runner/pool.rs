//! A small fixed pool of threads for bot work (exchange I/O and database writes):
//! 5,000 bots share a handful of threads instead of owning one each. Each thread has
//! its own database connection.
//!
//! Jobs wait in two queues: `submit_first` ones (a step woken by its account's
//! stream, which reads a fill) go before every ordinary one. Under a busy
//! exchange the pool's queue grows with ordinary ticks; a fill must not wait
//! behind them (C16: fills reach the engine within a second).

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use crate::store::sql::Conn;

pub type Job = Box<dyn FnOnce(&Conn) + Send>;

#[derive(Default)]
struct Queues {
    first: VecDeque<Job>,
    normal: VecDeque<Job>,
    /// No more jobs come: threads exit once the queues are empty.
    closed: bool,
}

#[derive(Default)]
struct Shared {
    queues: Mutex<Queues>,
    ready: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queues> {
        self.queues.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn push(&self, job: Job, first: bool) {
        let mut q = self.lock();
        if q.closed {
            return;
        }
        if first {
            q.first.push_back(job);
        } else {
            q.normal.push_back(job);
        }
        drop(q);
        self.ready.notify_one();
    }

    /// The next job, or none once the pool is closed and drained.
    fn next(&self) -> Option<Job> {
        let mut q = self.lock();
        loop {
            if let Some(job) = q.first.pop_front().or_else(|| q.normal.pop_front()) {
                return Some(job);
            }
            if q.closed {
                return None;
            }
            q = self.ready.wait(q).unwrap_or_else(|p| p.into_inner());
        }
    }
}

pub struct Pool {
    shared: Arc<Shared>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Pool {
    /// Starts `size` threads; `open` makes each thread's connection. The first
    /// thread's is opened now, so a database that cannot be opened fails the start;
    /// the others' when they first get a job, so idle threads (the real exchanges'
    /// lanes on an instance that has no such bot) hold no PostgreSQL connection.
    pub fn start<F>(size: usize, open: F) -> std::io::Result<Pool>
    where
        F: Fn() -> std::io::Result<Conn> + Send + Sync + 'static,
    {
        let shared = Arc::new(Shared::default());
        let open = Arc::new(open);
        let mut threads = Vec::with_capacity(size);
        for i in 0..size {
            let mut conn = if i == 0 { Some(open()?) } else { None };
            let (shared, open) = (shared.clone(), open.clone());
            threads.push(
                std::thread::Builder::new()
                    .name(format!("bots-{i}"))
                    .spawn(move || run(&shared, &mut conn, open.as_ref()))?,
            );
        }
        Ok(Pool { shared, threads })
    }

    pub fn submit(&self, job: Job) {
        self.shared.push(job, false);
    }

    /// Runs `job` before every job submitted with `submit` that has not started.
    pub fn submit_first(&self, job: Job) {
        self.shared.push(job, true);
    }

    /// Lets queued jobs finish, then joins the threads.
    pub fn shutdown(mut self) {
        self.close();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }

    fn close(&self) {
        self.shared.lock().closed = true;
        self.shared.ready.notify_all();
    }
}

impl Drop for Pool {
    /// A pool dropped without `shutdown` still lets its threads finish the
    /// queued jobs and exit.
    fn drop(&mut self) {
        self.close();
    }
}

/// How long a thread waits before trying again to open its connection.
const REOPEN_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

fn run(shared: &Shared, conn: &mut Option<Conn>, open: &dyn Fn() -> std::io::Result<Conn>) {
    while let Some(job) = shared.next() {
        // A job is never dropped for want of a connection: it waits for one (the
        // database being down stops every step anyway).
        // A PostgreSQL connection the server closed (a restart, a fail-over) is
        // replaced rather than failing every later job.
        if conn.as_ref().is_some_and(Conn::is_broken) {
            *conn = None;
        }
        let conn = loop {
            if let Some(c) = conn.as_ref() {
                break c;
            }
            match open() {
                Ok(c) => *conn = Some(c),
                Err(_) if shared.lock().closed => return,
                Err(_) => std::thread::sleep(REOPEN_AFTER),
            }
        };
        // A panicking job (logged by the panic hook) must not shrink the pool.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(conn)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::channel;

    #[test]
    fn a_panicking_job_does_not_kill_its_thread() {
        let pool =
            Pool::start(1, || Conn::open_in_memory().map_err(std::io::Error::other)).unwrap();
        let (tx, rx) = channel();
        pool.submit(Box::new(|_| panic!("boom")));
        pool.submit(Box::new(move |c| {
            let one: i64 = c.query_row("SELECT 1", (), |r| r.get(0)).unwrap();
            tx.send(one).unwrap();
        }));
        assert_eq!(rx.recv_timeout(std::time::Duration::from_secs(5)), Ok(1));
        pool.shutdown();
    }

    #[test]
    fn jobs_submitted_first_run_before_queued_ones_and_shutdown_drains_both() {
        let pool =
            Pool::start(1, || Conn::open_in_memory().map_err(std::io::Error::other)).unwrap();
        // Hold the only thread until every job is queued.
        let (go_tx, go_rx) = channel::<()>();
        pool.submit(Box::new(move |_| {
            let _ = go_rx.recv();
        }));
        let order = Arc::new(Mutex::new(Vec::new()));
        for (name, first) in [("tick1", false), ("tick2", false), ("fill", true)] {
            let order = order.clone();
            let job: Job = Box::new(move |_| order.lock().unwrap().push(name));
            if first {
                pool.submit_first(job);
            } else {
                pool.submit(job);
            }
        }
        go_tx.send(()).unwrap();
        pool.shutdown();
        assert_eq!(*order.lock().unwrap(), vec!["fill", "tick1", "tick2"]);
    }
}
