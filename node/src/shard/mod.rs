//! Shard actors. Each owns the keys of its hash slots in every database. Work arrives as
//! messages:
//!
//! - `Batch`: the single-shard commands one pipeline read produced, answered with their
//!   replies already encoded, in order.
//! - `Lease`: lends the whole shard to a multi-shard command: the actor hands over its slot,
//!   held. The borrower asks every shard it needs at once, in a global order (see
//!   `Node::lease`, so two borrowers cannot deadlock), runs, and dropping the `Lease` releases
//!   the slot. The shard runs nothing else meanwhile, which is what makes MSET, RENAME or
//!   FLUSHALL atomic across shards; its actor goes on to its next message, which waits for
//!   the slot (a batch gives up, -BUSY, once a script holding it passes the threshold).
//!   Shards that are all idle are leased without a message at all ([`Shard::try_lease`]).
//! - `Run`: a closure over the state (DBSIZE, KEYS, INFO and other gateway broadcasts).
//! - `Tick`: active expiry, incremental rehash, table shrinking.
//!
//! Only a lease waits for the slot whatever holds it. A batch, a job or a tick behind a
//! script that turned busy gives up (a job then waits off the mailbox), so nothing keeps the
//! batches queued after them from their -BUSY.
//!
//! Mailboxes are unbounded in ractor; they stay bounded because a connection never has more
//! than one message in flight per shard (it awaits its replies before it reads again), so a
//! shard's queue is at most one message per connection plus its ticks.
//!
//! A `Batch` need not travel: while the shard is idle its state rests in a [`StateSlot`], and
//! a connection that finds the slot free runs its batch there, on its own thread
//! ([`Shard::run_here`]). Two task wake-ups per request (to the actor and back) cost more
//! than a command, and on a machine whose other cores are busy (the client, other services)
//! they turn into context switches. A lease of idle shards is taken the same way
//! ([`Shard::try_lease`]); a script leases every shard for as long as it runs. A batch's
//! slot is never held across an await, and an actor waits for its slot without blocking its
//! thread (see [`slot`]); a lease holds the slot, so leased shards never run inline.

pub mod blocked;
pub mod bytes;
pub mod change;
pub mod db;
pub mod dict;
pub mod evict;
pub mod item_meta;
pub mod slot;
pub mod stats;
pub mod types;
pub mod value;
pub mod watch;

use crate::argv;
use crate::cmd::exec::{Exec, ExecSettings};
use crate::cmd::table::{CommandSpec, Handler};
use crate::slots::SlotRoute;
use crate::util::now_ms;
use ::bytes::BytesMut;
use bytes::SmallBytes;
use change::ChangeLog;
use db::Db;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use shoal_proto::{reply, Protocol, Request};
use stats::ShardStats;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use tracing::error;

/// How often the tick runs (Redis's default `hz 10`).
pub const TICK: Duration = Duration::from_millis(100);
/// Longest a tick may spend before yielding to queued commands.
const TICK_BUDGET: Duration = Duration::from_millis(1);
/// Longest a BGSAVE step may hold the shard: a command waits at most this long behind it.
const SNAPSHOT_BUDGET: Duration = Duration::from_millis(2);

pub struct ShardState {
    pub id: usize,
    pub dbs: Vec<Db>,
    pub stats: ShardStats,
    pub changes: ChangeLog,
    /// Access clock in seconds since start, stamped on entries when they are read.
    pub clock: u32,
    pub active_expire: bool,
    /// Clients blocked on this shard's keys.
    pub blocked: blocked::Blocked,
    /// Keys clients WATCH.
    pub watches: watch::Watches,
    /// Where keyspace notifications go (absent in unit tests).
    pub notifier: Option<Arc<crate::notify::Notifier>>,
    /// Clients caching keys (CLIENT TRACKING), told when keys change.
    pub tracking: Option<Arc<crate::tracking::Tracking>>,
    /// The client whose command is running, for tracking's NOLOOP (0: none).
    pub writer: u64,
    /// The node's memory use and limit (absent in unit tests: no limit).
    pub memory: Option<Arc<crate::memory::Memory>>,
    /// The eviction policy the access fields are kept for (LRU clock or LFU counter).
    pub policy: crate::memory::Policy,
    pub evict: evict::Evictor,
    /// A BGSAVE under way: where this shard sends its records.
    pub snapshot: Option<crate::persist::snapshot::ShardRun>,
    /// Where slow commands are logged (absent in unit tests).
    pub slowlog: Option<Arc<crate::slowlog::SlowLog>>,
    /// The last CAS value handed out to a Memcached client.
    pub cas_clock: u64,
    start: Instant,
}

impl ShardState {
    pub fn new(id: usize, databases: usize, commands: usize) -> ShardState {
        let seed: u64 = rand::random();
        ShardState {
            id,
            dbs: (0..databases).map(|i| Db::new(seed ^ i as u64)).collect(),
            stats: ShardStats::new(commands),
            changes: ChangeLog::default(),
            clock: 0,
            active_expire: true,
            blocked: blocked::Blocked::default(),
            watches: watch::Watches::default(),
            notifier: None,
            tracking: None,
            writer: 0,
            memory: None,
            policy: crate::memory::Policy::NoEviction,
            evict: evict::Evictor::default(),
            snapshot: None,
            slowlog: None,
            cas_clock: 0,
            start: Instant::now(),
        }
    }

    fn update_clock(&mut self) {
        self.set_clock(self.start.elapsed().as_secs() as u32);
    }

    /// Sets the access clock, which new keys and reads are stamped with.
    pub fn set_clock(&mut self, secs: u32) {
        self.clock = secs;
        // Under an LFU policy a new key starts with Redis's initial counter instead.
        let stamp = if self.policy.lfu() { evict::lfu_stamp(secs / 60, evict::LFU_INIT) } else { secs };
        for db in self.dbs.iter_mut() {
            db.clock = stamp;
        }
    }

    /// Advances a running BGSAVE within `budget`: walks the databases' slabs and hands the
    /// records (including those written by copy-before-write) to the writer. True while there
    /// is more to do.
    fn snapshot_step(&mut self, budget: Duration) -> bool {
        use crate::persist::snapshot::{Chunk, MAX_PENDING};
        use std::sync::atomic::Ordering::Relaxed;
        let Some(run) = self.snapshot.as_ref() else { return false };
        if run.abort.load(Relaxed) {
            for db in self.dbs.iter_mut() {
                db.snap = None;
            }
            self.snapshot = None;
            return false;
        }
        if run.pending.load(Relaxed) > MAX_PENDING {
            return true;
        }
        let started = Instant::now();
        for db in self.dbs.iter_mut() {
            if db.snap.is_none() {
                continue;
            }
            loop {
                let finished = db.snapshot_step(512);
                let s = db.snap.as_deref_mut().expect("snapshot under way");
                if (finished || s.out.len() >= 64 << 10) && !s.out.is_empty() {
                    let bytes = std::mem::take(&mut s.out);
                    let keys = std::mem::take(&mut s.keys);
                    run.pending.fetch_add(bytes.len() as u64, Relaxed);
                    let _ = run.tx.send(Chunk::Records { db: s.index, bytes, keys });
                }
                if finished {
                    db.snap = None;
                    break;
                }
                if started.elapsed() > budget {
                    return true;
                }
            }
        }
        let _ = run.tx.send(Chunk::Done);
        self.snapshot = None;
        false
    }

    /// Follows a change of eviction policy (CONFIG SET maxmemory-policy).
    #[inline]
    pub fn sync_policy(&mut self, policy: crate::memory::Policy) {
        if self.policy != policy {
            self.policy = policy;
            self.evict.reset_pool();
            self.set_clock(self.clock);
        }
    }

    /// Evicts while the node is over maxmemory, within `budget`, for shards that take no
    /// writes to trigger it themselves. True if it stopped with memory still over the limit
    /// and keys left to evict.
    fn evict_in_background(&mut self, budget: Duration) -> bool {
        let Some(mem) = self.memory.clone() else { return false };
        let policy = mem.policy();
        let keys: usize = self.dbs.iter().map(Db::len).sum();
        if policy == crate::memory::Policy::Cache {
            self.evict.sketch.fit(keys);
        }
        let evictable = match policy {
            crate::memory::Policy::NoEviction => 0,
            p if p.volatile() => self.dbs.iter().map(Db::expires_len).sum(),
            _ => keys,
        };
        mem.set_evictable(self.id, evictable as u64);
        // Only shards holding at least their share evict here, so the keyspace stays even
        // across shards (writes in a shard evict from it; this is for the rest).
        if policy == crate::memory::Policy::NoEviction || !mem.over_limit() || !mem.above_fair_share(evictable as u64) {
            return false;
        }
        self.sync_policy(policy);
        let started = Instant::now();
        let mut n = 0u32;
        while mem.over_limit() {
            let Some(freed) = self.evict_one(policy) else { return false };
            mem.note_freed(freed);
            n += 1;
            if n.is_multiple_of(16) && started.elapsed() > budget {
                return true;
            }
        }
        false
    }

    /// Notes a write to `key` (it changed, was created or deleted): blocked clients waiting
    /// on it are served after the command, and clients watching it will fail their EXEC.
    #[inline]
    pub fn touched(&mut self, db: usize, key: &[u8]) {
        self.blocked.touched(db, key);
        let d = &mut self.dbs[db];
        if !d.items.is_empty() {
            if let Some(id) = d.dict().find_no_step(key) {
                d.items.written(id);
            }
        }
        if let Some(t) = &self.tracking {
            if t.is_active() {
                t.invalidate(key, self.writer);
            }
        }
        if !self.watches.is_empty() {
            let exists = self.dbs[db].dict().find_no_step(key).is_some();
            self.watches.touched(db, key, exists);
        }
    }

    /// Publishes a keyspace notification, if they are on for `class`.
    #[inline]
    pub fn notify(&self, class: u32, event: &str, key: &[u8], db: usize) {
        if let Some(n) = &self.notifier {
            if n.wants(class) {
                n.notify(class, event, key, db);
            }
        }
    }

    /// Whether `key` exists and is logically expired at `now`.
    pub fn is_expired(&self, db: usize, key: &[u8], now: u64) -> bool {
        let d = &self.dbs[db].dict();
        d.find_no_step(key).is_some_and(|id| d.entry(id).expire_at().is_some_and(|t| t <= now))
    }

    /// Before database `db` is emptied (FLUSHDB, FLUSHALL) or, with `replaced_with`, swapped
    /// with another (SWAPDB): Redis's `touchAllWatchedKeysInDb`.
    pub fn touch_all_watched(&mut self, db: usize, replaced_with: Option<usize>, now: u64) {
        if self.watches.is_empty() {
            return;
        }
        for key in self.watches.keys_in(db) {
            let in_emptied = self.dbs[db].dict().find_no_step(&key).is_some();
            let in_replacement = replaced_with.is_some_and(|r| self.dbs[r].dict().find_no_step(&key).is_some());
            if !in_emptied && !in_replacement {
                continue;
            }
            let replacement_expired = replaced_with.is_some_and(|r| self.is_expired(r, &key, now));
            self.watches.decide(db, &key, |expired| {
                if *expired {
                    if !in_replacement {
                        *expired = false;
                        return false;
                    }
                    if replacement_expired {
                        return false;
                    }
                } else if !in_emptied && replacement_expired {
                    *expired = true;
                    return false;
                }
                true
            });
        }
    }

    /// Removes keys whose time has come, within `budget`; true if some remain due.
    pub fn expire_due(&mut self, now: u64, budget: Duration) -> bool {
        let started = Instant::now();
        self.writer = 0;
        let mut n = 0u32;
        for dbi in 0..self.dbs.len() {
            while let Some(key) = self.dbs[dbi].next_due(now) {
                self.dbs[dbi].remove(&key);
                self.stats.expired_keys += 1;
                self.changes.emit(dbi, || argv!["DEL", key]);
                self.touched(dbi, &key);
                self.notify(crate::notify::EXPIRED, "expired", &key, dbi);
                n += 1;
                if n.is_multiple_of(64) && started.elapsed() > budget {
                    return true;
                }
            }
        }
        false
    }

    /// Removes hash fields whose TTL has passed, visiting a bounded number of hashes per call
    /// (round-robin through the hashes that have TTLs).
    pub fn expire_hash_fields(&mut self, now: u64) {
        use std::ops::Bound::{Excluded, Unbounded};
        for dbi in 0..self.dbs.len() {
            if self.dbs[dbi].hash_ttl_keys.is_empty() {
                continue;
            }
            let d = &self.dbs[dbi];
            let from = d.hash_ttl_cursor.clone();
            let mut keys: Vec<bytes::SmallBytes> = match &from {
                Some(c) => d.hash_ttl_keys.range((Excluded(c.clone()), Unbounded)).take(64).cloned().collect(),
                None => d.hash_ttl_keys.iter().take(64).cloned().collect(),
            };
            if keys.is_empty() {
                keys = d.hash_ttl_keys.iter().take(64).cloned().collect();
            }
            self.dbs[dbi].hash_ttl_cursor = keys.last().cloned();
            for key in keys {
                let d = &mut self.dbs[dbi];
                let Some(id) = d.dict().find_no_step(&key) else {
                    d.hash_ttl_keys.remove(&key);
                    continue;
                };
                let value::Value::Hash(h) = &mut d.entry_mut(id).value else {
                    d.hash_ttl_keys.remove(&key);
                    continue;
                };
                let gone = h.purge_expired(now);
                let (empty, still) = (h.is_empty(), h.has_ttls());
                if !still {
                    d.hash_ttl_keys.remove(&key);
                }
                if gone.is_empty() {
                    continue;
                }
                if empty {
                    d.remove(&key);
                }
                self.changes.emit(dbi, || {
                    let mut v = argv!["HDEL", key];
                    v.extend(gone.iter().map(|f| ::bytes::Bytes::copy_from_slice(f)));
                    v
                });
                self.touched(dbi, &key);
                if empty {
                    self.notify(crate::notify::GENERIC, "del", &key, dbi);
                }
            }
        }
    }

    /// Moves rehashes forward and shrinks sparse tables; true if a rehash is unfinished.
    fn maintain_tables(&mut self, budget: Duration) -> bool {
        let started = Instant::now();
        for db in self.dbs.iter_mut() {
            db.shrink_if_needed();
            while db.dict().is_rehashing() {
                db.rehash(100);
                if started.elapsed() > budget {
                    return true;
                }
            }
        }
        false
    }

    /// Runs one command against this shard alone, writing its reply to `out`.
    pub fn execute(
        &mut self,
        route: &SlotRoute,
        job: &mut ExecJob<'_>,
        spec: &'static CommandSpec,
        req: &Request,
    ) -> bool {
        let Handler::Shard(f) = spec.handler else {
            reply::error(job.out, b"ERR command cannot run in a shard");
            return true;
        };
        let mut shards = [self];
        let mut ex = Exec::new(&mut shards, route, job.db, job.proto, job.out, job.now, job.settings);
        let failed = run_guarded(&mut ex, f, req, spec);
        serve_blocked(&mut shards, route, job.now, job.settings);
        failed
    }
}

/// After a command (or a whole EXEC): clients blocked on keys it wrote are served. Redis
/// serves them between commands too, so a pipeline's next command sees the list after the
/// waiter's pop.
#[inline]
pub fn serve_blocked(states: &mut [&mut ShardState], route: &SlotRoute, now: u64, settings: ExecSettings) {
    for st in states.iter_mut() {
        if st.blocked.has_ready() {
            crate::cmd::blocking::serve_ready(st, route, now, settings);
        }
    }
}

/// Runs a handler, turning a panic (a bug, never client input) into an error reply.
pub fn run_guarded(
    ex: &mut Exec<'_, '_>,
    f: crate::cmd::table::ShardFn,
    req: &Request,
    spec: &'static CommandSpec,
) -> bool {
    let mark = ex.out.len();
    let policy = ex.settings.policy;
    for s in ex.shards.iter_mut() {
        s.sync_policy(policy);
    }
    if spec.has(crate::cmd::table::flags::WRITE) {
        if let Some(why) = ex.shards[0].changes.wal().and_then(|w| w.failure()) {
            ex.err(&format!("MISCONF Errors writing to the AOF file: {why}"));
            return true;
        }
    }
    let mut reject = None;
    if spec.has(crate::cmd::table::flags::DENYOOM) {
        match make_room(ex, spec, req) {
            Room::Made => {}
            Room::Refused => {
                ex.oom = crate::cmd::exec::Oom::Refused;
                ex.err(crate::memory::OOM_ERROR);
                return true;
            }
            Room::RejectNewcomer(s, key) => reject = Some((s, key)),
        }
    }
    ex.begin_command(spec, req);
    let client = ex.settings.client;
    for s in ex.shards.iter_mut() {
        s.writer = client;
    }
    let ran = std::panic::catch_unwind(AssertUnwindSafe(|| f(ex, req)));
    if let Some((s, key)) = reject {
        let db = ex.db;
        if let Some(freed) = ex.shards[s].evict_key(db, &key) {
            if let Some(m) = &ex.shards[s].memory {
                m.note_freed(freed);
            }
        }
    }
    match ran {
        Ok(()) => ex.failed,
        Err(_) => {
            error!(command = %spec.full_name, "command handler panicked");
            ex.out.truncate(mark);
            reply::error(ex.out, b"ERR internal error");
            true
        }
    }
}

/// Before a command that may add data (flagged denyoom): when the node is over maxmemory,
/// evicts from the shards at hand until it is not, as Redis's `performEvictions`. Refuses the
/// command when the policy is noeviction or nothing is left to evict anywhere. A long
/// eviction stops after a budget and lets the command run; shards' ticks carry on.
fn make_room(ex: &mut Exec<'_, '_>, spec: &CommandSpec, req: &Request) -> Room {
    use crate::memory::Policy;
    use evict::Admission;
    let Some(mem) = ex.shards[0].memory.as_ref().filter(|m| m.maxmemory() != 0) else {
        return Room::Made;
    };
    // What the command may add: its arguments, plus a table entry.
    let adds = (0..req.len()).map(|i| req.arg(i).len() as u64).sum::<u64>() + 64;
    mem.note_added(ex.shards[0].id, adds);
    if !mem.over_limit() {
        return Room::Made;
    }
    let mem = mem.clone();
    let policy = mem.policy();
    let exempt = ex.oom == crate::cmd::exec::Oom::Exempt;
    let refuse = || {
        if exempt {
            return Room::Made;
        }
        mem.oom_rejections.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Room::Refused
    };
    if policy == Policy::NoEviction {
        return refuse();
    }
    // Under the cache policy a key the command is about to create must earn its place.
    let newcomer = match (policy, spec.keys_of(req).next()) {
        (Policy::Cache, Some(i)) => {
            let key = req.arg(i);
            let s = ex.shard_idx(key);
            let sh = &ex.shards[s];
            sh.dbs[ex.db]
                .dict()
                .find_no_step(key)
                .is_none()
                .then(|| (s, SmallBytes::new(key), sh.evict.sketch.frequency(sh.evict.sketch.hash(key))))
        }
        _ => None,
    };
    // A command frees about what it may add, not the whole excess: shards that write while
    // the node is over the limit would otherwise pay for each other's writes, and whichever
    // runs first in each round would drain. The rest of the excess goes on the ticks of
    // shards that hold more than their share.
    // Scaled up by the shard's share of the evictable keys: a shard that holds more than its
    // share gives up more, which keeps shards even whatever order they run in. Never less
    // than what the command adds, so writes cannot grow an excess while counts are stale.
    let share = ex.shards.iter().map(|s| mem.share(s.id)).sum::<f64>() / ex.shards.len() as f64;
    let share = share.clamp(1.0, 2.0);
    let quota = mem.excess().min((adds as f64 * share) as u64);
    let mut freed_here = 0u64;
    let started = Instant::now();
    let (mut turn, mut dry) = (0usize, 0usize);
    while mem.over_limit() && freed_here < quota {
        let s = turn % ex.shards.len();
        turn += 1;
        let done = match &newcomer {
            Some((_, _, freq)) => ex.shards[s].evict_or_reject(*freq),
            None => ex.shards[s].evict_one(policy).map_or(Admission::Nothing, Admission::Evicted),
        };
        match done {
            Admission::Evicted(freed) => {
                mem.note_freed(freed);
                freed_here += freed;
                dry = 0;
            }
            Admission::Reject => {
                let (s, key, _) = newcomer.expect("only newcomers are rejected");
                return Room::RejectNewcomer(s, key);
            }
            Admission::Nothing => {
                dry += 1;
                if dry >= ex.shards.len() {
                    // Other shards evict on their ticks; refuse only when nobody can.
                    let mine: Vec<usize> = ex.shards.iter().map(|s| s.id).collect();
                    if mem.others_can_evict(&mine) {
                        return Room::Made;
                    }
                    return refuse();
                }
            }
        }
        if turn.is_multiple_of(16) && started.elapsed() > EVICTION_BUDGET {
            break;
        }
    }
    Room::Made
}

/// What `make_room` decided for a command.
enum Room {
    Made,
    /// Over the limit with nothing to evict, or under noeviction: -OOM.
    Refused,
    /// The key the command creates is colder than anything resident: it is evicted right
    /// after the command (index into the exec's shards, key).
    RejectNewcomer(usize, SmallBytes),
}

/// Longest a command waits for evictions before it runs anyway (Redis's eviction tenacity).
const EVICTION_BUDGET: Duration = Duration::from_millis(2);

/// Per-batch inputs of a command.
pub struct ExecJob<'a> {
    pub db: usize,
    pub proto: Protocol,
    pub out: &'a mut BytesMut,
    pub now: u64,
    pub settings: ExecSettings,
}

/// Commands for one shard from one pipeline read, sent back with their replies.
pub struct Batch {
    pub db: usize,
    pub proto: Protocol,
    pub settings: ExecSettings,
    pub cmds: Vec<(&'static CommandSpec, Request)>,
    /// Replies, back to back; `ends[i]` is where reply `i` ends.
    pub out: BytesMut,
    pub ends: Vec<u32>,
    pub reply: Option<oneshot::Sender<Box<Batch>>>,
    /// The connection the commands come from, named in SLOWLOG entries.
    pub client: Option<Arc<crate::node::ClientHandle>>,
}

impl Batch {
    pub fn new(settings: ExecSettings) -> Box<Batch> {
        Box::new(Batch {
            db: 0,
            proto: Protocol::Resp2,
            settings,
            cmds: Vec::new(),
            out: BytesMut::with_capacity(4096),
            ends: Vec::new(),
            reply: None,
            client: None,
        })
    }
}

/// A shard lent to a multi-shard command: its slot, held by the borrower until dropped.
pub struct Lease {
    held: slot::OwnedSlotGuard,
}

impl Lease {
    /// `guard`, which holds `slot` with its state in it, kept held as a lease: records the
    /// shard makes meanwhile belong to the borrower's group (see [`Leases`]).
    fn new(mut guard: SlotGuard<'_>, slot: &Arc<StateSlot>) -> Lease {
        present(&mut guard).changes.set_leased(true);
        Lease { held: guard.into_owned(slot.clone()) }
    }

    /// The leased shard's id.
    pub fn id(&self) -> usize {
        self.held.get().as_ref().expect("a shard's slot holds its state").id
    }

    pub fn state(&mut self) -> &mut ShardState {
        self.held.get_mut().as_deref_mut().expect("a shard's slot holds its state")
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let s = self.state();
        s.changes.flush();
        s.changes.set_leased(false);
    }
}

/// The leases of one multi-shard command. When they go, the records the command made on all
/// its shards go to the write-ahead log as one frame, in the order they were made, before any
/// shard can run anything else: a crash keeps all of a command's effects or none.
#[derive(Default)]
pub struct Leases(pub Vec<Lease>);

impl std::ops::Deref for Leases {
    type Target = Vec<Lease>;
    fn deref(&self) -> &Vec<Lease> {
        &self.0
    }
}

impl std::ops::DerefMut for Leases {
    fn deref_mut(&mut self) -> &mut Vec<Lease> {
        &mut self.0
    }
}

impl Drop for Leases {
    fn drop(&mut self) {
        append_group(self.0.iter_mut().map(|l| l.state()));
    }
}

/// The records a group made on all its shards, to the log as one frame in the order they
/// were made.
fn append_group<'s>(states: impl Iterator<Item = &'s mut ShardState>) {
    let mut wal = None;
    let mut parts = Vec::new();
    for st in states {
        if let Some(w) = st.changes.wal() {
            wal.get_or_insert_with(|| w.clone());
            st.changes.take_marked(&mut parts);
        }
    }
    if let Some(wal) = wal {
        wal.append_group(parts);
    }
}

pub type RunFn = Box<dyn FnOnce(&mut ShardState) + Send>;

pub enum ShardMsg {
    Batch(Box<Batch>),
    Lease(oneshot::Sender<Lease>),
    Run(RunFn),
    Tick,
}

pub struct ShardActor;

pub struct ShardArgs {
    pub slot: Arc<StateSlot>,
    pub route: Arc<SlotRoute>,
    pub busy: BusyCheck,
}

pub struct ShardCell {
    slot: Arc<StateSlot>,
    route: Arc<SlotRoute>,
    busy: BusyCheck,
}

impl ShardCell {
    /// The slot, unless a script holding it turns busy first (past `busy-reply-threshold`).
    async fn hold_unless_busy(&self) -> Option<SlotGuard<'_>> {
        let busy = &self.busy;
        self.slot.hold_unless(Some(&|| busy().is_some())).await
    }
}

/// The -BUSY reply while a script runs past `busy-reply-threshold` (see `Scripts::busy_check`).
pub type BusyCheck = Arc<dyn Fn() -> Option<&'static str> + Send + Sync>;

pub use slot::{Slot, SlotGuard, StateSlot};

/// A shard as the rest of the node sees it: its actor, and the state when it is idle.
pub struct Shard {
    pub actor: ActorRef<ShardMsg>,
    slot: Arc<StateSlot>,
}

impl Shard {
    pub fn new(actor: ActorRef<ShardMsg>, slot: Arc<StateSlot>) -> Shard {
        Shard { actor, slot }
    }

    pub fn cast(&self, msg: ShardMsg) -> Result<(), ractor::MessagingErr<ShardMsg>> {
        self.actor.cast(msg)
    }

    /// Runs `batch` on the caller's thread if the shard is idle (not running another batch, not
    /// leased) or turns idle within a few spins; false, leaving the batch untouched, otherwise.
    #[inline]
    pub fn run_here(&self, route: &SlotRoute, batch: &mut Batch) -> bool {
        let Some(mut guard) = self.slot.try_hold_spinning() else { return false };
        let Some(state) = guard.state() else { return false };
        run_batch(state, route, batch);
        true
    }

    /// The shard leased right here if it is idle or turns idle within a few spins: what its
    /// actor would lease, without the hand-off to it and back.
    pub fn try_lease(&self) -> Option<Lease> {
        let mut guard = self.slot.try_hold_spinning()?;
        guard.state()?;
        Some(Lease::new(guard, &self.slot))
    }

    /// Holds the shard on the caller's thread if it is idle (see [`StateSlot`]).
    #[inline]
    pub fn try_hold(&self) -> Option<SlotGuard<'_>> {
        let mut guard = self.slot.try_hold()?;
        guard.state()?;
        Some(guard)
    }
}

/// The shard's state for a message; present outside leases, which the actor never
/// interleaves with other messages.
async fn locked(slot: &StateSlot) -> SlotGuard<'_> {
    let mut guard = slot.hold().await;
    assert!(guard.state().is_some(), "state present outside leases");
    guard
}

/// The state of a guard from `locked`.
fn present<'a>(guard: &'a mut SlotGuard<'_>) -> &'a mut ShardState {
    guard.state().expect("state present outside leases")
}

impl Actor for ShardActor {
    type Msg = ShardMsg;
    type State = ShardCell;
    type Arguments = ShardArgs;

    async fn pre_start(&self, myself: ActorRef<ShardMsg>, args: ShardArgs) -> Result<ShardCell, ActorProcessingErr> {
        myself.send_interval(TICK, || ShardMsg::Tick);
        Ok(ShardCell { slot: args.slot, route: args.route, busy: args.busy })
    }

    async fn handle(
        &self,
        myself: ActorRef<ShardMsg>,
        msg: ShardMsg,
        cell: &mut ShardCell,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            ShardMsg::Batch(mut batch) => {
                let busy = &cell.busy;
                match cell.hold_unless_busy().await {
                    Some(mut guard) => run_batch(present(&mut guard), &cell.route, &mut batch),
                    // Held by a script past busy-reply-threshold: answered as Redis answers
                    // commands that arrive while a script is busy.
                    None => refuse_batch(&mut batch, busy().unwrap_or(BUSY_ENDED).as_bytes()),
                }
                if let Some(tx) = batch.reply.take() {
                    let _ = tx.send(batch);
                }
            }
            ShardMsg::Lease(tx) => {
                // The slot goes to the borrower held; the messages after this one wait for it
                // as for any holder (a batch may give up on a busy script meanwhile).
                // A lease never gives up: leases are granted in the order they were asked for
                // on every shard alike (`Node::lease`), which is what keeps borrowers of
                // several shards from deadlocking. Behind a busy script, what is queued after
                // a lease waits with it; scripts never queue leases behind one another (they
                // hold the engine first).
                let lease = Lease::new(locked(&cell.slot).await, &cell.slot);
                // If the borrower is gone, the lease is dropped here and the slot released.
                let _ = tx.send(lease);
            }
            ShardMsg::Run(f) => {
                match cell.hold_unless_busy().await {
                    Some(mut guard) => run_job(present(&mut guard), f),
                    // Held by a busy script: the job waits for it off the mailbox, so the
                    // batches queued behind it are answered -BUSY meanwhile. Nothing orders
                    // jobs among themselves: each touches this shard only.
                    None => {
                        let slot = cell.slot.clone();
                        tokio::spawn(async move { run_job(present(&mut locked(&slot).await), f) });
                    }
                }
            }
            ShardMsg::Tick => {
                // Skipped while a busy script holds the shard: a tick waiting for it would
                // keep every batch queued behind it from its -BUSY.
                let Some(mut guard) = cell.hold_unless_busy().await else { return Ok(()) };
                let state = present(&mut guard);
                state.update_clock();
                let more_expiry = state.active_expire && state.expire_due(now_ms(), TICK_BUDGET);
                if state.active_expire {
                    state.expire_hash_fields(now_ms());
                }
                let more_rehash = state.maintain_tables(TICK_BUDGET);
                let more_eviction = state.evict_in_background(TICK_BUDGET);
                let more_snapshot = state.snapshot_step(SNAPSHOT_BUDGET);
                state.changes.flush();
                if more_expiry || more_rehash || more_eviction || more_snapshot {
                    // Continue after whatever is queued, so commands are never starved.
                    let _ = myself.cast(ShardMsg::Tick);
                }
            }
        }
        Ok(())
    }
}

/// Runs a `ShardMsg::Run` job; a panicking job is logged, not the end of the shard.
fn run_job(state: &mut ShardState, f: RunFn) {
    if std::panic::catch_unwind(AssertUnwindSafe(|| f(state))).is_err() {
        error!(shard = state.id, "shard task panicked");
    }
    state.changes.flush();
}

/// Loads the buckets and then the entries of the batch's first keys into the cache before
/// the commands run, so their misses overlap instead of following one another.
#[inline]
fn prefetch_keys(state: &ShardState, b: &Batch) {
    const MAX: usize = 32;
    let n = b.cmds.len().min(MAX);
    if n < 2 {
        return;
    }
    let dict = state.dbs[b.db].dict();
    let mut hashes = [None; MAX];
    for (h, (spec, req)) in hashes.iter_mut().zip(&b.cmds[..n]) {
        *h = spec.keys_of(req).next().map(|i| dict.prefetch_bucket(req.arg(i)));
    }
    for h in hashes[..n].iter().flatten() {
        dict.prefetch_entry(*h);
    }
}

fn run_batch(state: &mut ShardState, route: &SlotRoute, b: &mut Batch) {
    prefetch_keys(state, b);
    let now = now_ms();
    b.out.clear();
    b.ends.clear();
    let mut t = Instant::now();
    // The requests are dropped by the connection, on its own thread: their buffers' reference
    // counts then never bounce between cores.
    for (spec, req) in b.cmds.iter() {
        let mut job = ExecJob { db: b.db, proto: b.proto, out: &mut b.out, now, settings: b.settings };
        let failed = state.execute(route, &mut job, spec, req);
        let t2 = Instant::now();
        let nanos = (t2 - t).as_nanos() as u64;
        state.stats.record(spec.id, nanos, failed);
        if let Some(log) = &state.slowlog {
            log.observe(nanos, spec, req, b.client.as_deref());
        }
        t = t2;
        b.ends.push(b.out.len() as u32);
    }
    state.changes.flush();
}

/// The script ended between the give-up check and the reply: still refused, as it was busy.
const BUSY_ENDED: &str = "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.";

/// Answers every command of `b` with the error `msg`, running none.
fn refuse_batch(b: &mut Batch, msg: &[u8]) {
    b.out.clear();
    b.ends.clear();
    for _ in &b.cmds {
        shoal_proto::reply::error(&mut b.out, msg);
        b.ends.push(b.out.len() as u32);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::table::table;

    fn settings() -> ExecSettings {
        ExecSettings {
            proto_max_bulk_len: 512 << 20,
            mc_max_item_size: 1 << 20,
            databases: 16,
            policy: crate::memory::Policy::NoEviction,
            enc: Default::default(),
            client: 0,
        }
    }

    /// Runs one command on a lone shard at time `now`, returning the reply bytes.
    fn run(st: &mut ShardState, route: &SlotRoute, db: usize, now: u64, args: &[&str]) -> Vec<u8> {
        let req = Request::from_args(args);
        let mut spec = table().lookup(req.arg(0)).expect("known command");
        if !spec.subcommands.is_empty() {
            spec = spec.subcommand(req.arg(1)).expect("known subcommand");
        }
        let mut out = BytesMut::new();
        let mut job = ExecJob { db, proto: Protocol::Resp2, out: &mut out, now, settings: settings() };
        st.execute(route, &mut job, spec, &req);
        out.to_vec()
    }

    /// (db, key, value, expiry) of every key.
    type Contents = Vec<(usize, Vec<u8>, Vec<u8>, Option<u64>)>;

    /// Every key with its value bytes and expiry, for comparing keyspaces.
    fn dump_state(st: &ShardState) -> Contents {
        let mut all = Vec::new();
        for (i, db) in st.dbs.iter().enumerate() {
            for e in db.dict().iter() {
                all.push((i, e.key().to_vec(), e.value.to_vec(), e.expire_at()));
            }
        }
        all.sort();
        all
    }

    #[test]
    fn writes_produce_deterministic_effect_records_that_replay_to_the_same_state() {
        let route = SlotRoute::even(1);
        let mut st = ShardState::new(0, 16, table().stat_slots());
        st.changes.set_enabled(true);
        let t0 = 1_700_000_000_000;
        let script: &[&[&str]] = &[
            &["SET", "a", "1", "EX", "100"],
            &["SET", "b", "x"],
            &["APPEND", "b", "yz"],
            &["INCRBYFLOAT", "f", "1.5"],
            &["INCR", "c"],
            &["SETEX", "s", "10", "v"],
            &["PEXPIRE", "b", "5000"],
            &["GETEX", "a", "PERSIST"],
            &["SETRANGE", "b", "1", "Q"],
            &["MSET", "m1", "1", "m2", "2"],
            &["RENAME", "m1", "m3"],
            &["COPY", "m2", "m4", "DB", "3"],
            &["MOVE", "m3", "2"],
            &["DEL", "m2"],
            &["SET", "gone", "v", "PX", "1"],
        ];
        for cmd in script {
            run(&mut st, &route, 0, t0, cmd);
        }
        // Time passes: reading an expired key deletes it, and that is a write too.
        assert_eq!(run(&mut st, &route, 0, t0 + 2, &["GET", "gone"]), b"$-1\r\n");
        let records = st.changes.drain();
        let texts: Vec<String> = records.iter().map(|c| c.args_str().join(" ")).collect();
        assert_eq!(texts[0], format!("SET a 1 PXAT {}", t0 + 100_000), "relative expiry becomes absolute");
        assert!(texts.contains(&format!("SET s v PXAT {}", t0 + 10_000)));
        assert!(texts.contains(&format!("PEXPIREAT b {}", t0 + 5000)));
        assert!(texts.contains(&"SET f 1.5 KEEPTTL".to_string()), "float increments replay as their result");
        assert_eq!(texts.last().unwrap(), "DEL gone", "lazy expiry is recorded as a DEL");

        // Replaying the records on an empty shard gives the same keyspace.
        let mut replica = ShardState::new(0, 16, table().stat_slots());
        for rec in &records {
            let args: Vec<String> = rec.args_str();
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            run(&mut replica, &route, rec.db, t0, &args);
        }
        assert_eq!(dump_state(&replica), dump_state(&st));
        assert_eq!(st.changes.dirty, records.len() as u64, "each write is one record");
    }

    #[test]
    fn new_keys_start_idle_at_zero_however_long_the_node_has_run() {
        let route = SlotRoute::even(1);
        let mut st = ShardState::new(0, 16, table().stat_slots());
        st.set_clock(500);
        let t0 = 1_700_000_000_000;
        run(&mut st, &route, 0, t0, &["SET", "k", "v"]);
        run(&mut st, &route, 0, t0, &["COPY", "k", "k2"]);
        assert_eq!(run(&mut st, &route, 0, t0, &["OBJECT", "IDLETIME", "k"]), b":0\r\n");
        assert_eq!(run(&mut st, &route, 0, t0, &["OBJECT", "IDLETIME", "k2"]), b":0\r\n");
        st.set_clock(503);
        assert_eq!(run(&mut st, &route, 0, t0, &["OBJECT", "IDLETIME", "k"]), b":3\r\n");
    }

    #[test]
    fn active_expiry_removes_exactly_the_due_keys() {
        let route = SlotRoute::even(1);
        let mut st = ShardState::new(0, 16, table().stat_slots());
        let t0 = 1_700_000_000_000;
        for i in 0..1000 {
            run(&mut st, &route, 0, t0, &["SET", &format!("k{i}"), "v", "PX", &format!("{}", 1 + i % 10)]);
        }
        run(&mut st, &route, 0, t0, &["SET", "forever", "v"]);
        assert!(!st.expire_due(t0 + 5, Duration::from_secs(1)));
        assert_eq!(st.dbs[0].len(), 1 + 500);
        assert_eq!(st.stats.expired_keys, 500);
        st.expire_due(t0 + 10, Duration::from_secs(1));
        assert_eq!(st.dbs[0].len(), 1);
        assert_eq!(st.dbs[0].expires_len(), 0);
    }
}
