//! The change stream: one deterministic record per write, describing its effect as a command
//! that reproduces it on replay (`SET k v PXAT <abs>` rather than `EX 10`). The write-ahead
//! log, replicas and slot migration consume it; until they exist a sink may be switched on
//! for tests.

use bytes::Bytes;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub db: usize,
    pub argv: Vec<Bytes>,
}

impl Change {
    pub fn args_str(&self) -> Vec<String> {
        self.argv.iter().map(|a| String::from_utf8_lossy(a).into_owned()).collect()
    }
}

#[derive(Default)]
pub struct ChangeLog {
    enabled: bool,
    records: Vec<Change>,
    /// Writes applied since start (Redis's `dirty` counter), counted even with no consumer.
    pub dirty: u64,
}

impl ChangeLog {
    pub fn set_enabled(&mut self, on: bool) {
        self.enabled = on;
    }

    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// Records one write. The closure builds the record only when somebody consumes it.
    #[inline]
    pub fn emit(&mut self, db: usize, argv: impl FnOnce() -> Vec<Bytes>) {
        self.dirty += 1;
        if self.enabled {
            self.records.push(Change { db, argv: argv() });
        }
    }

    pub fn drain(&mut self) -> Vec<Change> {
        std::mem::take(&mut self.records)
    }
}

/// Builds an argv from byte-like pieces.
#[macro_export]
macro_rules! argv {
    ($($a:expr),* $(,)?) => {
        vec![$(::bytes::Bytes::copy_from_slice(AsRef::<[u8]>::as_ref(&$a))),*]
    };
}
