//! Flat combining for scripts: a script that arrives while another one holds the engine is
//! handed to the holder, which runs it before letting go, instead of the two threads taking
//! turns at the VM. Taking turns moves the Lua heap, the keyspace and the locks from core to
//! core with every script; handed over, they stay where they are, and the waiting thread goes
//! on serving its other connections instead of waiting.
//!
//! The handed-over script runs on the holder's thread with the waiting connection's own
//! context (its session and reply buffer), which stays put: the waiting task is parked in
//! `Scripts::hand_over` until the holder marks the job done, and never returns before that.

use super::{Engine, EngineGuard, Scripts};
use crate::shard::ShardState;
use futures_util::task::AtomicWaker;
use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{fence, AtomicBool, AtomicUsize, Ordering::*};
use std::sync::Arc;
use std::task::Poll;

/// What a handed-over script does with the engine and every shard.
pub type RunFn<'a> = dyn FnMut(&mut Engine, &mut Vec<&mut ShardState>) + Send + 'a;

/// The most handed-over scripts a holder runs before letting go: its own client waits for
/// them, and commands that need a shard wait for the whole batch.
const MOST_PER_HOLD: usize = 32;

/// How long a handed-over script waits on its thread before it waits as a task.
const SPIN: std::time::Duration = std::time::Duration::from_micros(150);

/// How often a handed-over script checks whether the engine's holder turned busy (and it
/// should be answered -BUSY rather than wait).
const BUSY_POLL: std::time::Duration = std::time::Duration::from_millis(20);

struct Job {
    /// Followed only by the engine's holder, while `hand_over` keeps it alive.
    run: *mut RunFn<'static>,
    done: AtomicBool,
    waker: AtomicWaker,
}

// SAFETY: `run` is followed by one thread at a time (the engine's holder, who took the job out
// of the queue), and the closure behind it is `Send`.
unsafe impl Send for Job {}
unsafe impl Sync for Job {}

/// Scripts waiting for the engine's holder to run them.
#[derive(Default)]
pub struct Queue {
    jobs: parking_lot::Mutex<VecDeque<Arc<Job>>>,
    /// `jobs`' length, read without the lock.
    len: AtomicUsize,
}

impl Queue {
    fn push(&self, job: Arc<Job>) {
        self.jobs.lock().push_back(job);
        self.len.fetch_add(1, SeqCst);
        // Pairs with `after_release`: either the pusher's next try finds the engine free, or
        // the holder letting go sees this job.
        fence(SeqCst);
    }

    fn pop(&self) -> Option<Arc<Job>> {
        if self.len.load(Relaxed) == 0 {
            return None;
        }
        let job = self.jobs.lock().pop_front()?;
        self.len.fetch_sub(1, SeqCst);
        Some(job)
    }

    /// Takes `job` back if no holder has taken it yet.
    fn withdraw(&self, job: &Arc<Job>) -> bool {
        let mut jobs = self.jobs.lock();
        let Some(i) = jobs.iter().position(|j| Arc::ptr_eq(j, job)) else { return false };
        jobs.remove(i);
        self.len.fetch_sub(1, SeqCst);
        true
    }

    /// After the engine is let go: a job handed over since the holder last looked is woken to
    /// take the engine itself.
    pub(super) fn after_release(&self) {
        fence(SeqCst);
        if self.len.load(SeqCst) > 0 {
            if let Some(job) = self.jobs.lock().front() {
                job.waker.wake();
            }
        }
    }
}

/// How a handed-over script ended.
pub enum Handed<'a> {
    /// The engine's holder ran it.
    Ran,
    /// The holder is past `busy-reply-threshold`: the script was taken back unrun.
    Busy(&'static str),
    /// The engine came free first: the script was taken back, to run under this guard.
    Held(EngineGuard<'a>),
}

/// Keeps a job's closure alive until no holder can be running it.
struct Settle<'a> {
    queue: &'a Queue,
    job: &'a Arc<Job>,
    settled: bool,
}

impl Drop for Settle<'_> {
    fn drop(&mut self) {
        // A dropped wait (its connection torn down) must not free the closure under a holder
        // that is running it.
        if !self.settled && !self.queue.withdraw(self.job) {
            while !self.job.done.load(Acquire) {
                std::thread::yield_now();
            }
        }
    }
}

impl Scripts {
    /// Hands `run` to whoever holds the engine, to run before they let it go, and waits.
    pub async fn hand_over<'s>(&'s self, run: &mut RunFn<'_>) -> Handed<'s> {
        let run: *mut RunFn<'_> = run;
        // SAFETY: only the lifetime is erased. The closure is followed only while the job is
        // queued or running, and this function returns (or its `Settle` drops) only once it
        // is neither.
        let run: *mut RunFn<'static> = unsafe { std::mem::transmute(run) };
        let job = Arc::new(Job { run, done: AtomicBool::new(false), waker: AtomicWaker::new() });
        self.handed.push(job.clone());
        let mut settle = Settle { queue: &self.handed, job: &job, settled: false };
        // The holder runs it within microseconds, mostly: waiting on this thread costs less
        // than parking the task, which the holder's thread would have to wake (and would then
        // run, pulling this connection over to it). Yielding leaves the core to the others.
        let until = std::time::Instant::now() + SPIN;
        let outcome = loop {
            if let Some(outcome) = self.settled(&job) {
                break outcome;
            }
            if std::time::Instant::now() >= until {
                break self.wait_handed(&job).await;
            }
            std::thread::yield_now();
        };
        settle.settled = true;
        outcome
    }

    /// How a handed-over job stands: run, or taken back with the engine (which came free
    /// without its holder running it), or None while it waits.
    fn settled(&self, job: &Arc<Job>) -> Option<Handed<'_>> {
        if job.done.load(Acquire) {
            return Some(Handed::Ran);
        }
        let engine = self.engine_if_free()?;
        if self.handed.withdraw(job) {
            return Some(Handed::Held(engine));
        }
        // Out of the queue with the engine free: its holder ran it and let go.
        debug_assert!(job.done.load(Acquire));
        Some(Handed::Ran)
    }

    /// Waits for a handed-over job as a task, woken when it has run or the engine is let go,
    /// and every `BUSY_POLL` to see whether the holder turned busy.
    async fn wait_handed(&self, job: &Arc<Job>) -> Handed<'_> {
        let poll = tokio::time::sleep(BUSY_POLL);
        tokio::pin!(poll);
        std::future::poll_fn(|cx| {
            job.waker.register(cx.waker());
            if let Some(outcome) = self.settled(job) {
                return Poll::Ready(outcome);
            }
            if let Some(busy) = self.watch.busy() {
                if self.handed.withdraw(job) {
                    return Poll::Ready(Handed::Busy(busy));
                }
            }
            while poll.as_mut().poll(cx).is_ready() {
                poll.as_mut().reset(tokio::time::Instant::now() + BUSY_POLL);
            }
            Poll::Pending
        })
        .await
    }

    /// Runs scripts handed over to the engine's holder (`engine` is held, `states` are every
    /// shard), up to a batch.
    pub fn run_handed(&self, engine: &mut Engine, states: &mut Vec<&mut ShardState>) {
        for _ in 0..MOST_PER_HOLD {
            let Some(job) = self.handed.pop() else { return };
            // SAFETY: taken out of the queue, the job is this thread's alone until it is marked
            // done; its waiter keeps the closure alive until then (see `hand_over`).
            let run = unsafe { &mut *job.run };
            let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(engine, states)));
            job.done.store(true, Release);
            job.waker.wake();
            if let Err(panic) = ran {
                std::panic::resume_unwind(panic);
            }
        }
    }
}
