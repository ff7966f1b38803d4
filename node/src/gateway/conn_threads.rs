//! Threads that each run a single-threaded runtime of their own and serve the connections
//! handed to them for their whole life, as memcached's worker threads do. A connection
//! then sleeps and wakes with its thread alone: no work stealing between threads, and none
//! of the wake-ups of idle workers a shared runtime makes on every readiness event, which
//! cost a context switch per request under a load of many small requests.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use tokio::sync::mpsc;

/// Work for a connection thread: builds the connection's future on that thread (so its
/// socket registers with that thread's runtime).
pub type Job = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

pub struct ConnThreads {
    threads: Vec<mpsc::UnboundedSender<Job>>,
    next: AtomicUsize,
}

impl ConnThreads {
    /// Starts `n` threads named `shoal-conn-<i>`.
    pub fn start(n: usize) -> std::io::Result<ConnThreads> {
        let mut threads = Vec::with_capacity(n);
        for i in 0..n.max(1) {
            let (tx, mut rx) = mpsc::unbounded_channel::<Job>();
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            std::thread::Builder::new().name(format!("shoal-conn-{i}")).spawn(move || {
                rt.block_on(async move {
                    while let Some(job) = rx.recv().await {
                        tokio::spawn(job());
                    }
                })
            })?;
            threads.push(tx);
        }
        Ok(ConnThreads { threads, next: AtomicUsize::new(0) })
    }

    /// Runs `job` on the next thread, round-robin.
    pub fn spawn(&self, job: Job) {
        let i = self.next.fetch_add(1, Relaxed) % self.threads.len();
        // A thread that is gone has stopped with the process; the connection is dropped.
        let _ = self.threads[i].send(job);
    }
}
