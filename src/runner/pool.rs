//! A small fixed pool of threads for bot work (exchange I/O and database writes):
//! 5,000 bots share a handful of threads instead of owning one each. Each thread has
//! its own database connection.

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};

use rusqlite::Connection;

pub type Job = Box<dyn FnOnce(&Connection) + Send>;

pub struct Pool {
    tx: Option<Sender<Job>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Pool {
    /// Starts `size` threads; `open` makes each thread's connection.
    pub fn start<F>(size: usize, open: F) -> std::io::Result<Pool>
    where
        F: Fn() -> std::io::Result<Connection> + Send + Sync + 'static,
    {
        let (tx, rx) = channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let open = Arc::new(open);
        let mut threads = Vec::with_capacity(size);
        for i in 0..size {
            let conn = open()?;
            let rx = rx.clone();
            threads.push(
                std::thread::Builder::new()
                    .name(format!("bots-{i}"))
                    .spawn(move || run(&rx, &conn))?,
            );
        }
        Ok(Pool {
            tx: Some(tx),
            threads,
        })
    }

    pub fn submit(&self, job: Job) {
        if let Some(tx) = &self.tx {
            // Sending fails only once every thread has exited (shutdown).
            let _ = tx.send(job);
        }
    }

    /// Lets queued jobs finish, then joins the threads.
    pub fn shutdown(mut self) {
        self.tx = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn run(rx: &Mutex<Receiver<Job>>, conn: &Connection) {
    loop {
        let job = match rx.lock() {
            Ok(guard) => guard.recv(),
            Err(_) => return,
        };
        match job {
            // A panicking job (logged by the panic hook) must not shrink the pool.
            Ok(job) => {
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(conn)));
            }
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_job_does_not_kill_its_thread() {
        let pool = Pool::start(1, || {
            Connection::open_in_memory().map_err(std::io::Error::other)
        })
        .unwrap();
        let (tx, rx) = channel();
        pool.submit(Box::new(|_| panic!("boom")));
        pool.submit(Box::new(move |c| {
            let one: i64 = c.query_row("SELECT 1", [], |r| r.get(0)).unwrap();
            tx.send(one).unwrap();
        }));
        assert_eq!(rx.recv_timeout(std::time::Duration::from_secs(5)), Ok(1));
        pool.shutdown();
    }
}
