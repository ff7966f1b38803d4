//! Starting and stopping a node: shard actors, listeners, metrics, signals, graceful shutdown.

use crate::cmd::table::table;
use crate::config::Config;
use crate::gateway::listener;
use crate::node::Node;
use crate::shard::{Shard, ShardActor, ShardArgs, ShardState};
use crate::slots::SlotRoute;
use ractor::Actor;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::signal::unix::{signal, SignalKind};
use tracing::{info, warn};

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Listen(#[from] listener::ListenError),
    #[error("cannot start shard actor {shard}: {message}")]
    Shard { shard: usize, message: String },
    #[error("cannot bind metrics endpoint {addr}: {source}")]
    Metrics { addr: String, source: std::io::Error },
    #[error("cannot install signal handler: {0}")]
    Signal(std::io::Error),
    #[error("cannot import: {0}")]
    Import(#[from] crate::persist::rdb::RdbError),
    #[error("cannot import {path}: it uses database {db}, but --databases is {databases}")]
    ImportDb { path: std::path::PathBuf, db: usize, databases: usize },
}

/// Whether stopping writes a snapshot: SHUTDOWN SAVE / NOSAVE decide, otherwise Redis's rule
/// (save when `save` points are configured).
fn shutdown_saves(node: &Node) -> bool {
    match *node.shutdown_save.lock().expect("shutdown lock") {
        crate::node::ShutdownSave::Save => true,
        crate::node::ShutdownSave::NoSave => false,
        crate::node::ShutdownSave::Default => {
            node.live.passive.read().expect("config lock").get("save").is_some_and(|s| !s.trim().is_empty())
        }
    }
}

/// Loads an RDB file (Redis's, or a Shoal snapshot) into the shard states before they start;
/// returns the keys loaded and the keys skipped as expired.
fn import_rdb(path: &Path, states: &mut [Box<ShardState>], route: &SlotRoute) -> Result<(u64, u64), ServerError> {
    let started = Instant::now();
    let now = crate::util::now_ms();
    let databases = states[0].dbs.len();
    let (mut bad_db, mut expired) = (None, 0u64);
    let enc = crate::shard::types::Encodings::default();
    let summary = crate::persist::rdb::load(path, &enc, |k| {
        if k.db >= databases {
            bad_db.get_or_insert(k.db);
            return;
        }
        if k.expire_at != 0 && k.expire_at <= now {
            expired += 1;
            return;
        }
        let shard = route.shard_of_key(&k.key);
        states[shard].dbs[k.db].set(&k.key, k.value, Some(k.expire_at));
    })?;
    if let Some(db) = bad_db {
        return Err(ServerError::ImportDb { path: path.into(), db, databases });
    }
    if summary.skipped_functions > 0 {
        warn!(path = %path.display(), libraries = summary.skipped_functions, "function libraries in the rdb file were not loaded");
    }
    info!(
        path = %path.display(),
        rdb_version = summary.version,
        keys = summary.keys - expired,
        expired_skipped = expired,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "loaded rdb file"
    );
    Ok((summary.keys - expired, expired))
}

/// The node id persisted in the data directory, created on first start. A node that cannot
/// write its data directory still runs, with an id for this run only.
fn node_id(dir: &Path) -> String {
    let path = dir.join("node-id");
    if let Ok(id) = std::fs::read_to_string(&path) {
        let id = id.trim();
        if id.len() == 40 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return id.to_string();
        }
    }
    let id = crate::util::random_hex40();
    let saved = std::fs::create_dir_all(dir).and_then(|_| std::fs::write(&path, format!("{id}\n")));
    if let Err(e) = saved {
        warn!(path = %path.display(), error = %e, "cannot persist node id; it will change on restart");
    }
    id
}

/// Runs a node until SIGTERM, SIGINT or SHUTDOWN, then drains connections and returns.
pub async fn run(config: Config) -> Result<(), ServerError> {
    // Handlers first: a SIGTERM that arrives once clients can connect must shut down cleanly
    // (and save), not kill the process with the default action.
    let mut term = signal(SignalKind::terminate()).map_err(ServerError::Signal)?;
    let mut int = signal(SignalKind::interrupt()).map_err(ServerError::Signal)?;
    let listeners = listener::bind(&config.bind, config.port).await?;
    let port = listeners[0].local_addr().map(|a| a.port()).unwrap_or(config.port);
    let route = Arc::new(SlotRoute::even(config.shards));
    let mut shard_refs = Vec::new();
    let mut shard_handles = Vec::new();
    let pubsub = Arc::new(crate::pubsub::PubSub::default());
    let notifier = Arc::new(crate::notify::Notifier::new(pubsub.clone()));
    let tracking = Arc::new(crate::tracking::Tracking::new(pubsub));
    let memory = crate::memory::Memory::new(config.maxmemory, config.maxmemory_policy, config.shards);
    memory.start_sampler();
    let mut states: Vec<Box<ShardState>> =
        (0..config.shards).map(|i| Box::new(ShardState::new(i, config.databases, table().stat_slots()))).collect();
    // --import-rdb names a file to load; otherwise the node's own snapshot, if there is one.
    let snapshot = config.data_dir.join(crate::persist::snapshot::FILE_NAME);
    let load = config.import_rdb.clone().or_else(|| snapshot.exists().then_some(snapshot));
    let mut loaded = (0, 0);
    if let Some(path) = load {
        let r = route.clone();
        // Reading and decoding a large file is disk and CPU work: off the runtime's threads.
        let (s, counts) = tokio::task::spawn_blocking(move || import_rdb(&path, &mut states, &r).map(|c| (states, c)))
            .await
            .map_err(|e| ServerError::Shard { shard: 0, message: format!("rdb load panicked: {e}") })??;
        states = s;
        loaded = counts;
    }
    for (i, mut state) in states.into_iter().enumerate() {
        state.notifier = Some(notifier.clone());
        state.tracking = Some(tracking.clone());
        state.memory = Some(memory.clone());
        let slot = Arc::new(parking_lot::Mutex::new(Some(state)));
        let (actor, handle) = Actor::spawn(None, ShardActor, ShardArgs { slot: slot.clone(), route: route.clone() })
            .await
            .map_err(|e| ServerError::Shard { shard: i, message: e.to_string() })?;
        shard_refs.push(Shard::new(actor, slot));
        shard_handles.push(handle);
    }
    let id = node_id(&config.data_dir);
    let metrics_addr = (config.metrics_port != 0).then(|| format!("{}:{}", config.metrics_bind, config.metrics_port));
    let shutdown_timeout = Duration::from_secs(config.shutdown_timeout);
    let node = Arc::new(Node::new(config, shard_refs, route, id, notifier, tracking, memory));
    node.port.store(port, std::sync::atomic::Ordering::Relaxed);
    node.saves.loaded_keys.store(loaded.0, std::sync::atomic::Ordering::Relaxed);
    node.saves.loaded_expired.store(loaded.1, std::sync::atomic::Ordering::Relaxed);
    if let Some(addr) = metrics_addr {
        let l = tokio::net::TcpListener::bind(&addr)
            .await
            .map_err(|source| ServerError::Metrics { addr: addr.clone(), source })?;
        tokio::spawn(crate::metrics::serve(node.clone(), l));
    }
    tokio::spawn(crate::util::run_coarse_clock());
    tokio::spawn(crate::persist::snapshot::run_save_points(node.clone()));
    for l in listeners {
        tokio::spawn(listener::accept_loop(node.clone(), l));
    }
    info!(
        port,
        shards = node.shards.len(),
        node_id = %node.node_id,
        version = env!("CARGO_PKG_VERSION"),
        "ready to accept connections"
    );

    // `wait_for` looks at the current value first: a SHUTDOWN that arrived while the node
    // was still starting is not missed.
    let mut requested = node.shutdown.subscribe();
    tokio::select! {
        _ = term.recv() => info!("received SIGTERM, shutting down"),
        _ = int.recv() => info!("received SIGINT, shutting down"),
        _ = requested.wait_for(|&stop| stop) => {}
    }
    node.shutdown.send_replace(true);
    for c in node.clients.all() {
        c.stop_reading();
    }

    // Connections stop reading, finish what they parsed and close.
    let deadline = Instant::now() + shutdown_timeout;
    while node.clients.count() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    if node.clients.count() > 0 {
        warn!(clients = node.clients.count(), "shutdown timeout reached with clients still connected");
    }
    if shutdown_saves(&node) {
        // A background save under way is finished first; then a final one. A failed save is
        // logged by `save`; the node still stops, as asked.
        while node.saves.in_progress.load(std::sync::atomic::Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let _ = crate::persist::snapshot::save(&node).await;
    }
    for s in &node.shards {
        s.actor.stop(None);
    }
    for h in shard_handles {
        let _ = h.await;
    }
    info!("shutdown complete");
    Ok(())
}
