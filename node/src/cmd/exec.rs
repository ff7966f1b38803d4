//! The context a command handler runs in: the shard(s) holding its keys, the selected
//! database, the reply buffer and the clock. A handler written against `Exec` runs the same
//! whether its keys sit in one shard (inside that shard's actor) or in several (leased).

use crate::argv;
use crate::memory::Policy;
use crate::shard::bytes::SmallBytes;
use crate::shard::db::Db;
use crate::shard::dict::EntryId;
use crate::shard::evict;
use crate::shard::value::{Kind, Value};
use crate::shard::ShardState;
use crate::slots::SlotRoute;
use bytes::{Bytes, BytesMut};
use shoal_proto::{reply, Protocol};

/// A denyoom command at the memory limit (under noeviction, or with nothing to evict).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Oom {
    /// Refused, as every client's command is.
    Checked,
    /// Runs anyway: a script flagged `allow-oom`, or one that has already written (Redis
    /// lets it finish rather than stop it halfway).
    Exempt,
    /// Set by the run: this command was refused.
    Refused,
}

/// Settings handlers read, copied per batch from the live configuration.
#[derive(Clone, Copy, Debug)]
pub struct ExecSettings {
    pub proto_max_bulk_len: usize,
    /// The largest value a Memcached command may leave (`--memcached-max-item-size`).
    pub mc_max_item_size: usize,
    pub databases: usize,
    /// The eviction policy, which decides what a read records about the key.
    pub policy: crate::memory::Policy,
    pub enc: crate::shard::types::Encodings,
    /// The client the commands come from (0: none).
    pub client: u64,
}

/// The error of a helper that has already sent its error reply to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Replied;

/// Where a found key lives: index into `Exec::shards`, and its entry.
pub type Loc = (usize, EntryId);

/// The longest key `RouteMemo` keeps.
const MEMO_KEY: usize = 56;

/// The shard indexes of the last two keys routed. A command routes its key several times (the
/// lookup, the change record, the notification) and a script's commands share a few keys,
/// while routing hashes the whole key (CRC16) and scans it for a hash tag. Valid while the
/// shards and the route it was filled under stay the same: one batch, or one script's run.
#[derive(Clone)]
pub struct RouteMemo {
    keys: [[u8; MEMO_KEY]; 2],
    /// `u8::MAX`: an empty entry.
    lens: [u8; 2],
    idx: [u8; 2],
    next: u8,
}

impl Default for RouteMemo {
    fn default() -> RouteMemo {
        RouteMemo { keys: [[0; MEMO_KEY]; 2], lens: [u8::MAX; 2], idx: [0; 2], next: 0 }
    }
}

impl RouteMemo {
    #[inline]
    fn get(&self, key: &[u8]) -> Option<usize> {
        (0..2)
            .find(|&e| self.lens[e] as usize == key.len() && self.keys[e][..key.len()] == *key)
            .map(|e| self.idx[e] as usize)
    }

    #[inline]
    fn put(&mut self, key: &[u8], idx: usize) {
        if key.len() > MEMO_KEY || idx > u8::MAX as usize {
            return;
        }
        let e = self.next as usize;
        self.keys[e][..key.len()].copy_from_slice(key);
        self.lens[e] = key.len() as u8;
        self.idx[e] = idx as u8;
        self.next ^= 1;
    }
}

pub struct Exec<'a, 'b> {
    pub shards: &'a mut [&'b mut ShardState],
    pub route: &'a SlotRoute,
    pub db: usize,
    pub proto: Protocol,
    pub out: &'a mut BytesMut,
    /// Unix time in ms, fixed for the batch like Redis's cached `mstime`.
    pub now: u64,
    pub settings: ExecSettings,
    /// Set when the handler replied with an error.
    pub failed: bool,
    /// Blocking commands answer at once instead of waiting (inside MULTI and scripts).
    pub no_block: bool,
    /// The command is a script's `redis.call`.
    pub in_script: bool,
    /// Whether a denyoom command may be refused at the memory limit.
    pub oom: Oom,
    /// Set by a blocking command that registered a wait.
    pub block: Option<super::blocking::BlockReq>,
    /// The command running, for keyspace notifications: its name and first key.
    cmd: Option<(&'static super::table::CommandSpec, SmallBytes)>,
    /// The last notification sent, so a write recorded in several steps announces once.
    last_event: Option<(SmallBytes, &'static str)>,
    /// A key emptied and deleted by the running command: its "del" event follows the
    /// command's own event, as in Redis.
    pending_del: Option<SmallBytes>,
    /// Keys routed lately; a script's calls pass it from one `Exec` to the next.
    pub memo: RouteMemo,
}

impl<'a, 'b> Exec<'a, 'b> {
    pub fn new(
        shards: &'a mut [&'b mut ShardState],
        route: &'a SlotRoute,
        db: usize,
        proto: Protocol,
        out: &'a mut BytesMut,
        now: u64,
        settings: ExecSettings,
    ) -> Exec<'a, 'b> {
        Exec {
            shards,
            route,
            db,
            proto,
            out,
            now,
            settings,
            failed: false,
            no_block: false,
            in_script: false,
            oom: Oom::Checked,
            block: None,
            cmd: None,
            last_event: None,
            pending_del: None,
            memo: RouteMemo::default(),
        }
    }

    /// Notes the command about to run (only needed when notifications are on).
    #[inline]
    pub fn begin_command(&mut self, spec: &'static super::table::CommandSpec, req: &shoal_proto::Request) {
        let on = self.shards.iter().any(|s| s.notifier.as_ref().is_some_and(|n| n.flags() != 0));
        if on {
            let first = spec.keys_of(req).next().map(|i| SmallBytes::new(req.arg(i))).unwrap_or(SmallBytes::EMPTY);
            self.cmd = Some((spec, first));
            self.last_event = None;
        } else {
            self.cmd = None;
        }
    }

    /// Whether keyspace notifications are on for the running command.
    #[inline]
    pub fn notifying(&self) -> bool {
        self.cmd.is_some()
    }

    /// Announces a key the running command created (the `n` class, "new").
    pub fn note_new_key(&mut self, db: usize, key: &[u8]) {
        if self.cmd.is_none() {
            return;
        }
        let s = self.shard_idx(key);
        self.shards[s].notify(crate::notify::NEW, "new", key, db);
    }

    /// Announces the running command's write to a key it recorded under another key (the
    /// destination of RENAME, COPY, MOVE), in database `db`.
    pub fn announce_key_in(&mut self, db: usize, key: &[u8]) {
        if self.cmd.is_none() {
            return;
        }
        let s = self.shard_idx(key);
        let saved = std::mem::replace(&mut self.db, db);
        self.last_event = None;
        self.announce(s, key, "");
        self.db = saved;
    }

    /// Announces a write to `key` whose change record starts with `record`.
    fn announce(&mut self, s: usize, key: &[u8], record: &str) {
        let Some((spec, first)) = &self.cmd else { return };
        let Some((class, event)) = crate::notify::event_for(&spec.full_name, first.as_slice() == key, record) else {
            return;
        };
        if self.last_event.as_ref().is_some_and(|(k, e)| k.as_slice() == key && *e == event) {
            return;
        }
        self.last_event = Some((SmallBytes::new(key), event));
        let db = self.db;
        self.shards[s].notify(class, event, key, db);
        if self.pending_del.as_ref().is_some_and(|k| k.as_slice() == key) {
            self.pending_del = None;
            self.shards[s].notify(crate::notify::GENERIC, "del", key, db);
        }
    }

    /// Index into `shards` of the shard that owns `key`.
    #[inline]
    pub fn shard_idx(&mut self, key: &[u8]) -> usize {
        if self.shards.len() == 1 {
            return 0;
        }
        if let Some(i) = self.memo.get(key) {
            return i;
        }
        let id = self.route.shard_of_key(key);
        let i = self.shards.iter().position(|s| s.id == id).expect("key's shard is leased");
        self.memo.put(key, i);
        i
    }

    #[inline]
    pub fn db_of(&mut self, key: &[u8]) -> &mut Db {
        let s = self.shard_idx(key);
        &mut self.shards[s].dbs[self.db]
    }

    /// Replies with an error (`ERR ...`, `WRONGTYPE ...`) and counts it.
    pub fn err(&mut self, msg: &str) {
        reply::error(self.out, msg.as_bytes());
        self.failed = true;
        self.shards[0].stats.record_error(&crate::shard::stats::error_code(msg.as_bytes()));
    }

    pub fn wrongtype(&mut self) {
        self.err(WRONGTYPE);
    }

    pub fn syntax(&mut self) {
        self.err(SYNTAX);
    }

    /// Finds a live key for a write or an existence check: expires it lazily, no hit/miss.
    #[inline]
    pub fn lookup(&mut self, key: &[u8]) -> Option<(usize, EntryId)> {
        let s = self.shard_idx(key);
        self.lookup_in(s, self.db, key)
    }

    /// Finds a live key in shard index `s`, database `db`.
    pub fn lookup_in(&mut self, s: usize, db: usize, key: &[u8]) -> Option<(usize, EntryId)> {
        let sh = &mut *self.shards[s];
        let d = &mut sh.dbs[db];
        let id = d.find(key)?;
        let e = d.dict().entry(id);
        if e.expire_at().is_some_and(|t| t <= self.now) {
            d.remove(key);
            sh.stats.expired_keys += 1;
            sh.changes.emit(db, || argv!["DEL", key]);
            sh.touched(db, key);
            sh.notify(crate::notify::EXPIRED, "expired", key, db);
            return None;
        }
        Some((s, id))
    }

    /// Finds a live key for reading: counts a keyspace hit or miss and touches its access clock.
    #[inline]
    pub fn read(&mut self, key: &[u8]) -> Option<(usize, EntryId)> {
        let found = self.lookup(key);
        match found {
            Some((s, id)) => {
                let sh = &mut *self.shards[s];
                sh.stats.keyspace_hits += 1;
                let clock = sh.clock;
                let e = sh.dbs[self.db].entry_mut(id);
                match self.settings.policy {
                    p if p.lfu() => e.access = evict::lfu_touch(e.access, clock / 60, &mut sh.evict.rng),
                    // The clock ticks once a second: skip the store (and dirtying the cache
                    // line, which the next reader on another core would fetch) when unchanged.
                    _ if e.access != clock => e.access = clock,
                    _ => {}
                }
                if self.settings.policy == Policy::Cache {
                    sh.evict.sketch.increment(sh.evict.sketch.hash(key));
                }
            }
            None => self.missed(key),
        }
        found
    }

    /// A read found no key: Redis counts a keyspace miss and announces it (the `m` class).
    fn missed(&mut self, key: &[u8]) {
        let s = self.shard_idx(key);
        let sh = &mut *self.shards[s];
        sh.stats.keyspace_misses += 1;
        // The cache policy counts reads of absent keys too: a key that is asked for often
        // deserves its place when it is stored again.
        if self.settings.policy == Policy::Cache {
            sh.evict.sketch.increment(sh.evict.sketch.hash(key));
        }
        sh.notify(crate::notify::KEY_MISS, "keymiss", key, self.db);
    }

    /// Finds a live key for reading without touching its access clock (TTL, TYPE, EXISTS).
    pub fn read_notouch(&mut self, key: &[u8]) -> Option<(usize, EntryId)> {
        let found = self.lookup(key);
        match found {
            Some((s, _)) => self.shards[s].stats.keyspace_hits += 1,
            None => self.missed(key),
        }
        found
    }

    /// Records a write's effect in the change stream of the shard owning `key`.
    #[inline]
    pub fn emit(&mut self, key: &[u8], argv: impl FnOnce() -> Vec<Bytes>) {
        let s = self.shard_idx(key);
        let db = self.db;
        if self.cmd.is_some() {
            let v = argv();
            let record = String::from_utf8_lossy(&v[0]).into_owned();
            // A SET that also sets a TTL is announced as "set" then "expire", as Redis does.
            let with_ttl = record == "SET" && v.iter().any(|a| a.eq_ignore_ascii_case(b"PXAT"));
            self.shards[s].changes.emit(db, || v);
            self.announce(s, key, &record);
            if with_ttl {
                self.shards[s].notify(crate::notify::GENERIC, "expire", key, db);
            }
        } else {
            self.shards[s].changes.emit(db, argv);
        }
        self.shards[s].touched(db, key);
    }

    /// Records a deterministic write as the request itself.
    pub fn emit_req(&mut self, key: &[u8], req: &shoal_proto::Request) {
        self.emit(key, || (0..req.len()).map(|i| req.arg_bytes(i)).collect());
    }

    #[inline]
    pub fn value(&self, loc: Loc) -> &Value {
        &self.shards[loc.0].dbs[self.db].dict().entry(loc.1).value
    }

    /// A found value together with the reply buffer, for replies that quote the value.
    #[inline]
    pub fn value_and_out(&mut self, loc: Loc) -> (&Value, &mut BytesMut) {
        (&self.shards[loc.0].dbs[self.db].dict().entry(loc.1).value, &mut *self.out)
    }

    #[inline]
    pub fn value_mut(&mut self, loc: Loc) -> &mut Value {
        &mut self.shards[loc.0].dbs[self.db].entry_mut(loc.1).value
    }

    /// Finds a key of type `kind` for reading (counting a hit or miss). `Err` means it holds
    /// another type and WRONGTYPE has been sent.
    pub fn read_typed(&mut self, key: &[u8], kind: Kind) -> Result<Option<Loc>, Replied> {
        let found = self.read(key);
        self.check_kind(found, kind)
    }

    /// Finds a key of type `kind` for writing (no hit/miss counted).
    pub fn write_typed(&mut self, key: &[u8], kind: Kind) -> Result<Option<Loc>, Replied> {
        let found = self.lookup(key);
        self.check_kind(found, kind)
    }

    fn check_kind(&mut self, found: Option<Loc>, kind: Kind) -> Result<Option<Loc>, Replied> {
        match found {
            Some(loc) if self.value(loc).kind() != kind => {
                self.wrongtype();
                Err(Replied)
            }
            f => Ok(f),
        }
    }

    /// Creates a key known to be absent (no TTL).
    pub fn create(&mut self, key: &[u8], value: Value) -> Loc {
        let s = self.shard_idx(key);
        let id = self.shards[s].dbs[self.db].insert(SmallBytes::new(key), value, 0);
        let db = self.db;
        self.note_new_key(db, key);
        (s, id)
    }

    /// Deletes a key whose collection a write has emptied, as Redis never keeps empty
    /// collections. True if it was deleted.
    pub fn drop_if_empty(&mut self, key: &[u8], loc: Loc) -> bool {
        if self.value(loc).element_count() == 0 {
            self.delete(key);
            if self.cmd.is_some() {
                self.pending_del = Some(SmallBytes::new(key));
            }
            return true;
        }
        false
    }

    /// Deletes a key (no expiry check); true if it existed.
    pub fn delete(&mut self, key: &[u8]) -> bool {
        let s = self.shard_idx(key);
        self.shards[s].dbs[self.db].remove(key).is_some()
    }
}

pub const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
pub const SYNTAX: &str = "ERR syntax error";
pub const NOT_INTEGER: &str = "ERR value is not an integer or out of range";
pub const NOT_FLOAT: &str = "ERR value is not a valid float";
pub const NO_SUCH_KEY: &str = "ERR no such key";
pub const SAME_OBJECT: &str = "ERR source and destination objects are the same";
pub const DB_OUT_OF_RANGE: &str = "ERR DB index is out of range";
pub const STRING_TOO_LONG: &str = "ERR string exceeds maximum allowed size (proto-max-bulk-len)";

#[cfg(test)]
mod tests {
    use super::{RouteMemo, MEMO_KEY};

    #[test]
    fn route_memo_keeps_the_last_two_keys_by_content() {
        let mut m = RouteMemo::default();
        assert_eq!(m.get(b""), None, "an empty memo knows no key, not even the empty one");
        m.put(b"a", 1);
        m.put(b"", 0);
        assert_eq!((m.get(b"a"), m.get(b"")), (Some(1), Some(0)));
        assert_eq!(m.get(b"b"), None);
        assert_eq!(m.get(b"aa"), None, "same prefix, other length");
        // A third key replaces the older of the two.
        m.put(b"c", 1);
        assert_eq!((m.get(b"a"), m.get(b""), m.get(b"c")), (None, Some(0), Some(1)));
        // Keys longer than the memo holds are routed every time.
        let long = vec![b'x'; MEMO_KEY + 1];
        m.put(&long, 0);
        assert_eq!(m.get(&long), None);
        assert_eq!((m.get(b""), m.get(b"c")), (Some(0), Some(1)));
        let longest = vec![b'y'; MEMO_KEY];
        m.put(&longest, 1);
        assert_eq!(m.get(&longest), Some(1));
    }
}
