//! Starting and stopping a node: shard actors, listeners, metrics, signals, graceful shutdown.

use crate::cmd::table::table;
use crate::config::Config;
use crate::gateway::listener::{self, Service};
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
    #[error("cannot start the Memcached connection threads: {0}")]
    ConnThreads(std::io::Error),
    #[error(transparent)]
    Load(#[from] crate::persist::load::LoadError),
    #[error("cannot start the Lua VM: {0}")]
    Scripts(#[from] crate::script::ScriptError),
    #[error("function libraries: {0}")]
    Functions(String),
    #[error(transparent)]
    Backup(#[from] crate::persist::backup::BackupError),
    #[error("cannot load the ACL file: {0}")]
    AclFile(String),
    #[error(transparent)]
    Tls(#[from] crate::gateway::tls::TlsError),
    #[error(transparent)]
    Restrict(#[from] crate::acl::restrict::RestrictError),
    #[error("--tls-port needs --tls-cert-file and --tls-key-file (or --tls-self-signed for a trial)")]
    TlsFiles,
    #[error("refusing to serve public address(es) {0:?} without TLS: a public endpoint must encrypt its traffic. Give --tls-port with --tls-cert-file and --tls-key-file (or --tls-self-signed for a trial), bind a private address (127.0.0.1, 10.x, 192.168.x, ...), or pass --insecure-public to accept plain text")]
    PublicWithoutTls(Vec<String>),
    #[error("refusing to serve Memcached clients on public address(es) {0:?}: the Memcached protocols send keys and values in the clear and, without --memcached-auth, let anyone in. Bind a private address (127.0.0.1, 10.x, 192.168.x, ...), or give --memcached-auth with --memcached-tls")]
    PublicMemcache(Vec<String>),
    #[error("cannot keep the passkey in {path}: {source}")]
    Passkey { path: std::path::PathBuf, source: std::io::Error },
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

/// TLS for --tls-port, from the configured files or a self-signed certificate.
fn tls(config: &Config) -> Result<Option<Arc<crate::gateway::tls::Tls>>, ServerError> {
    use crate::gateway::tls::{self, Tls, TlsFiles};
    if config.tls_port == 0 && !config.memcache.tls {
        return Ok(None);
    }
    let (cert, key) = match (&config.tls_cert_file, &config.tls_key_file) {
        (Some(c), Some(k)) => (c.clone(), k.clone()),
        (None, None) if config.tls_self_signed => tls::self_signed(&config.data_dir)?,
        _ => return Err(ServerError::TlsFiles),
    };
    let files = TlsFiles { cert, key, ca: config.tls_ca_cert_file.clone(), auth_clients: config.tls_auth_clients };
    Ok(Some(Arc::new(Tls::new(files)?)))
}

/// The users a node starts with: the --aclfile's, and --requirepass as the default user's
/// password.
fn users(config: &Config) -> Result<crate::acl::Acl, ServerError> {
    let managed = config.managed.as_ref().map(|(admin, scripts)| (admin.as_str(), *scripts));
    let restrict = crate::acl::restrict::Restrictions::new(&config.deny_commands, managed, &config.rename_command)?;
    let acl = crate::acl::Acl::new().with_restrictions(restrict);
    if let Some(path) = &config.aclfile {
        if path.exists() {
            let records = crate::cmd::acl::read_aclfile(path).map_err(ServerError::AclFile)?;
            acl.replace(&records).map_err(|e| ServerError::AclFile(e.to_string()))?;
            info!(path = %path.display(), users = records.users.len(), "loaded ACL users");
        }
    }
    if let Some(pass) = config.requirepass.as_deref().filter(|p| !p.is_empty()) {
        acl.set_user("default", &["resetpass", &format!(">{pass}")])
            .map_err(|e| ServerError::AclFile(e.to_string()))?;
    }
    Ok(acl)
}

/// A public endpoint (or `--passkey auto`) whose default user has no password gets the
/// node's passkey. Its URI is printed once, on stdout and never in the logs, when it is made.
fn give_passkey(acl: &crate::acl::Acl, config: &Config) -> Result<(), ServerError> {
    if acl.get("default").is_some_and(|u| !u.nopass && !u.passwords.is_empty()) {
        return Ok(());
    }
    let path = config.data_dir.join(crate::acl::passkey::FILE_NAME);
    let (key, made) = crate::acl::passkey::load_or_create(&config.data_dir)
        .map_err(|source| ServerError::Passkey { path: path.clone(), source })?;
    acl.set_user("default", &["resetpass", &format!(">{key}")]).map_err(|e| ServerError::AclFile(e.to_string()))?;
    if made {
        let (scheme, port) = if config.tls_port != 0 { ("rediss", config.tls_port) } else { ("redis", config.port) };
        let host = config.bind.first().map(String::as_str).unwrap_or("127.0.0.1");
        println!("{scheme}://default:{key}@{host}:{port}");
        info!(path = %path.display(), "generated the default user's passkey; its URI was printed on stdout");
    } else {
        info!(path = %path.display(), "the default user's passkey is in effect");
    }
    Ok(())
}

/// `--restore-from`: the backup to load, fetched, when the data directory holds nothing yet.
async fn restore_at_start(
    backups: &crate::persist::backup::Backups,
    which: &str,
    data_dir: &Path,
) -> Result<Option<std::path::PathBuf>, ServerError> {
    use crate::persist::backup::BackupError;
    if !crate::persist::backup::restore::data_dir_is_empty(data_dir) {
        info!(data_dir = %data_dir.display(), "the data directory has data; --restore-from is not used");
        return Ok(None);
    }
    match backups.fetch(which).await {
        Ok((meta, path)) => {
            info!(id = %meta.id, keys = meta.keys, "restoring a backup into the empty data directory");
            Ok(Some(path))
        }
        Err(BackupError::NotFound(_)) if which.eq_ignore_ascii_case("latest") => {
            warn!("--restore-from latest: there are no backups yet; starting empty");
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
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
    let public = crate::gateway::endpoint::is_public(&config.bind);
    if public && config.tls_port == 0 && !config.insecure_public {
        return Err(ServerError::PublicWithoutTls(config.bind.clone()));
    }
    let tls = tls(&config)?;
    // A public endpoint speaks TLS only: the plain port stays closed.
    let plain = !public || config.insecure_public;
    if !plain {
        info!(port = config.port, "public endpoint: the plain port is not served, only --tls-port");
    }
    let mc = &config.memcache;
    if mc.port != 0 && public && !(mc.auth && mc.tls) {
        return Err(ServerError::PublicMemcache(config.bind.clone()));
    }
    let listeners =
        if plain { listener::bind(&config.bind, config.port, false, Service::Resp).await? } else { Vec::new() };
    let mc_listeners = match mc.port {
        0 => Vec::new(),
        port => listener::bind(&config.bind, port, mc.tls, Service::Memcache).await?,
    };
    let tls_listeners = match &tls {
        Some(_) if config.tls_port != 0 => listener::bind(&config.bind, config.tls_port, true, Service::Resp).await?,
        _ => Vec::new(),
    };
    let port = listeners.first().and_then(|l| l.local_addr().ok()).map(|a| a.port()).unwrap_or(config.port);
    let route = Arc::new(SlotRoute::even(config.shards));
    let mut shard_refs = Vec::new();
    let mut shard_handles = Vec::new();
    let pubsub = Arc::new(crate::pubsub::PubSub::default());
    let notifier = Arc::new(crate::notify::Notifier::new(pubsub.clone()));
    let tracking = Arc::new(crate::tracking::Tracking::new(pubsub));
    let memory = crate::memory::Memory::new(config.maxmemory, config.maxmemory_policy, config.shards);
    let slowlog = Arc::new(crate::slowlog::SlowLog::new(config.slowlog_log_slower_than, config.slowlog_max_len));
    let scripts = crate::script::Scripts::new()?;
    scripts.set_busy_after_ms(config.busy_reply_threshold);
    let kept = crate::cmd::functions::load_kept(
        &mut scripts.engine().await.expect("no script runs before the node starts"),
        &config.data_dir,
    )
    .map_err(ServerError::Functions)?;
    if let Some(n) = kept.as_ref().map(Vec::len).filter(|&n| n > 0) {
        tracing::info!(libraries = n, "function libraries loaded");
    }
    memory.start_sampler();
    let mut states: Vec<Box<ShardState>> =
        (0..config.shards).map(|i| Box::new(ShardState::new(i, config.databases, table().stat_slots()))).collect();
    let wal = crate::persist::wal::Wal::new(&config.data_dir, config.appendfsync, config.wal_segment_size);
    let settings = crate::cmd::exec::ExecSettings {
        proto_max_bulk_len: config.proto_max_bulk_len as usize,
        mc_max_item_size: config.memcache.max_item_size as usize,
        databases: config.databases,
        policy: crate::memory::Policy::NoEviction,
        enc: crate::shard::types::Encodings::default(),
        client: 0,
    };
    let backups = Arc::new(crate::persist::backup::Backups::new(config.backup.clone(), &config.data_dir)?);
    let acl = Arc::new(users(&config)?);
    if public || config.passkey_auto {
        give_passkey(&acl, &config)?;
    }
    let import = match (&config.import_rdb, &config.restore_from) {
        (Some(path), _) => Some(path.clone()),
        (None, Some(which)) => restore_at_start(&backups, which, &config.data_dir).await?,
        (None, None) => None,
    };
    // Reading and decoding large files is disk and CPU work: off the runtime's threads.
    let (c, w, r, k) = (config.clone(), wal.clone(), route.clone(), kept.clone());
    let (s, loaded) = tokio::task::spawn_blocking(move || {
        crate::persist::load::startup(&c, import, &w, &mut states, &r, settings, k.as_deref()).map(|l| (states, l))
    })
    .await
    .map_err(|e| ServerError::Shard { shard: 0, message: format!("start-up load panicked: {e}") })??;
    states = s;
    if kept.is_none() && !loaded.functions.is_empty() {
        // A node that keeps no libraries of its own takes the loaded file's (a Redis RDB, a
        // backup restored at start-up).
        let n = loaded.functions.len();
        crate::cmd::functions::replace_all(&scripts, &config.data_dir, loaded.functions)
            .await
            .map_err(ServerError::Functions)?;
        tracing::info!(libraries = n, "function libraries loaded from the rdb file");
    }
    for (i, mut state) in states.into_iter().enumerate() {
        if wal.is_on() {
            state.changes.set_wal(Some(wal.clone()));
        }
        state.notifier = Some(notifier.clone());
        state.tracking = Some(tracking.clone());
        state.memory = Some(memory.clone());
        state.slowlog = Some(slowlog.clone());
        let slot = Arc::new(crate::shard::StateSlot::new(Some(state)));
        let (actor, handle) = Actor::spawn(
            None,
            ShardActor,
            ShardArgs { slot: slot.clone(), route: route.clone(), busy: scripts.busy_check() },
        )
        .await
        .map_err(|e| ServerError::Shard { shard: i, message: e.to_string() })?;
        shard_refs.push(Shard::new(actor, slot));
        shard_handles.push(handle);
    }
    let id = node_id(&config.data_dir);
    let metrics_addr = (config.metrics_port != 0).then(|| format!("{}:{}", config.metrics_bind, config.metrics_port));
    let shutdown_timeout = Duration::from_secs(config.shutdown_timeout);
    let node = Arc::new(Node::new(
        config,
        shard_refs,
        route,
        id,
        crate::node::Services { notifier, tracking, memory, wal, backups, acl, tls, slowlog, scripts },
    ));
    node.port.store(port, std::sync::atomic::Ordering::Relaxed);
    node.saves.loaded_keys.store(loaded.keys, std::sync::atomic::Ordering::Relaxed);
    node.saves.loaded_expired.store(loaded.expired, std::sync::atomic::Ordering::Relaxed);
    if let Some(addr) = metrics_addr {
        let l = tokio::net::TcpListener::bind(&addr)
            .await
            .map_err(|source| ServerError::Metrics { addr: addr.clone(), source })?;
        tokio::spawn(crate::metrics::serve(node.clone(), l));
    }
    tokio::spawn(crate::util::run_coarse_clock());
    tokio::spawn(crate::persist::snapshot::run_save_points(node.clone()));
    tokio::spawn(crate::persist::backup::run_schedule(node.clone()));
    for l in listeners {
        tokio::spawn(listener::accept_loop(node.clone(), l, None, Service::Resp, None));
    }
    for l in tls_listeners {
        tokio::spawn(listener::accept_loop(node.clone(), l, node.tls.clone(), Service::Resp, None));
    }
    let mc_tls = if node.config.memcache.tls { node.tls.clone() } else { None };
    if !mc_listeners.is_empty() {
        let threads = Arc::new(
            crate::gateway::conn_threads::ConnThreads::start(node.config.threads).map_err(ServerError::ConnThreads)?,
        );
        for l in mc_listeners {
            tokio::spawn(listener::accept_loop(
                node.clone(),
                l,
                mc_tls.clone(),
                Service::Memcache,
                Some(threads.clone()),
            ));
        }
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
    // Everything written is in the log and synced before the process ends.
    let wal = node.wal.clone();
    let _ = tokio::task::spawn_blocking(move || wal.stop()).await;
    for s in &node.shards {
        s.actor.stop(None);
    }
    for h in shard_handles {
        let _ = h.await;
    }
    info!("shutdown complete");
    Ok(())
}
