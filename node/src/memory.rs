//! How much memory the node uses against its `maxmemory`, and which eviction policy applies.
//!
//! `used_memory` is what the allocator (jemalloc) has handed out, as in Redis: it includes
//! keys, values, connection buffers and every table, so it tracks the process's RSS rather than
//! an estimate of the data. Reading it means refreshing jemalloc's statistics (an `epoch`
//! advance, tens of microseconds), too dear for every write, so a sampler thread refreshes it
//! every few milliseconds while a limit is set. Between samples, shards that evict subtract
//! what they freed (`note_freed`), so several shards evicting at once do not each free the
//! whole excess.

use std::sync::atomic::AtomicU64;
use std::sync::atomic::AtomicU8;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Weak};
use std::time::Duration;

/// How often the sampler refreshes `used` while a limit is set, and when none is.
const SAMPLE_LIMITED: Duration = Duration::from_millis(5);
const SAMPLE_UNLIMITED: Duration = Duration::from_millis(100);

/// Redis's OOM reply to a command flagged denyoom.
pub const OOM_ERROR: &str = "OOM command not allowed when used memory > 'maxmemory'.";

/// What happens when a write would go over `maxmemory`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Policy {
    /// Writes fail with -OOM; nothing is evicted.
    NoEviction,
    /// Shoal's cache policy: evict the key least likely to be asked for again, judged by a
    /// frequency sketch that remembers keys after they are gone, with recency as tie-break.
    Cache,
    AllKeysLru,
    AllKeysLfu,
    AllKeysRandom,
    VolatileLru,
    VolatileLfu,
    VolatileRandom,
    VolatileTtl,
}

impl Policy {
    pub const ALL: [Policy; 9] = [
        Policy::VolatileLru,
        Policy::VolatileLfu,
        Policy::VolatileRandom,
        Policy::VolatileTtl,
        Policy::AllKeysLru,
        Policy::AllKeysLfu,
        Policy::AllKeysRandom,
        Policy::NoEviction,
        Policy::Cache,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Policy::NoEviction => "noeviction",
            Policy::Cache => "cache",
            Policy::AllKeysLru => "allkeys-lru",
            Policy::AllKeysLfu => "allkeys-lfu",
            Policy::AllKeysRandom => "allkeys-random",
            Policy::VolatileLru => "volatile-lru",
            Policy::VolatileLfu => "volatile-lfu",
            Policy::VolatileRandom => "volatile-random",
            Policy::VolatileTtl => "volatile-ttl",
        }
    }

    pub fn parse(name: &str) -> Option<Policy> {
        Policy::ALL.into_iter().find(|p| p.name().eq_ignore_ascii_case(name))
    }

    /// The names CONFIG SET accepts, for its error message.
    pub fn names() -> String {
        Policy::ALL.iter().map(|p| p.name()).collect::<Vec<_>>().join(", ")
    }

    /// Keys' access fields hold Redis's LFU counter instead of an LRU clock.
    pub fn lfu(self) -> bool {
        matches!(self, Policy::AllKeysLfu | Policy::VolatileLfu)
    }

    /// Only keys with a TTL may be evicted.
    pub fn volatile(self) -> bool {
        matches!(self, Policy::VolatileLru | Policy::VolatileLfu | Policy::VolatileRandom | Policy::VolatileTtl)
    }

    fn from_u8(v: u8) -> Policy {
        Policy::ALL.into_iter().find(|p| *p as u8 == v).unwrap_or(Policy::NoEviction)
    }
}

pub struct Memory {
    maxmemory: AtomicU64,
    policy: AtomicU8,
    /// Keys sampled per database to choose a victim (maxmemory-samples).
    samples: AtomicU8,
    /// Allocated bytes at the last sample.
    used: AtomicU64,
    /// Bytes evictions freed since the last sample (an estimate from the values' sizes).
    freed: AtomicU64,
    /// Bytes each shard's writes may have added since the last sample (their arguments'
    /// size), one counter per shard on its own cache line so writers do not contend.
    added: Vec<Padded>,
    peak: AtomicU64,
    /// Denyoom commands refused because memory was full.
    pub oom_rejections: AtomicU64,
    /// The sampler thread, woken when the limit changes so it samples at its new rate.
    sampler: std::sync::OnceLock<std::thread::Thread>,
    /// Keys each shard could evict under the current policy, as of its last tick: a command
    /// whose own shards have nothing left need not fail while other shards still do.
    evictable: Vec<AtomicU64>,
}

#[repr(align(64))]
#[derive(Default)]
struct Padded(AtomicU64);

/// Allocator figures at one instant.
#[derive(Clone, Copy, Debug, Default)]
pub struct AllocatorStats {
    pub allocated: u64,
    pub active: u64,
    pub resident: u64,
}

pub fn allocator_stats() -> AllocatorStats {
    use tikv_jemalloc_ctl::{epoch, stats};
    let _ = epoch::advance();
    AllocatorStats {
        allocated: stats::allocated::read().unwrap_or(0) as u64,
        active: stats::active::read().unwrap_or(0) as u64,
        resident: stats::resident::read().unwrap_or(0) as u64,
    }
}

impl Memory {
    pub fn new(maxmemory: u64, policy: Policy, shards: usize) -> Arc<Memory> {
        let m = Arc::new(Memory {
            maxmemory: AtomicU64::new(maxmemory),
            policy: AtomicU8::new(policy as u8),
            samples: AtomicU8::new(5),
            used: AtomicU64::new(0),
            freed: AtomicU64::new(0),
            added: (0..shards).map(|_| Padded::default()).collect(),
            peak: AtomicU64::new(0),
            oom_rejections: AtomicU64::new(0),
            evictable: (0..shards).map(|_| AtomicU64::new(0)).collect(),
            sampler: std::sync::OnceLock::new(),
        });
        m.sample();
        m
    }

    /// Starts the thread that keeps `used` current; it ends when the `Memory` is dropped.
    pub fn start_sampler(self: &Arc<Memory>) {
        let weak: Weak<Memory> = Arc::downgrade(self);
        let spawned = std::thread::Builder::new().name("shoal-memory".into()).spawn(move || loop {
            let Some(m) = weak.upgrade() else { return };
            m.sample();
            let every = if m.maxmemory() != 0 { SAMPLE_LIMITED } else { SAMPLE_UNLIMITED };
            drop(m);
            std::thread::park_timeout(every);
        });
        match spawned {
            Ok(handle) => {
                let _ = self.sampler.set(handle.thread().clone());
            }
            Err(e) => tracing::error!(error = %e, "cannot start the memory sampler; maxmemory is checked only by INFO"),
        }
    }

    /// Refreshes the allocator figures and returns them.
    pub fn sample(&self) -> AllocatorStats {
        let s = allocator_stats();
        self.used.store(s.allocated, Relaxed);
        self.freed.store(0, Relaxed);
        for a in &self.added {
            a.0.store(0, Relaxed);
        }
        self.peak.fetch_max(s.allocated, Relaxed);
        s
    }

    #[inline]
    pub fn maxmemory(&self) -> u64 {
        self.maxmemory.load(Relaxed)
    }

    pub fn set_maxmemory(&self, bytes: u64) {
        self.maxmemory.store(bytes, Relaxed);
        self.sample();
        if let Some(t) = self.sampler.get() {
            t.unpark();
        }
    }

    #[inline]
    pub fn policy(&self) -> Policy {
        Policy::from_u8(self.policy.load(Relaxed))
    }

    pub fn set_policy(&self, p: Policy) {
        self.policy.store(p as u8, Relaxed);
    }

    pub fn samples(&self) -> usize {
        self.samples.load(Relaxed) as usize
    }

    pub fn set_samples(&self, n: usize) {
        self.samples.store(n.clamp(1, 64) as u8, Relaxed);
    }

    /// Estimated bytes in use now: the last sample, plus what writes added and less what
    /// evictions freed since.
    #[inline]
    pub fn used(&self) -> u64 {
        let added: u64 = self.added.iter().map(|a| a.0.load(Relaxed)).sum();
        (self.used.load(Relaxed) + added).saturating_sub(self.freed.load(Relaxed))
    }

    /// A write in `shard` is about to add up to `bytes`.
    #[inline]
    pub fn note_added(&self, shard: usize, bytes: u64) {
        if let Some(a) = self.added.get(shard) {
            a.0.fetch_add(bytes, Relaxed);
        }
    }

    pub fn peak(&self) -> u64 {
        self.peak.load(Relaxed)
    }

    /// How far above the limit the node is (0 when under it or unlimited).
    #[inline]
    pub fn excess(&self) -> u64 {
        let max = self.maxmemory();
        if max == 0 {
            return 0;
        }
        self.used().saturating_sub(max)
    }

    #[inline]
    pub fn over_limit(&self) -> bool {
        self.excess() > 0
    }

    /// Whether a denyoom command must be refused before it reaches a shard: over the limit
    /// with nothing to evict by policy. Counts the refusal.
    pub fn refuses_writes(&self) -> bool {
        let refuse = self.over_limit() && self.policy() == Policy::NoEviction;
        if refuse {
            self.oom_rejections.fetch_add(1, Relaxed);
        }
        refuse
    }

    pub fn set_evictable(&self, shard: usize, keys: u64) {
        if let Some(a) = self.evictable.get(shard) {
            a.store(keys, Relaxed);
        }
    }

    /// Whether a shard with `keys` evictable keys holds at least the average of all shards.
    pub fn above_fair_share(&self, keys: u64) -> bool {
        let total: u64 = self.evictable.iter().map(|a| a.load(Relaxed)).sum();
        keys * self.evictable.len() as u64 >= total
    }

    /// A shard's evictable keys against the average of all shards (1.0 when even; 1.0 before
    /// the first counts arrive).
    pub fn share(&self, shard: usize) -> f64 {
        let total: u64 = self.evictable.iter().map(|a| a.load(Relaxed)).sum();
        let mine = self.evictable.get(shard).map_or(0, |a| a.load(Relaxed));
        if total == 0 {
            return 1.0;
        }
        mine as f64 * self.evictable.len() as f64 / total as f64
    }

    /// Whether any shard other than `except` reported keys it could evict.
    pub fn others_can_evict(&self, except: &[usize]) -> bool {
        self.evictable.iter().enumerate().any(|(i, a)| !except.contains(&i) && a.load(Relaxed) > 0)
    }

    pub fn note_freed(&self, bytes: u64) {
        self.freed.fetch_add(bytes, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_parse_by_redis_names() {
        for p in Policy::ALL {
            assert_eq!(Policy::parse(p.name()), Some(p));
            assert_eq!(Policy::from_u8(p as u8), p);
        }
        assert_eq!(Policy::parse("ALLKEYS-LRU"), Some(Policy::AllKeysLru));
        assert_eq!(Policy::parse("lru"), None);
    }

    #[test]
    fn freed_bytes_count_until_the_next_sample() {
        let m = Memory::new(0, Policy::Cache, 1);
        m.used.store(1000, Relaxed);
        assert!(!m.over_limit(), "no limit, never over");
        m.maxmemory.store(600, Relaxed);
        assert_eq!(m.excess(), 400);
        m.note_freed(300);
        assert_eq!(m.excess(), 100, "evictions since the sample count");
        m.note_freed(200);
        assert!(!m.over_limit());
        m.used.store(1000, Relaxed);
        m.freed.store(0, Relaxed);
        assert!(m.over_limit(), "a fresh sample replaces the estimate");
    }
}
