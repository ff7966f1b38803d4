//! The slow log (Redis's SLOWLOG): the last `slowlog-max-len` commands that ran for at least
//! `slowlog-log-slower-than` microseconds, with their arguments (secrets redacted, long ones
//! cut short), when they ran, and the client that sent them.
//!
//! Every command passes `observe`, which costs one relaxed load when it is fast enough; only
//! a slow command takes the lock.

use crate::cmd::table::{flags, CommandSpec};
use crate::node::ClientHandle;
use bytes::Bytes;
use parking_lot::Mutex;
use shoal_proto::Request;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering::Relaxed};

/// Arguments kept per entry; past this, the last one says how many more there were.
const MAX_ARGS: usize = 32;
/// Bytes kept per argument; past this, the rest is counted.
const MAX_ARG_BYTES: usize = 128;

pub struct Entry {
    pub id: u64,
    pub unix_secs: u64,
    pub micros: u64,
    pub args: Vec<Bytes>,
    pub addr: String,
    pub name: String,
}

pub struct SlowLog {
    /// Microseconds; negative turns the log off, 0 logs every command.
    threshold_us: AtomicI64,
    max_len: AtomicUsize,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Newest first.
    entries: VecDeque<Entry>,
    next_id: u64,
}

impl SlowLog {
    pub fn new(threshold_us: i64, max_len: usize) -> SlowLog {
        SlowLog {
            threshold_us: AtomicI64::new(threshold_us),
            max_len: AtomicUsize::new(max_len),
            inner: Mutex::default(),
        }
    }

    pub fn threshold_us(&self) -> i64 {
        self.threshold_us.load(Relaxed)
    }

    pub fn set_threshold_us(&self, us: i64) {
        self.threshold_us.store(us, Relaxed);
    }

    pub fn max_len(&self) -> usize {
        self.max_len.load(Relaxed)
    }

    pub fn set_max_len(&self, n: usize) {
        self.max_len.store(n, Relaxed);
        self.inner.lock().entries.truncate(n);
    }

    /// Logs the command if it ran for `nanos` or longer than the threshold.
    #[inline]
    pub fn observe(&self, nanos: u64, spec: &CommandSpec, req: &Request, client: Option<&ClientHandle>) {
        let t = self.threshold_us.load(Relaxed);
        if t < 0 || nanos / 1000 < t as u64 || spec.has(flags::SKIP_SLOWLOG) {
            return;
        }
        self.push(nanos / 1000, spec, req, client);
    }

    #[cold]
    fn push(&self, micros: u64, spec: &CommandSpec, req: &Request, client: Option<&ClientHandle>) {
        let max_len = self.max_len();
        let argc = req.len();
        let mut args = Vec::with_capacity(argc.min(MAX_ARGS));
        for (i, a) in crate::cmd::redact::shown_args(spec, req).enumerate() {
            if i == MAX_ARGS - 1 && argc > MAX_ARGS {
                args.push(Bytes::from(format!("... ({} more arguments)", argc - i)));
                break;
            }
            args.push(if a.len() > MAX_ARG_BYTES {
                let mut cut = a[..MAX_ARG_BYTES].to_vec();
                cut.extend_from_slice(format!("... ({} more bytes)", a.len() - MAX_ARG_BYTES).as_bytes());
                Bytes::from(cut)
            } else {
                Bytes::copy_from_slice(a)
            });
        }
        let (addr, name) = match client {
            Some(c) => (c.addr.to_string(), c.name.lock().map(|n| n.clone()).unwrap_or_default()),
            None => (String::new(), String::new()),
        };
        let unix_secs = crate::util::now_ms() / 1000;
        let mut inner = self.inner.lock();
        let id = inner.next_id;
        inner.next_id += 1;
        inner.entries.push_front(Entry { id, unix_secs, micros, args, addr, name });
        inner.entries.truncate(max_len);
    }

    /// The newest `count` entries (all of them for None), newest first.
    pub fn with_newest<R>(&self, count: Option<usize>, f: impl FnOnce(&mut dyn Iterator<Item = &Entry>) -> R) -> R {
        let inner = self.inner.lock();
        let n = count.unwrap_or(usize::MAX).min(inner.entries.len());
        f(&mut inner.entries.iter().take(n))
    }

    pub fn len(&self) -> usize {
        self.inner.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn reset(&self) {
        self.inner.lock().entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::table::table;

    fn req(args: &[&str]) -> Request {
        Request::from_args(args.iter().map(|a| Bytes::copy_from_slice(a.as_bytes())))
    }

    #[test]
    fn long_commands_are_cut_and_the_log_keeps_its_length() {
        let log = SlowLog::new(0, 2);
        let set = table().lookup(b"set").unwrap();
        let long = "x".repeat(200);
        log.observe(5_000, set, &req(&["SET", "k", &long]), None);
        let many: Vec<String> = (0..40).map(|i| i.to_string()).collect();
        let mut args = vec!["DEL"];
        args.extend(many.iter().map(String::as_str));
        log.observe(7_000, table().lookup(b"del").unwrap(), &req(&args), None);
        log.observe(9_000, set, &req(&["SET", "a", "b"]), None);
        assert_eq!(log.len(), 2, "only the newest two are kept");
        log.with_newest(None, |it| {
            let e: Vec<&Entry> = it.collect();
            assert_eq!((e[0].id, e[0].micros), (2, 9));
            assert_eq!(e[1].args.len(), 32);
            assert_eq!(e[1].args[31], Bytes::from("... (10 more arguments)"));
        });
        log.set_threshold_us(10);
        log.observe(9_999, set, &req(&["SET", "a", "b"]), None);
        assert_eq!(log.with_newest(Some(1), |it| it.next().map(|e| e.id)), Some(2), "faster than the threshold");
        let log = SlowLog::new(0, 10);
        log.observe(1, set, &req(&["SET", "k", &long]), None);
        log.with_newest(None, |it| {
            let arg = &it.next().unwrap().args[2];
            assert_eq!(&arg[..], format!("{}... (72 more bytes)", "x".repeat(128)).as_bytes());
        });
    }
}
