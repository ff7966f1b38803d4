//! Counters a shard keeps for itself, without atomics; the gateway sums them on demand for
//! INFO and /metrics.

/// Upper bounds (microseconds) of the command latency histogram buckets.
pub const LATENCY_BUCKETS_US: [u64; 16] =
    [1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 50_000, 100_000, 1_000_000];

/// The code errorstats counts an error reply under, from its text as written after the `-`:
/// what comes before the first space (or line break, which is written as one) within the 32
/// bytes Redis's `afterErrorReply` looks at, or ERR.
pub fn error_code(text: &[u8]) -> std::borrow::Cow<'_, str> {
    let window = &text[..text.len().min(31)];
    match window.iter().position(|&c| matches!(c, b' ' | b'\r' | b'\n')) {
        Some(end) => String::from_utf8_lossy(&text[..end]),
        None => "ERR".into(),
    }
}

/// Adds `n` errors of `code` to errorstats' counts, which are bounded like Redis's (128
/// codes): past that, new codes are dropped.
pub fn count_error(errors: &mut Vec<(String, u64)>, code: &str, n: u64) {
    match errors.iter().position(|(c, _)| c == code) {
        Some(i) => errors[i].1 += n,
        None if errors.len() < 128 => errors.push((code.to_string(), n)),
        None => {}
    }
}

#[derive(Clone, Default, Debug)]
pub struct CommandStat {
    pub calls: u64,
    /// Total time in nanoseconds (INFO reports microseconds).
    pub nanos: u64,
    pub rejected: u64,
    pub failed: u64,
}

/// Memcached's hit and miss counters (its `stats` fields of the same names).
#[derive(Clone, Copy, Debug)]
pub enum McStat {
    GetHits,
    GetMisses,
    DeleteHits,
    DeleteMisses,
    IncrHits,
    IncrMisses,
    DecrHits,
    DecrMisses,
    CasHits,
    CasMisses,
    CasBadval,
    TouchHits,
    TouchMisses,
}

/// The names of the `McStat` counters, in order.
pub const MC_STAT_NAMES: [&str; 13] = [
    "get_hits",
    "get_misses",
    "delete_hits",
    "delete_misses",
    "incr_hits",
    "incr_misses",
    "decr_hits",
    "decr_misses",
    "cas_hits",
    "cas_misses",
    "cas_badval",
    "touch_hits",
    "touch_misses",
];

#[derive(Clone, Debug)]
pub struct ShardStats {
    pub keyspace_hits: u64,
    pub keyspace_misses: u64,
    pub expired_keys: u64,
    /// Keys removed to get under maxmemory.
    pub evicted_keys: u64,
    pub commands: Vec<CommandStat>,
    /// Error replies by their code (`ERR`, `WRONGTYPE`, ...).
    pub errors: Vec<(String, u64)>,
    /// Cumulative-by-bucket latency counts (last slot is +Inf) and the sum in µs.
    pub latency: [u64; LATENCY_BUCKETS_US.len() + 1],
    pub latency_sum_ns: u64,
    /// Memcached's counters, by `McStat`.
    pub mc: [u64; MC_STAT_NAMES.len()],
}

impl ShardStats {
    pub fn new(commands: usize) -> Self {
        ShardStats {
            keyspace_hits: 0,
            keyspace_misses: 0,
            expired_keys: 0,
            evicted_keys: 0,
            commands: vec![CommandStat::default(); commands],
            errors: Vec::new(),
            latency: [0; LATENCY_BUCKETS_US.len() + 1],
            latency_sum_ns: 0,
            mc: [0; MC_STAT_NAMES.len()],
        }
    }

    #[inline]
    pub fn record(&mut self, cmd: usize, nanos: u64, failed: bool) {
        let c = &mut self.commands[cmd];
        c.calls += 1;
        c.nanos += nanos;
        c.failed += failed as u64;
        let usec = nanos / 1000;
        let b = LATENCY_BUCKETS_US.iter().position(|&ub| usec <= ub).unwrap_or(LATENCY_BUCKETS_US.len());
        self.latency[b] += 1;
        self.latency_sum_ns += nanos;
    }

    pub fn record_error(&mut self, code: &str) {
        count_error(&mut self.errors, code, 1);
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &ShardStats) {
        self.keyspace_hits += other.keyspace_hits;
        self.keyspace_misses += other.keyspace_misses;
        self.expired_keys += other.expired_keys;
        self.evicted_keys += other.evicted_keys;
        if self.commands.len() < other.commands.len() {
            self.commands.resize(other.commands.len(), CommandStat::default());
        }
        for (a, b) in self.commands.iter_mut().zip(&other.commands) {
            a.calls += b.calls;
            a.nanos += b.nanos;
            a.rejected += b.rejected;
            a.failed += b.failed;
        }
        for (code, n) in &other.errors {
            count_error(&mut self.errors, code, *n);
        }
        for (a, b) in self.latency.iter_mut().zip(other.latency.iter()) {
            *a += b;
        }
        self.latency_sum_ns += other.latency_sum_ns;
        for (a, b) in self.mc.iter_mut().zip(other.mc.iter()) {
            *a += b;
        }
    }

    /// CONFIG RESETSTAT.
    pub fn reset(&mut self) {
        *self = ShardStats::new(self.commands.len());
    }
}
