//! The state a running node shares between its connections: shards, configuration that
//! CONFIG SET may change, the client registry, gateway statistics, pause and shutdown signals.

use crate::cmd::exec::ExecSettings;
use crate::cmd::table::{table, CommandSpec};
use crate::config::Config;
use crate::shard::stats::{CommandStat, ShardStats, LATENCY_BUCKETS_US};
use crate::shard::types::Encodings;
use crate::shard::{Lease, Leases, ShardMsg, ShardState};
use crate::slots::SlotRoute;
use crate::util::counter::{self, Striped};
use shoal_proto::Request;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, AtomicU8, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;
use tokio::sync::{oneshot, watch};

/// Configuration that can change while running (CONFIG SET).
pub struct LiveConfig {
    pub maxclients: AtomicUsize,
    pub timeout: AtomicU64,
    pub tcp_keepalive: AtomicU64,
    pub proto_max_bulk_len: AtomicU64,
    pub client_query_buffer_limit: AtomicU64,
    /// Parameters accepted and reported for compatibility but not acted on yet.
    pub passive: RwLock<BTreeMap<&'static str, String>>,
    /// Collection encoding thresholds, indexed as `ENCODING_PARAMS`.
    pub encodings: [AtomicUsize; ENCODING_PARAMS.len()],
}

/// Commands, over several shards, up to which a connection's round runs on its own thread
/// (see `Node::run_batches`).
const RUN_HERE_MAX: usize = 32;

/// The collection-size settings, with Redis 7.0's older `ziplist` names as aliases.
pub const ENCODING_PARAMS: [(&str, &str); 7] = [
    ("hash-max-listpack-entries", "hash-max-ziplist-entries"),
    ("hash-max-listpack-value", "hash-max-ziplist-value"),
    ("set-max-intset-entries", ""),
    ("set-max-listpack-entries", ""),
    ("set-max-listpack-value", ""),
    ("zset-max-listpack-entries", "zset-max-ziplist-entries"),
    ("zset-max-listpack-value", "zset-max-ziplist-value"),
];

impl LiveConfig {
    pub fn encodings(&self) -> Encodings {
        let v = |i: usize| self.encodings[i].load(Relaxed);
        Encodings {
            hash_entries: v(0),
            hash_value: v(1),
            set_intset_entries: v(2),
            set_entries: v(3),
            set_value: v(4),
            zset_entries: v(5),
            zset_value: v(6),
        }
    }
}

fn encoding_defaults() -> [AtomicUsize; ENCODING_PARAMS.len()] {
    let d = Encodings::default();
    [d.hash_entries, d.hash_value, d.set_intset_entries, d.set_entries, d.set_value, d.zset_entries, d.zset_value]
        .map(AtomicUsize::new)
}

/// Counters kept by the gateway itself (commands that do not run in a shard, connections,
/// network bytes). Atomics, because every connection task updates them.
pub struct NodeStats {
    pub total_connections_received: AtomicU64,
    pub rejected_connections: AtomicU64,
    /// Connections closed at accept because their address is outside --allow-cidr.
    pub disallowed_connections: AtomicU64,
    pub tls_handshake_failures: AtomicU64,
    /// Failed Memcached authentications (SASL or the text protocol's).
    pub memcache_auth_failures: AtomicU64,
    pub net_input_bytes: Striped,
    pub net_output_bytes: Striped,
    pub total_reads_processed: Striped,
    pub total_writes_processed: Striped,
    pub protocol_errors: AtomicU64,
    /// Clients waiting in a blocking command.
    pub blocked_clients: AtomicU64,
    /// Per-command figures, one stripe per thread slot (`util::counter`).
    calls: Box<[CallStripe]>,
    errors: Mutex<Vec<(String, u64)>>,
}

/// One thread slot's share of the per-command figures. Every command on every core adds to
/// them: one shared set would bounce its cache lines between cores on every command.
#[repr(align(128))]
struct CallStripe {
    /// Per command: calls, nanoseconds, failed, rejected.
    commands: Vec<[AtomicU64; 4]>,
    latency: Vec<AtomicU64>,
    latency_sum_ns: AtomicU64,
}

impl CallStripe {
    fn new() -> CallStripe {
        CallStripe {
            commands: (0..table().stat_slots()).map(|_| Default::default()).collect(),
            latency: (0..=LATENCY_BUCKETS_US.len()).map(|_| AtomicU64::new(0)).collect(),
            latency_sum_ns: AtomicU64::new(0),
        }
    }
}

impl NodeStats {
    fn new() -> NodeStats {
        NodeStats {
            total_connections_received: AtomicU64::new(0),
            rejected_connections: AtomicU64::new(0),
            disallowed_connections: AtomicU64::new(0),
            tls_handshake_failures: AtomicU64::new(0),
            memcache_auth_failures: AtomicU64::new(0),
            net_input_bytes: Striped::default(),
            net_output_bytes: Striped::default(),
            total_reads_processed: Striped::default(),
            total_writes_processed: Striped::default(),
            protocol_errors: AtomicU64::new(0),
            blocked_clients: AtomicU64::new(0),
            calls: (0..counter::SLOTS).map(|_| CallStripe::new()).collect(),
            errors: Mutex::new(Vec::new()),
        }
    }

    #[inline]
    fn stripe(&self) -> &CallStripe {
        &self.calls[counter::my_slot()]
    }

    pub fn record(&self, cmd: usize, nanos: u64, failed: bool) {
        let stripe = self.stripe();
        let c = &stripe.commands[cmd];
        c[0].fetch_add(1, Relaxed);
        c[1].fetch_add(nanos, Relaxed);
        if failed {
            c[2].fetch_add(1, Relaxed);
        }
        let usec = nanos / 1000;
        let b = LATENCY_BUCKETS_US.iter().position(|&ub| usec <= ub).unwrap_or(LATENCY_BUCKETS_US.len());
        stripe.latency[b].fetch_add(1, Relaxed);
        stripe.latency_sum_ns.fetch_add(nanos, Relaxed);
    }

    /// Counts a failure of a command already counted as called: a blocking command whose
    /// wait ended in an error (CLIENT UNBLOCK ... ERROR).
    pub fn record_failed(&self, cmd: usize) {
        self.stripe().commands[cmd][2].fetch_add(1, Relaxed);
    }

    /// Counts a command refused before it ran (unknown, wrong arity, ...).
    pub fn record_rejected(&self, cmd: usize) {
        self.stripe().commands[cmd][3].fetch_add(1, Relaxed);
    }

    /// Counts an error reply, `text` as written after its `-` (see `error_code`).
    pub fn record_error_reply(&self, text: &[u8]) {
        self.record_error(&crate::shard::stats::error_code(text));
    }

    pub fn record_error(&self, code: &str) {
        crate::shard::stats::count_error(&mut self.errors.lock().expect("stats lock"), code, 1);
    }

    /// Adds the gateway's counters into a shard-stats aggregate.
    pub fn merge_into(&self, agg: &mut ShardStats) {
        for stripe in self.calls.iter() {
            for (a, c) in agg.commands.iter_mut().zip(&stripe.commands) {
                a.calls += c[0].load(Relaxed);
                a.nanos += c[1].load(Relaxed);
                a.failed += c[2].load(Relaxed);
                a.rejected += c[3].load(Relaxed);
            }
            for (a, b) in agg.latency.iter_mut().zip(&stripe.latency) {
                *a += b.load(Relaxed);
            }
            agg.latency_sum_ns += stripe.latency_sum_ns.load(Relaxed);
        }
        for (code, n) in self.errors.lock().expect("stats lock").iter() {
            crate::shard::stats::count_error(&mut agg.errors, code, *n);
        }
    }

    pub fn reset(&self) {
        for stripe in self.calls.iter() {
            for v in stripe.commands.iter().flatten().chain(&stripe.latency) {
                v.store(0, Relaxed);
            }
            stripe.latency_sum_ns.store(0, Relaxed);
        }
        self.errors.lock().expect("stats lock").clear();
        for a in [&self.total_connections_received, &self.rejected_connections, &self.disallowed_connections] {
            a.store(0, Relaxed);
        }
        for c in
            [&self.net_input_bytes, &self.net_output_bytes, &self.total_reads_processed, &self.total_writes_processed]
        {
            c.reset();
        }
    }
}

/// What CLIENT LIST shows of a connection; updated by its task, read by others.
pub struct ClientHandle {
    pub id: u64,
    pub addr: SocketAddr,
    pub laddr: SocketAddr,
    pub created: Instant,
    pub name: Mutex<String>,
    /// The ACL user the connection is authenticated as.
    pub user: Mutex<String>,
    pub lib_name: Mutex<String>,
    pub lib_ver: Mutex<String>,
    pub db: AtomicUsize,
    pub resp: AtomicU8,
    pub last_cmd: AtomicUsize,
    pub last_interaction: AtomicU64,
    pub no_evict: AtomicBool,
    pub no_touch: AtomicBool,
    pub qbuf: AtomicUsize,
    /// Subscriptions (channels, patterns, shard channels) and tracking, for CLIENT LIST.
    pub subs: [AtomicUsize; 3],
    pub tracking: AtomicBool,
    pub killed: AtomicBool,
    /// The socket, while the connection owns it. Killing a client shuts the socket down,
    /// which ends its pending read; the connection clears this under the lock before it
    /// closes the socket, so a reused descriptor is never touched.
    pub fd: Mutex<Option<RawFd>>,
    /// While the connection waits in a blocking command (BLPOP, XREAD BLOCK, ...): how
    /// CLIENT UNBLOCK ends that wait.
    unblock: Mutex<Option<oneshot::Sender<Unblock>>>,
    /// A command of the connection waits for CLIENT PAUSE to end. Redis counts such a client
    /// as blocked (CLIENT LIST's `b`, INFO's `blocked_clients`), but UNBLOCK cannot end it.
    pub held: AtomicBool,
}

/// How CLIENT UNBLOCK ends a blocked client's wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unblock {
    /// As if the command's timeout was reached.
    Timeout,
    /// With an -UNBLOCKED error.
    Error,
}

impl ClientHandle {
    /// The connection starts waiting in a blocking command; CLIENT UNBLOCK says on the
    /// returned channel how the wait should end, until `unblocked`.
    pub fn block(&self) -> oneshot::Receiver<Unblock> {
        let (tx, rx) = oneshot::channel();
        *self.unblock.lock().expect("unblock lock") = Some(tx);
        rx
    }

    /// The connection's blocking wait is over, however it ended.
    pub fn unblocked(&self) {
        self.unblock.lock().expect("unblock lock").take();
    }

    /// Whether the connection waits in a blocking command or for a pause to end (CLIENT
    /// LIST's `b` flag).
    pub fn is_blocked(&self) -> bool {
        self.held.load(Relaxed) || self.unblock.lock().expect("unblock lock").is_some()
    }

    /// CLIENT UNBLOCK: ends the connection's blocking wait as `how` says; false if it was
    /// not waiting.
    pub fn unblock(&self, how: Unblock) -> bool {
        let tx = self.unblock.lock().expect("unblock lock").take();
        tx.is_some_and(|tx| tx.send(how).is_ok())
    }

    /// CLIENT KILL: the connection ends at its next read.
    pub fn kill(&self) {
        self.killed.store(true, Relaxed);
        self.shutdown_socket(libc::SHUT_RDWR);
    }

    /// Node shutdown: no more requests are read; replies in progress are still written.
    pub fn stop_reading(&self) {
        self.shutdown_socket(libc::SHUT_RD);
    }

    fn shutdown_socket(&self, how: i32) {
        if let Some(fd) = *self.fd.lock().expect("fd lock") {
            // SAFETY: the descriptor is open: its owner clears `fd` under this lock first.
            unsafe { libc::shutdown(fd, how) };
        }
    }

    /// Called by the connection before it closes its socket.
    pub fn release_socket(&self) {
        self.fd.lock().expect("fd lock").take();
    }
}

#[derive(Default)]
pub struct ClientRegistry {
    next_id: AtomicU64,
    clients: Mutex<HashMap<u64, Arc<ClientHandle>>>,
}

impl ClientRegistry {
    pub fn register(&self, addr: SocketAddr, laddr: SocketAddr, fd: Option<RawFd>) -> Arc<ClientHandle> {
        let id = self.next_id.fetch_add(1, Relaxed) + 1;
        let h = Arc::new(ClientHandle {
            id,
            addr,
            laddr,
            created: Instant::now(),
            name: Mutex::new(String::new()),
            lib_name: Mutex::new(String::new()),
            lib_ver: Mutex::new(String::new()),
            user: Mutex::new("default".into()),
            db: AtomicUsize::new(0),
            resp: AtomicU8::new(2),
            last_cmd: AtomicUsize::new(usize::MAX),
            last_interaction: AtomicU64::new(crate::util::coarse_ms()),
            no_evict: AtomicBool::new(false),
            no_touch: AtomicBool::new(false),
            qbuf: AtomicUsize::new(0),
            subs: [AtomicUsize::new(0), AtomicUsize::new(0), AtomicUsize::new(0)],
            tracking: AtomicBool::new(false),
            killed: AtomicBool::new(false),
            fd: Mutex::new(fd),
            unblock: Mutex::new(None),
            held: AtomicBool::new(false),
        });
        self.clients.lock().expect("clients lock").insert(id, h.clone());
        h
    }

    pub fn unregister(&self, id: u64) {
        self.clients.lock().expect("clients lock").remove(&id);
    }

    pub fn count(&self) -> usize {
        self.clients.lock().expect("clients lock").len()
    }

    pub fn get(&self, id: u64) -> Option<Arc<ClientHandle>> {
        self.clients.lock().expect("clients lock").get(&id).cloned()
    }

    pub fn exists(&self, id: u64) -> bool {
        self.clients.lock().expect("clients lock").contains_key(&id)
    }

    pub fn all(&self) -> Vec<Arc<ClientHandle>> {
        let mut v: Vec<_> = self.clients.lock().expect("clients lock").values().cloned().collect();
        v.sort_by_key(|c| c.id);
        v
    }
}

/// What SHUTDOWN asked for about saving.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShutdownSave {
    /// Save if `save` points are configured (Redis's rule).
    Default,
    Save,
    NoSave,
}

/// CLIENT PAUSE state: until when, and whether only writes wait.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pause {
    /// Milliseconds since node start at which the pause ends; 0 when not paused.
    pub until_ms: u64,
    pub writes_only: bool,
}

pub struct Node {
    pub config: Config,
    pub live: LiveConfig,
    pub shards: Vec<crate::shard::Shard>,
    pub route: Arc<SlotRoute>,
    pub clients: ClientRegistry,
    pub stats: NodeStats,
    pub started: Instant,
    pub started_unix_ms: u64,
    pub run_id: String,
    pub node_id: String,
    pub port: AtomicU16,
    pub shutdown: watch::Sender<bool>,
    pub pause: watch::Sender<Pause>,
    /// `pause.until_ms`, readable without a lock on every command; 0 when not paused.
    pub pause_until: AtomicU64,
    /// Serializes the enqueueing of lease requests (see `lease`).
    lease_order: Mutex<()>,
    /// Connections admitted and not yet closed; checked against maxclients at accept time.
    pub admitted: AtomicUsize,
    pub memory: Arc<crate::memory::Memory>,
    /// Snapshot bookkeeping: last save, changes since, in progress.
    pub saves: Arc<crate::persist::snapshot::SaveState>,
    /// How a shutdown treats the snapshot: `Default` follows the `save` setting.
    pub shutdown_save: Mutex<ShutdownSave>,
    pub pubsub: Arc<crate::pubsub::PubSub>,
    pub notifier: Arc<crate::notify::Notifier>,
    pub tracking: Arc<crate::tracking::Tracking>,
    /// The write-ahead log (its writer runs only with appendonly on).
    pub wal: Arc<crate::persist::wal::Wal>,
    pub backups: Arc<crate::persist::backup::Backups>,
    /// Users and permissions.
    pub acl: Arc<crate::acl::Acl>,
    /// TLS for the --tls-port, when it is on.
    pub tls: Option<Arc<crate::gateway::tls::Tls>>,
    /// client-output-buffer-limit, per client class.
    pub output_limits: Arc<crate::gateway::output_limit::OutputLimits>,
    pub slowlog: Arc<crate::slowlog::SlowLog>,
    /// The Lua VM and script cache.
    pub scripts: crate::script::Scripts,
    /// Clients in MONITOR mode.
    pub monitors: crate::monitor::Monitors,
}

/// The node-wide services shards share, made before the shards start.
pub struct Services {
    pub notifier: Arc<crate::notify::Notifier>,
    pub tracking: Arc<crate::tracking::Tracking>,
    pub memory: Arc<crate::memory::Memory>,
    pub wal: Arc<crate::persist::wal::Wal>,
    pub backups: Arc<crate::persist::backup::Backups>,
    pub acl: Arc<crate::acl::Acl>,
    pub tls: Option<Arc<crate::gateway::tls::Tls>>,
    pub slowlog: Arc<crate::slowlog::SlowLog>,
    pub scripts: crate::script::Scripts,
}

impl Node {
    pub fn new(
        config: Config,
        shards: Vec<crate::shard::Shard>,
        route: Arc<SlotRoute>,
        node_id: String,
        services: Services,
    ) -> Node {
        let Services { notifier, tracking, memory, wal, backups, acl, tls, slowlog, scripts } = services;
        let live = LiveConfig {
            maxclients: AtomicUsize::new(config.maxclients),
            timeout: AtomicU64::new(config.timeout),
            tcp_keepalive: AtomicU64::new(config.tcp_keepalive),
            proto_max_bulk_len: AtomicU64::new(config.proto_max_bulk_len),
            client_query_buffer_limit: AtomicU64::new(config.client_query_buffer_limit),
            passive: RwLock::new({
                let mut p = crate::cmd::config::passive_defaults();
                p.insert("save", config.save.clone());
                p.insert("requirepass", config.requirepass.clone().unwrap_or_default());
                p.insert("auto-aof-rewrite-percentage", config.auto_aof_rewrite_percentage.to_string());
                p.insert("auto-aof-rewrite-min-size", config.auto_aof_rewrite_min_size.to_string());
                p
            }),
            encodings: encoding_defaults(),
        };
        Node {
            live,
            shards,
            route,
            clients: ClientRegistry::default(),
            stats: NodeStats::new(),
            started: Instant::now(),
            started_unix_ms: crate::util::now_ms(),
            run_id: crate::util::random_hex40(),
            node_id,
            port: AtomicU16::new(config.port),
            shutdown: watch::channel(false).0,
            pause: watch::channel(Pause::default()).0,
            pause_until: AtomicU64::new(0),
            admitted: AtomicUsize::new(0),
            lease_order: Mutex::new(()),
            memory,
            saves: Arc::new(crate::persist::snapshot::SaveState::new(crate::util::now_ms() / 1000)),
            shutdown_save: Mutex::new(ShutdownSave::Default),
            pubsub: notifier.pubsub(),
            tracking,
            notifier,
            wal,
            backups,
            acl,
            tls,
            output_limits: Arc::default(),
            slowlog,
            monitors: Default::default(),
            scripts,
            config,
        }
    }

    /// Counts a command's run in the statistics and, if it was slow, in SLOWLOG.
    pub fn record_call(&self, spec: &CommandSpec, req: &Request, nanos: u64, failed: bool, client: &ClientHandle) {
        self.stats.record(spec.id, nanos, failed);
        self.slowlog.observe(nanos, spec, req, Some(client));
    }

    pub fn uptime_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    #[inline]
    pub fn exec_settings(&self) -> ExecSettings {
        ExecSettings {
            proto_max_bulk_len: self.live.proto_max_bulk_len.load(Relaxed) as usize,
            mc_max_item_size: self.config.memcache.max_item_size as usize,
            databases: self.config.databases,
            policy: self.memory.policy(),
            enc: self.live.encodings(),
            client: 0,
        }
    }

    /// Runs a connection's pending batches (at most one per shard) and puts each, answered,
    /// in `done` at its shard's index. `in_flight` is the caller's scratch space.
    ///
    /// Work runs here, shard by shard, when those shards are idle: a hand-off to an actor and
    /// back costs more than a few commands (a multi-key get, a short pipeline), and on a busy
    /// machine the other cores have their own connections to serve. A long round for several
    /// shards goes to their actors, so the shards run it in parallel while the connection
    /// waits.
    pub async fn run_batches(
        &self,
        pending: &mut [Option<Box<crate::shard::Batch>>],
        done: &mut [Option<(Box<crate::shard::Batch>, usize)>],
        in_flight: &mut Vec<(usize, tokio::sync::oneshot::Receiver<Box<crate::shard::Batch>>)>,
    ) {
        let (shards, cmds) = pending.iter().flatten().fold((0, 0), |(n, c), b| (n + 1, c + b.cmds.len()));
        let here = shards == 1 || cmds <= RUN_HERE_MAX;
        for (s, slot) in pending.iter_mut().enumerate() {
            if let Some(mut b) = slot.take() {
                if here && self.shards[s].run_here(&self.route, &mut b) {
                    done[s] = Some((b, 0));
                    continue;
                }
                let (tx, rx) = tokio::sync::oneshot::channel();
                b.reply = Some(tx);
                if self.shards[s].cast(crate::shard::ShardMsg::Batch(b)).is_ok() {
                    in_flight.push((s, rx));
                }
            }
        }
        for (s, rx) in in_flight.drain(..) {
            if let Ok(b) = rx.await {
                done[s] = Some((b, 0));
            }
        }
    }

    /// Borrows the states of the given shards for one atomic multi-shard command. The states
    /// go back when the leases are dropped.
    ///
    /// Deadlock freedom: the lease requests of one command are put in the shards' mailboxes
    /// under one global lock, so every shard sees the lease requests of all commands in the
    /// same order (mailboxes are FIFO), and no two borrowers can each hold what the other
    /// waits for. This is ascending-order locking without its cost: the shards are asked all
    /// at once and answer in parallel, one round trip instead of one per shard.
    ///
    /// First, though, shards that are all idle are leased right here, with no round trip at
    /// all. That never waits while holding a shard (one that is busy ends the attempt and
    /// lets go of the others), so it cannot take part in a deadlock.
    pub async fn lease(&self, ids: &[usize]) -> Leases {
        let mut ids = ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        self.lease_sorted(ids.iter().copied()).await
    }

    /// Every shard, leased (see `lease`): what a script runs over.
    pub async fn lease_all(&self) -> Leases {
        self.lease_sorted(0..self.shards.len()).await
    }

    /// `lease` of shard ids already in ascending order, without repeats.
    async fn lease_sorted(&self, ids: impl ExactSizeIterator<Item = usize> + Clone) -> Leases {
        let here: Vec<Lease> = ids.clone().map_while(|id| self.shards[id].try_lease()).collect();
        if here.len() == ids.len() {
            return Leases(here);
        }
        drop(here);
        let mut pending = Vec::with_capacity(ids.len());
        {
            let _order = self.lease_order.lock().expect("lease order lock");
            for id in ids {
                let (tx, rx) = oneshot::channel();
                self.shards[id].cast(ShardMsg::Lease(tx)).expect("shard actor alive");
                pending.push(rx);
            }
        }
        let mut leases = Leases(Vec::with_capacity(pending.len()));
        for rx in pending {
            leases.push(rx.await.expect("shard actor answers leases"));
        }
        leases
    }

    /// Runs `f` on every shard (concurrently, not atomically) and collects the results in
    /// shard order.
    pub async fn broadcast<T, F>(&self, f: F) -> Vec<T>
    where
        T: Send + 'static,
        F: Fn(&mut ShardState) -> T + Send + Sync + Clone + 'static,
    {
        let mut rxs = Vec::with_capacity(self.shards.len());
        for shard in &self.shards {
            let (tx, rx) = oneshot::channel();
            let f = f.clone();
            let job: crate::shard::RunFn = Box::new(move |st| {
                let _ = tx.send(f(st));
            });
            shard.cast(ShardMsg::Run(job)).expect("shard actor alive");
            rxs.push(rx);
        }
        let mut out = Vec::with_capacity(rxs.len());
        for rx in rxs {
            out.push(rx.await.expect("shard actor answers"));
        }
        out
    }

    /// Runs `f` on one shard and returns its result.
    pub async fn broadcast_one<T, F>(&self, shard: usize, f: F) -> T
    where
        T: Send + 'static,
        F: FnOnce(&mut ShardState) -> T + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: crate::shard::RunFn = Box::new(move |st| {
            let _ = tx.send(f(st));
        });
        self.shards[shard].cast(ShardMsg::Run(job)).expect("shard actor alive");
        rx.await.expect("shard actor answers")
    }

    /// Statistics of every shard plus the gateway's own, summed.
    pub async fn aggregate_stats(&self) -> ShardStats {
        let parts = self.broadcast(|st| st.stats.clone()).await;
        let mut agg = ShardStats::new(table().stat_slots());
        for p in &parts {
            agg.merge(p);
        }
        self.stats.merge_into(&mut agg);
        agg
    }

    /// Sets the CLIENT PAUSE state.
    pub fn set_pause(&self, f: impl FnOnce(&mut Pause)) {
        self.pause.send_modify(|p| {
            f(p);
            self.pause_until.store(p.until_ms, Relaxed);
        });
    }

    pub fn is_shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }
}

/// Per-command totals for INFO commandstats: (name, stat) for commands that were called.
pub fn called_commands(stats: &ShardStats) -> Vec<(String, CommandStat)> {
    let t = table();
    stats
        .commands
        .iter()
        .enumerate()
        .filter(|(_, c)| c.calls > 0 || c.failed > 0 || c.rejected > 0)
        .map(|(i, c)| (t.name_of(i).to_string(), c.clone()))
        .collect()
}
