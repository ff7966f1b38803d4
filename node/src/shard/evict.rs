//! Eviction: which key a shard gives up when the node is over `maxmemory`.
//!
//! Redis's policies work as Redis does them: sample `maxmemory-samples` keys per database,
//! keep the best candidates in a small pool across evictions, evict the best (least recently
//! used, least frequently used by Redis's logarithmic counter, soonest to expire, or random).
//!
//! `cache` is the policy we recommend for caches. It ranks keys by a TinyLFU frequency sketch:
//! a count-min sketch of 4-bit counters that counts every read of a key, hits and misses, and
//! halves all counts every 30 x keys reads so old popularity fades. Unlike a counter stored in
//! the entry, the sketch remembers a key after it was evicted and counts reads of keys that
//! are not there, so a popular key that comes back is recognised, and a key read once does
//! not displace keys read often. Recency breaks ties. Measured against Redis's allkeys-lru
//! and allkeys-lfu with `scripts/bench-eviction.sh` (docs/BENCHMARKS.md).

use super::bytes::SmallBytes;
use super::ShardState;
use crate::argv;
use crate::memory::Policy;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::hash::BuildHasher;

/// Candidates kept between evictions (Redis's EVPOOL_SIZE).
const POOL_SIZE: usize = 16;
/// Redis's LFU parameters (lfu-log-factor, lfu-decay-time in minutes, LFU_INIT_VAL).
const LFU_LOG_FACTOR: f64 = 10.0;
const LFU_DECAY_MINUTES: u32 = 1;
pub const LFU_INIT: u32 = 5;

/// What `evict_or_reject` did.
#[derive(Debug, PartialEq, Eq)]
pub enum Admission {
    Evicted(u64),
    /// The newcomer is colder than every candidate: evict it once written.
    Reject,
    /// Nothing in this shard to evict.
    Nothing,
}

struct Candidate {
    /// Higher is evicted first.
    score: u64,
    db: usize,
    key: SmallBytes,
}

pub struct Evictor {
    /// Sorted by ascending score: the next victim is last.
    pool: Vec<Candidate>,
    pub sketch: Sketch,
    pub rng: StdRng,
}

impl Default for Evictor {
    fn default() -> Self {
        Evictor { pool: Vec::new(), sketch: Sketch::default(), rng: StdRng::from_entropy() }
    }
}

impl Evictor {
    fn offer(&mut self, c: Candidate) {
        if self.pool.len() == POOL_SIZE && c.score <= self.pool[0].score {
            return;
        }
        if self.pool.iter().any(|p| p.db == c.db && p.key == c.key) {
            return;
        }
        let at = self.pool.partition_point(|p| p.score <= c.score);
        self.pool.insert(at, c);
        if self.pool.len() > POOL_SIZE {
            self.pool.remove(0);
        }
    }

    /// Forgets the candidates (a policy change makes their scores meaningless).
    pub fn reset_pool(&mut self) {
        self.pool.clear();
    }
}

/// Redis's LFU access field: minutes (16 bits) of the last decrement, then an 8-bit
/// logarithmic counter.
#[inline]
pub fn lfu_stamp(minutes: u32, counter: u32) -> u32 {
    ((minutes & 0xffff) << 8) | counter.min(255)
}

/// The counter after decay for the minutes elapsed since it was last touched (LFUDecrAndReturn).
#[inline]
pub fn lfu_decayed(access: u32, minutes: u32) -> u32 {
    let last = access >> 8;
    let counter = access & 0xff;
    let now = minutes & 0xffff;
    let elapsed = if now >= last { now - last } else { 65535 - last + now };
    counter.saturating_sub(elapsed / LFU_DECAY_MINUTES)
}

/// A read of a key under an LFU policy (updateLFU): decay, then a logarithmic increment.
#[inline]
pub fn lfu_touch(access: u32, minutes: u32, rng: &mut impl Rng) -> u32 {
    let mut counter = lfu_decayed(access, minutes);
    if counter < 255 {
        let base = counter.saturating_sub(LFU_INIT) as f64;
        if rng.gen::<f64>() < 1.0 / (base * LFU_LOG_FACTOR + 1.0) {
            counter += 1;
        }
    }
    lfu_stamp(minutes, counter)
}

/// A count-min sketch of 4-bit counters, four per key, as in Caffeine's FrequencySketch.
pub struct Sketch {
    table: Vec<u64>,
    additions: usize,
    /// Additions after which every counter is halved.
    period: usize,
    hasher: foldhash::fast::FixedState,
}

impl Default for Sketch {
    fn default() -> Self {
        Sketch { table: Vec::new(), additions: 0, period: 0, hasher: foldhash::fast::FixedState::with_seed(0x5eed) }
    }
}

impl Sketch {
    /// Sizes the sketch for about `keys` resident keys: four bytes per key. Resizing forgets
    /// the counts, so it happens only when the key count has doubled.
    pub fn fit(&mut self, keys: usize) {
        let words = (keys / 2).next_power_of_two().max(64);
        if words > self.table.len() {
            self.table = vec![0; words];
            self.additions = 0;
            self.period = 30 * keys.max(128);
        }
    }

    pub fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    /// Word and nibble of the key's counter in row `i`.
    #[inline]
    fn slot(&self, h: u64, i: u32) -> (usize, u32) {
        let mixed = h.wrapping_add(i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17 * i + 7);
        let word = (mixed as usize) & (self.table.len() - 1);
        let nibble = ((mixed >> 58) as u32 & 15) * 4;
        (word, nibble)
    }

    pub fn frequency(&self, h: u64) -> u32 {
        if self.table.is_empty() {
            return 0;
        }
        (0..4)
            .map(|i| {
                let (w, n) = self.slot(h, i);
                ((self.table[w] >> n) & 15) as u32
            })
            .min()
            .unwrap_or(0)
    }

    /// Counts one read of the key with hash `h`.
    pub fn increment(&mut self, h: u64) {
        if self.table.is_empty() {
            return;
        }
        let mut added = false;
        for i in 0..4 {
            let (w, n) = self.slot(h, i);
            if (self.table[w] >> n) & 15 < 15 {
                self.table[w] += 1 << n;
                added = true;
            }
        }
        if added {
            self.additions += 1;
            if self.additions >= self.period {
                self.age();
            }
        }
    }

    /// Halves every counter, so frequencies follow what is popular now.
    fn age(&mut self) {
        for w in self.table.iter_mut() {
            *w = (*w >> 1) & 0x7777_7777_7777_7777;
        }
        self.additions /= 2;
    }
}

impl ShardState {
    /// The score of the key at `id` in `db` under `policy`: higher is evicted sooner.
    fn eviction_score(&self, policy: Policy, db: usize, id: super::dict::EntryId) -> u64 {
        let e = self.dbs[db].dict().entry(id);
        match policy {
            Policy::AllKeysLfu | Policy::VolatileLfu => 255 - lfu_decayed(e.access, self.clock / 60) as u64,
            Policy::Cache => {
                let freq = self.evict.sketch.frequency(self.evict.sketch.hash(e.key())) as u64;
                ((15 - freq) << 32) | self.clock.wrapping_sub(e.access) as u64
            }
            _ => self.clock.wrapping_sub(e.access) as u64,
        }
    }

    /// Evicts one key under `policy`; returns the bytes it is estimated to have freed, or
    /// `None` when this shard has nothing the policy may evict.
    pub fn evict_one(&mut self, policy: Policy) -> Option<u64> {
        let (db, key) = self.pick_victim(policy)?;
        self.evict_key(db, &key)
    }

    /// TinyLFU's admission test, for a write about to create a key while memory is full:
    /// evicts the best victim if the newcomer (of sketch frequency `newcomer_freq`) is read
    /// more often than it, and otherwise keeps the victim and answers `Reject`: the newcomer
    /// is the one to go. Most cache misses are for keys of the long tail that will not be
    /// asked for again; letting each of them push out a warm key is what costs LRU its hits.
    pub fn evict_or_reject(&mut self, newcomer_freq: u32) -> Admission {
        let Some((db, key)) = self.pick_victim(Policy::Cache) else { return Admission::Nothing };
        let victim_freq = self.evict.sketch.frequency(self.evict.sketch.hash(&key));
        if newcomer_freq <= victim_freq {
            if let Some(id) = self.dbs[db].dict().find_no_step(&key) {
                let score = self.eviction_score(Policy::Cache, db, id);
                self.evict.offer(Candidate { score, db, key });
            }
            return Admission::Reject;
        }
        match self.evict_key(db, &key) {
            Some(freed) => Admission::Evicted(freed),
            None => Admission::Nothing,
        }
    }

    /// Evicts `key` from `db`: the change stream, watchers, trackers and notifications hear of
    /// it as of an expiry. Returns the bytes it is estimated to have freed.
    pub fn evict_key(&mut self, db: usize, key: &[u8]) -> Option<u64> {
        let removed = self.dbs[db].remove(key)?;
        // What goes back to the allocator: the key's and value's own allocations. The entry's
        // slot and bucket stay with the table for the next key, so they do not count.
        let freed = (removed.key.heap_size() + removed.value.heap_size()) as u64;
        drop(removed);
        self.stats.evicted_keys += 1;
        self.writer = 0;
        self.changes.emit(db, || argv!["DEL", key]);
        self.touched(db, key);
        self.notify(crate::notify::EVICTED, "evicted", key, db);
        Some(freed)
    }

    fn pick_victim(&mut self, policy: Policy) -> Option<(usize, SmallBytes)> {
        let dbs = self.dbs.len();
        match policy {
            Policy::NoEviction => None,
            // The expiry index is ordered, so the soonest expiry is known exactly.
            Policy::VolatileTtl => (0..dbs)
                .filter_map(|db| self.dbs[db].first_expiring().map(|(at, k)| (at, db, k)))
                .min_by_key(|c| c.0)
                .map(|(_, db, k)| (db, k)),
            Policy::AllKeysRandom | Policy::VolatileRandom => {
                let start = self.evict.rng.gen_range(0..dbs);
                (0..dbs).map(|i| (start + i) % dbs).find_map(|db| {
                    let d = &self.dbs[db];
                    let key = if policy.volatile() {
                        d.random_volatile(&mut self.evict.rng)?
                    } else {
                        d.dict().entry(d.dict().random(&mut self.evict.rng)?).key_owned().clone()
                    };
                    Some((db, key))
                })
            }
            _ => {
                let samples = self.memory.as_ref().map_or(5, |m| m.samples());
                for db in 0..dbs {
                    for _ in 0..samples {
                        let d = &self.dbs[db];
                        let id = if policy.volatile() {
                            let Some(key) = d.random_volatile(&mut self.evict.rng) else { break };
                            d.dict().find_no_step(&key)
                        } else {
                            d.dict().random(&mut self.evict.rng)
                        };
                        let Some(id) = id else { break };
                        let score = self.eviction_score(policy, db, id);
                        let key = self.dbs[db].dict().entry(id).key_owned().clone();
                        self.evict.offer(Candidate { score, db, key });
                    }
                }
                // The pool may hold keys deleted since they were offered.
                while let Some(c) = self.evict.pool.pop() {
                    let d = &self.dbs[c.db];
                    let live = d.dict().find_no_step(&c.key);
                    if live.is_some_and(|id| !policy.volatile() || d.dict().entry(id).expire_at().is_some()) {
                        return Some((c.db, c.key));
                    }
                }
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sketch_counts_and_ages() {
        let mut s = Sketch::default();
        s.fit(1000);
        let (hot, cold) = (s.hash(b"hot"), s.hash(b"cold"));
        for _ in 0..10 {
            s.increment(hot);
        }
        s.increment(cold);
        assert_eq!(s.frequency(hot), 10);
        assert_eq!(s.frequency(cold), 1);
        assert_eq!(s.frequency(s.hash(b"never")), 0);
        for _ in 0..20 {
            s.increment(hot);
        }
        assert_eq!(s.frequency(hot), 15, "counters saturate at 15");
        s.age();
        assert_eq!(s.frequency(hot), 7);
        assert_eq!(s.frequency(cold), 0);
    }

    #[test]
    fn lfu_counter_grows_logarithmically_and_decays() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut a = lfu_stamp(0, LFU_INIT);
        for _ in 0..1000 {
            a = lfu_touch(a, 0, &mut rng);
        }
        let c = lfu_decayed(a, 0);
        assert!((10..40).contains(&c), "1000 reads give a counter of {c}");
        assert_eq!(lfu_decayed(a, 3), c - 3, "one point per minute idle");
        assert_eq!(lfu_decayed(lfu_stamp(65530, 12), 4), 3, "decay across the 16-bit wrap");
    }

    fn shard_with(keys: usize, ttl_every: usize) -> ShardState {
        let mut s = ShardState::new(0, 1, 1);
        for i in 0..keys {
            let at = if ttl_every != 0 && i % ttl_every == 0 { 1_000_000 + i as u64 } else { 0 };
            s.dbs[0].insert(SmallBytes::new(format!("k{i}").as_bytes()), crate::shard::value::Value::Int(1), at);
        }
        s
    }

    #[test]
    fn volatile_policies_spare_keys_without_ttl() {
        for policy in [Policy::VolatileLru, Policy::VolatileLfu, Policy::VolatileRandom, Policy::VolatileTtl] {
            let mut s = shard_with(100, 10);
            while s.evict_one(policy).is_some() {}
            assert_eq!(s.dbs[0].len(), 90, "{policy:?} evicts exactly the 10 keys with a TTL");
            assert_eq!(s.stats.evicted_keys, 10);
        }
        let mut s = shard_with(100, 0);
        assert_eq!(s.evict_one(Policy::NoEviction), None);
        while s.evict_one(Policy::AllKeysLru).is_some() {}
        assert_eq!(s.dbs[0].len(), 0);
    }

    #[test]
    fn volatile_ttl_evicts_the_soonest_expiry_first() {
        let mut s = shard_with(50, 1);
        s.evict_one(Policy::VolatileTtl);
        assert!(s.dbs[0].dict().find_no_step(b"k0").is_none());
    }

    #[test]
    fn cache_policy_keeps_the_keys_read_often() {
        let mut s = shard_with(200, 0);
        s.evict.sketch.fit(200);
        for i in 0..100 {
            let h = s.evict.sketch.hash(format!("k{i}").as_bytes());
            for _ in 0..3 {
                s.evict.sketch.increment(h);
            }
        }
        // Half the cold keys go; sampling may pick a hot key only when no cold one is in sight.
        for _ in 0..50 {
            s.evict_one(Policy::Cache).expect("a victim");
        }
        let hot_left = (0..100).filter(|i| s.dbs[0].dict().find_no_step(format!("k{i}").as_bytes()).is_some()).count();
        assert!(hot_left >= 95, "only {hot_left} of 100 frequently read keys survived");
    }
}
