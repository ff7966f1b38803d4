//! MONITOR: clients that watch every command the node runs, as Redis prints them
//! (`+1700000000.123456 [0 127.0.0.1:50000] "SET" "k" "v"`). Secrets are redacted, and admin
//! commands are not shown, as in Redis.
//!
//! A monitor gets its lines through an outbox, as a subscriber gets messages: the node never
//! waits for it, and one that falls behind past the pubsub output-buffer limit is cut off.
//! Connections check `active` (one relaxed load) before they format anything.

use crate::cmd::table::CommandSpec;
use crate::pubsub::Outbox;
use bytes::Bytes;
use shoal_proto::Request;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, RwLock};

#[derive(Default)]
pub struct Monitors {
    count: AtomicUsize,
    outboxes: RwLock<Vec<Arc<Outbox>>>,
}

impl Monitors {
    /// Whether anyone is watching.
    #[inline]
    pub fn active(&self) -> bool {
        self.count.load(Relaxed) > 0
    }

    pub fn add(&self, outbox: Arc<Outbox>) {
        let mut all = self.outboxes.write().expect("monitor lock");
        all.push(outbox);
        self.count.store(all.len(), Relaxed);
    }

    pub fn remove(&self, client: u64) {
        let mut all = self.outboxes.write().expect("monitor lock");
        all.retain(|o| o.client.id != client);
        self.count.store(all.len(), Relaxed);
    }

    /// Shows a command run by `source` (`127.0.0.1:50000`, `lua`) in database `db`.
    pub fn feed(&self, db: usize, source: &str, spec: &CommandSpec, req: &Request) {
        let line = Bytes::from(format_line(crate::util::now_us(), db, source, spec, req));
        for o in self.outboxes.read().expect("monitor lock").iter() {
            o.push(&line);
        }
    }
}

/// One MONITOR line: the time in seconds with microseconds, the database and source, and the
/// arguments quoted as Redis's `sdscatrepr` quotes them.
fn format_line(now_us: u64, db: usize, source: &str, spec: &CommandSpec, req: &Request) -> Vec<u8> {
    let mut line = format!("+{}.{:06} [{db} {source}]", now_us / 1_000_000, now_us % 1_000_000).into_bytes();
    for arg in crate::cmd::redact::shown_args(spec, req) {
        line.extend_from_slice(b" \"");
        for &b in arg {
            match b {
                b'\\' => line.extend_from_slice(b"\\\\"),
                b'"' => line.extend_from_slice(b"\\\""),
                b'\n' => line.extend_from_slice(b"\\n"),
                b'\r' => line.extend_from_slice(b"\\r"),
                b'\t' => line.extend_from_slice(b"\\t"),
                0x07 => line.extend_from_slice(b"\\a"),
                0x08 => line.extend_from_slice(b"\\b"),
                0x20..=0x7e => line.push(b),
                _ => line.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
            }
        }
        line.push(b'"');
    }
    line.extend_from_slice(b"\r\n");
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::table::table;

    #[test]
    fn lines_quote_as_redis_does() {
        let req = Request::from_args([&b"GET"[..], b"a \"b\"\x01\n\xff"].map(Bytes::copy_from_slice));
        let line = format_line(1_700_000_000_000_042, 3, "127.0.0.1:5000", table().lookup(b"get").unwrap(), &req);
        assert_eq!(line, b"+1700000000.000042 [3 127.0.0.1:5000] \"GET\" \"a \\\"b\\\"\\x01\\n\\xff\"\r\n".to_vec());
    }
}
