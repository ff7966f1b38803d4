//! Backups: point-in-time snapshots copied to a local directory or an S3-compatible object
//! store, encrypted at rest, kept for a number of days and up to a count, made on demand
//! (BACKUP NOW) or on a schedule, and restored into a running node (BACKUP RESTORE) or at
//! start-up into an empty data directory (`--restore-from`).
//!
//! A backup is the fork-less background snapshot (the dataset at one instant, with the
//! write-ahead log's offset at that instant in its metadata), encrypted with AES-256-GCM when a
//! key is configured, stored as `<prefix>/<id>/data` with `<prefix>/<id>/meta.json` beside it.
//! The metadata goes last, so a backup is listed only once its data is complete, and is
//! deleted first. Ids are the UTC start time plus a random suffix, so they sort by age.

pub mod crypt;
pub mod restore;
pub mod schedule;

use crate::node::Node;
use crate::persist::snapshot::{self, Purpose};
use futures_util::StreamExt;
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use parking_lot::Mutex;
use schedule::Schedule;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;
use tokio::io::AsyncWriteExt;
use tracing::{info, warn};

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("no backup destination: start the node with --backup-url")]
    NoDestination,
    #[error("a backup is already in progress")]
    InProgress,
    #[error("no backup '{0}'")]
    NotFound(String),
    #[error("backup destination {url}: {message}")]
    Destination { url: String, message: String },
    #[error("backup store: {0}")]
    Store(#[from] object_store::Error),
    #[error("backup file {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("backup {id}: {source}")]
    Crypt { id: String, source: crypt::CryptError },
    #[error("backup {id} is encrypted and no key is configured (--backup-key-file or SHOAL_BACKUP_KEY)")]
    NeedKey { id: String },
    #[error("backup snapshot: {0}")]
    Snapshot(String),
    #[error("backup metadata {path}: {message}")]
    Meta { path: String, message: String },
    #[error("restored data: {0}")]
    Load(String),
}

/// Where and how backups are kept (from the configuration).
#[derive(Clone, Debug, Default)]
pub struct BackupSettings {
    /// `s3://bucket/prefix`, or a local directory (`/path`, `file:///path`).
    pub url: Option<String>,
    /// An S3-compatible endpoint (MinIO, moto, ...) instead of AWS.
    pub s3_endpoint: Option<String>,
    pub s3_region: String,
    pub key: Option<[u8; 32]>,
    pub schedule: Schedule,
    /// Delete backups older than this many days (0: no age limit).
    pub retention_days: u64,
    /// Keep at most this many backups (0: no count limit).
    pub retention_count: u64,
}

/// What is stored beside each backup's data.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Meta {
    pub id: String,
    /// Unix milliseconds at the snapshot's point in time.
    pub created_ms: u64,
    pub node_id: String,
    pub keys: u64,
    /// Size of the snapshot, and of what was stored (after encryption).
    pub rdb_bytes: u64,
    pub stored_bytes: u64,
    pub encrypted: bool,
    /// The write-ahead log's offset at the snapshot's point in time.
    pub log_offset: u64,
    pub shoal_version: String,
}

/// BACKUP STATUS.
#[derive(Clone, Debug, Default)]
pub struct Status {
    /// idle, snapshot, encrypt, upload, retention, restore.
    pub phase: &'static str,
    pub current: Option<String>,
    pub last_id: Option<String>,
    pub last_ok: Option<bool>,
    pub last_error: Option<String>,
    pub last_duration_ms: u64,
    pub completed: u64,
    pub failed: u64,
    pub restores: u64,
    /// Unix seconds at which the last successful backup finished (0: none yet).
    pub last_success: u64,
}

pub struct Backups {
    pub settings: BackupSettings,
    store: Option<(Arc<dyn ObjectStore>, ObjPath)>,
    /// The directory, when the destination is local (emptied backup directories are removed).
    local_root: Option<PathBuf>,
    /// Where snapshots wait to be uploaded and downloads to be loaded.
    scratch: PathBuf,
    running: AtomicBool,
    status: Mutex<Status>,
    /// Unix seconds the last backup started (or the node did): the schedule counts from it.
    pub last_started: AtomicU64,
}

impl Backups {
    pub fn new(settings: BackupSettings, data_dir: &Path) -> Result<Backups, BackupError> {
        let store = settings.url.as_deref().map(|url| open_store(url, &settings)).transpose()?;
        if store.is_some() && settings.key.is_none() {
            warn!("backups are not encrypted: set --backup-key-file or SHOAL_BACKUP_KEY");
        }
        // What a backup or restore cut short by a stop left behind.
        let scratch = data_dir.join("backup-scratch");
        let _ = std::fs::remove_dir_all(&scratch);
        let local_root = settings
            .url
            .as_deref()
            .filter(|u| !u.starts_with("s3://"))
            .map(|u| PathBuf::from(u.strip_prefix("file://").unwrap_or(u)));
        Ok(Backups {
            settings,
            store,
            local_root,
            scratch,
            running: AtomicBool::new(false),
            status: Mutex::new(Status { phase: "idle", ..Status::default() }),
            last_started: AtomicU64::new(crate::util::now_ms() / 1000),
        })
    }

    pub fn status(&self) -> Status {
        self.status.lock().clone()
    }

    pub fn is_running(&self) -> bool {
        self.running.load(Relaxed)
    }

    fn store(&self) -> Result<&(Arc<dyn ObjectStore>, ObjPath), BackupError> {
        self.store.as_ref().ok_or(BackupError::NoDestination)
    }

    fn phase(&self, phase: &'static str) {
        self.status.lock().phase = phase;
    }

    /// Starts a backup in the background; returns its id.
    pub fn start(self: &Arc<Self>, node: &Arc<Node>) -> Result<String, BackupError> {
        self.store()?;
        if self.running.swap(true, Relaxed) {
            return Err(BackupError::InProgress);
        }
        let now = crate::util::now_ms();
        self.last_started.store(now / 1000, Relaxed);
        let id = format!("{}-{:04x}", schedule::timestamp(now / 1000), rand::random::<u16>());
        {
            let mut st = self.status.lock();
            st.phase = "snapshot";
            st.current = Some(id.clone());
        }
        let (me, node, bid) = (self.clone(), node.clone(), id.clone());
        tokio::spawn(async move {
            let started = Instant::now();
            let result = me.run(&node, &bid).await;
            let _ = std::fs::remove_dir_all(me.scratch.join(&bid));
            let mut st = me.status.lock();
            st.phase = "idle";
            st.current = None;
            st.last_id = Some(bid.clone());
            st.last_duration_ms = started.elapsed().as_millis() as u64;
            match result {
                Ok(meta) => {
                    info!(id = %bid, keys = meta.keys, bytes = meta.stored_bytes, elapsed_ms = st.last_duration_ms, "backup complete");
                    st.last_ok = Some(true);
                    st.last_error = None;
                    st.completed += 1;
                    st.last_success = crate::util::now_ms() / 1000;
                }
                Err(e) => {
                    warn!(id = %bid, error = %e, "backup failed");
                    st.last_ok = Some(false);
                    st.last_error = Some(e.to_string());
                    st.failed += 1;
                }
            }
            drop(st);
            me.running.store(false, Relaxed);
        });
        Ok(id)
    }

    /// Snapshot, encrypt, upload, describe, then apply retention.
    async fn run(&self, node: &Node, id: &str) -> Result<Meta, BackupError> {
        let (store, prefix) = self.store()?;
        let dir = self.scratch.join(id);
        std::fs::create_dir_all(&dir).map_err(|source| BackupError::Io { path: dir.clone(), source })?;
        let rdb = dir.join("snapshot.rdb");
        // One background snapshot at a time: a BGSAVE or rewrite under way is waited out.
        let started = loop {
            match snapshot::background(node, Purpose::Backup(rdb.clone())).await {
                Ok(s) => break s,
                Err(snapshot::SnapshotError::InProgress) => {
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await
                }
                Err(e) => return Err(BackupError::Snapshot(e.to_string())),
            }
        };
        let created_ms = crate::util::now_ms();
        let saved = started
            .done
            .await
            .map_err(|_| BackupError::Snapshot("the snapshot thread stopped".into()))?
            .map_err(BackupError::Snapshot)?;
        let data = match self.settings.key {
            Some(key) => {
                self.phase("encrypt");
                let (src, dst) = (rdb.clone(), dir.join("snapshot.enc"));
                let sealed = dst.clone();
                let bid = id.to_string();
                tokio::task::spawn_blocking(move || -> Result<(), BackupError> {
                    let io = |source| BackupError::Io { path: src.clone(), source };
                    let r = std::io::BufReader::new(std::fs::File::open(&src).map_err(io)?);
                    let w = std::io::BufWriter::new(std::fs::File::create(&dst).map_err(io)?);
                    crypt::encrypt(&key, r, w).map_err(|source| BackupError::Crypt { id: bid, source })?;
                    Ok(())
                })
                .await
                .map_err(|e| BackupError::Snapshot(e.to_string()))??;
                sealed
            }
            None => rdb.clone(),
        };
        self.phase("upload");
        let stored_bytes = upload(store, &prefix.clone().join(id).join("data"), &data).await?;
        let meta = Meta {
            id: id.to_string(),
            created_ms,
            node_id: node.node_id.clone(),
            keys: saved.keys,
            rdb_bytes: saved.bytes,
            stored_bytes,
            encrypted: self.settings.key.is_some(),
            log_offset: started.log_offset,
            shoal_version: env!("CARGO_PKG_VERSION").into(),
        };
        let json = serde_json::to_vec_pretty(&meta).expect("metadata serializes");
        store.put(&prefix.clone().join(id).join("meta.json"), PutPayload::from(json)).await?;
        self.phase("retention");
        self.apply_retention(id).await;
        Ok(meta)
    }

    /// Every complete backup, oldest first.
    pub async fn list(&self) -> Result<Vec<Meta>, BackupError> {
        let (store, prefix) = self.store()?;
        let mut objects = store.list(Some(prefix));
        let mut metas = Vec::new();
        while let Some(o) = objects.next().await {
            let o = o?;
            if o.location.filename() != Some("meta.json") {
                continue;
            }
            let bytes = store.get(&o.location).await?.bytes().await?;
            let meta: Meta = serde_json::from_slice(&bytes)
                .map_err(|e| BackupError::Meta { path: o.location.to_string(), message: e.to_string() })?;
            metas.push(meta);
        }
        metas.sort_by(|a, b| a.created_ms.cmp(&b.created_ms).then(a.id.cmp(&b.id)));
        Ok(metas)
    }

    /// Deletes what retention no longer keeps; never `keep` (the backup just made).
    async fn apply_retention(&self, keep: &str) {
        let Ok((store, prefix)) = self.store() else { return };
        let metas = match self.list().await {
            Ok(m) => m,
            Err(e) => {
                warn!(error = %e, "cannot list backups for retention");
                return;
            }
        };
        let now = crate::util::now_ms();
        let (days, count) = (self.settings.retention_days, self.settings.retention_count as usize);
        let newest_first: Vec<&Meta> = metas.iter().rev().collect();
        for (i, m) in newest_first.iter().enumerate() {
            let too_many = count > 0 && i >= count;
            let too_old = days > 0 && m.created_ms + days * 86_400_000 < now;
            if m.id == keep || !(too_many || too_old) {
                continue;
            }
            // The metadata first: a backup half deleted is never listed.
            let base = prefix.clone().join(m.id.as_str());
            let mut gone = store.delete(&base.clone().join("meta.json")).await;
            if gone.is_ok() {
                gone = store.delete(&base.clone().join("data")).await;
            }
            if let Some(root) = &self.local_root {
                let _ = std::fs::remove_dir(root.join(&m.id));
            }
            match gone {
                Ok(()) => info!(id = %m.id, too_old, too_many, "backup deleted by retention"),
                Err(e) => warn!(id = %m.id, error = %e, "cannot delete an expired backup"),
            }
        }
    }

    /// Downloads backup `which` (an id, or `latest`) and returns the path of its snapshot in
    /// the scratch directory, decrypted.
    pub async fn fetch(&self, which: &str) -> Result<(Meta, PathBuf), BackupError> {
        let (store, prefix) = self.store()?;
        let metas = self.list().await?;
        let meta =
            if which.eq_ignore_ascii_case("latest") { metas.last() } else { metas.iter().find(|m| m.id == which) };
        let meta = meta.cloned().ok_or_else(|| BackupError::NotFound(which.to_string()))?;
        if meta.encrypted && self.settings.key.is_none() {
            return Err(BackupError::NeedKey { id: meta.id });
        }
        let dir = self.scratch.join(format!("restore-{}", meta.id));
        std::fs::create_dir_all(&dir).map_err(|source| BackupError::Io { path: dir.clone(), source })?;
        let data = dir.join("data");
        let io = |source| BackupError::Io { path: data.clone(), source };
        let mut f = tokio::fs::File::create(&data).await.map_err(io)?;
        let mut body = store.get(&prefix.clone().join(meta.id.as_str()).join("data")).await?.into_stream();
        while let Some(chunk) = body.next().await {
            f.write_all(&chunk?).await.map_err(io)?;
        }
        f.flush().await.map_err(io)?;
        drop(f);
        let Some(key) = self.settings.key.filter(|_| meta.encrypted) else { return Ok((meta, data)) };
        let rdb = dir.join("snapshot.rdb");
        let (src, dst, id) = (data.clone(), rdb.clone(), meta.id.clone());
        tokio::task::spawn_blocking(move || -> Result<(), BackupError> {
            let io = |source| BackupError::Io { path: src.clone(), source };
            let r = std::io::BufReader::new(std::fs::File::open(&src).map_err(io)?);
            let w = std::io::BufWriter::new(std::fs::File::create(&dst).map_err(io)?);
            crypt::decrypt(&key, r, w).map_err(|source| BackupError::Crypt { id, source })?;
            let _ = std::fs::remove_file(&src);
            Ok(())
        })
        .await
        .map_err(|e| BackupError::Load(e.to_string()))??;
        Ok((meta, rdb))
    }

    /// Removes what `fetch` left in the scratch directory.
    pub fn forget(&self, meta: &Meta) {
        let _ = std::fs::remove_dir_all(self.scratch.join(format!("restore-{}", meta.id)));
    }

    pub fn note_restore(&self) {
        self.status.lock().restores += 1;
    }
}

/// Streams a local file into the store (multipart for large files); returns its size.
async fn upload(store: &Arc<dyn ObjectStore>, to: &ObjPath, from: &Path) -> Result<u64, BackupError> {
    let io = |source| BackupError::Io { path: from.to_path_buf(), source };
    let mut f = tokio::fs::File::open(from).await.map_err(io)?;
    let mut w = object_store::buffered::BufWriter::new(store.clone(), to.clone());
    let n = tokio::io::copy(&mut f, &mut w).await.map_err(io)?;
    w.shutdown().await.map_err(io)?;
    Ok(n)
}

/// The object store and key prefix a backup URL names.
fn open_store(url: &str, s: &BackupSettings) -> Result<(Arc<dyn ObjectStore>, ObjPath), BackupError> {
    let bad = |message: String| BackupError::Destination { url: url.to_string(), message };
    if let Some(rest) = url.strip_prefix("s3://") {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(bad("no bucket name".into()));
        }
        let mut b = object_store::aws::AmazonS3Builder::from_env().with_bucket_name(bucket).with_region(&s.s3_region);
        if let Some(endpoint) = &s.s3_endpoint {
            b = b.with_endpoint(endpoint).with_allow_http(endpoint.starts_with("http://"));
        }
        let store = b.build().map_err(|e| bad(e.to_string()))?;
        return Ok((Arc::new(store), ObjPath::from(prefix.trim_matches('/'))));
    }
    let dir = url.strip_prefix("file://").unwrap_or(url);
    std::fs::create_dir_all(dir).map_err(|e| bad(e.to_string()))?;
    let store = object_store::local::LocalFileSystem::new_with_prefix(dir).map_err(|e| bad(e.to_string()))?;
    Ok((Arc::new(store), ObjPath::from("")))
}

/// Runs for the node's life: starts the scheduled backups.
pub async fn run_schedule(node: Arc<Node>) {
    let backups = node.backups.clone();
    if backups.settings.schedule == Schedule::Off || backups.store.is_none() {
        return;
    }
    // Counted from the newest backup there is, so a restart does not reset the clock.
    if let Ok(metas) = backups.list().await {
        if let Some(m) = metas.last() {
            backups.last_started.store(m.created_ms / 1000, Relaxed);
        }
    }
    let mut every = tokio::time::interval(std::time::Duration::from_secs(10));
    loop {
        every.tick().await;
        if node.is_shutting_down() {
            return;
        }
        let now = crate::util::now_ms() / 1000;
        if !backups.is_running() && backups.settings.schedule.due(now, backups.last_started.load(Relaxed)) {
            match backups.start(&node) {
                Ok(id) => info!(id = %id, "scheduled backup started"),
                Err(e) => warn!(error = %e, "scheduled backup did not start"),
            }
        }
    }
}
