//! What a node loads at start-up, before it accepts clients, and how the write-ahead log
//! begins:
//!
//! - `--import-rdb FILE` loads that file (Redis's or ours), as does a backup fetched for
//!   `--restore-from`;
//! - otherwise, with `appendonly yes` and a log in the data directory, the log (its base
//!   snapshot plus the segments after it);
//! - otherwise `dump.rdb`, if there is one.
//!
//! With `appendonly yes` and no log to continue, a new log starts from what was loaded: a base
//! snapshot of it, then the manifest naming that base, then the first segment.

use super::rdb::RdbError;
use super::wal::{self, recover, Wal, WalError};
use crate::cmd::exec::ExecSettings;
use crate::config::Config;
use crate::shard::ShardState;
use crate::slots::SlotRoute;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tracing::info;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Rdb(#[from] RdbError),
    #[error("cannot load {path}: it uses database {db}, but --databases is {databases}")]
    Db { path: PathBuf, db: usize, databases: usize },
    #[error(transparent)]
    Wal(#[from] WalError),
}

/// What a load found.
#[derive(Debug, Default)]
pub struct Loaded {
    pub keys: u64,
    /// Keys skipped as expired.
    pub expired: u64,
    /// The function libraries' code the file held.
    pub functions: Vec<Vec<u8>>,
}

/// Loads an RDB file (Redis's, or a Shoal snapshot) into the shard states.
pub fn load_rdb(path: &Path, states: &mut [Box<ShardState>], route: &SlotRoute) -> Result<Loaded, LoadError> {
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
        let d = &mut states[shard].dbs[k.db];
        let id = d.set(&k.key, k.value, Some(k.expire_at));
        if k.mc_flags != 0 {
            d.items.set(id, crate::shard::item_meta::Meta { flags: k.mc_flags, ..Default::default() });
        }
    })?;
    if let Some(db) = bad_db {
        return Err(LoadError::Db { path: path.into(), db, databases });
    }
    info!(
        path = %path.display(),
        rdb_version = summary.version,
        keys = summary.keys - expired,
        expired_skipped = expired,
        libraries = summary.functions.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "loaded rdb file"
    );
    Ok(Loaded { keys: summary.keys - expired, expired, functions: summary.functions })
}

/// Loads what the node starts with (see the module doc) and, with `appendonly yes`, starts
/// the write-ahead log's writer where the log continues.
///
/// `kept` is the function libraries the node keeps in `functions.rdb`, when it has that file:
/// they are the node's, being written with every change, and a loaded file's are left. A node
/// without the file takes the loaded file's; `Loaded::functions` is what the node ends with.
pub fn startup(
    config: &Config,
    import: Option<PathBuf>,
    wal: &std::sync::Arc<Wal>,
    states: &mut [Box<ShardState>],
    route: &SlotRoute,
    settings: ExecSettings,
    kept: Option<&[Vec<u8>]>,
) -> Result<Loaded, LoadError> {
    let snapshot = config.data_dir.join(super::snapshot::FILE_NAME);
    if config.appendonly && import.is_none() && recover::exists(&wal.dir) {
        let r = recover::recover(&wal.dir, states, route, settings)?;
        let keys = states.iter().flat_map(|s| s.dbs.iter()).map(|d| d.len() as u64).sum();
        wal::remove_older_than(&wal.dir, r.base);
        wal.note_base(r.base, file_len(&wal.dir.join(wal::format::base_name(r.base))));
        wal.start(r.end)?;
        return Ok(Loaded { keys, expired: 0, functions: prefer_kept(r.functions, kept) });
    }
    let mut loaded = Loaded::default();
    if let Some(path) = import.or_else(|| snapshot.exists().then_some(snapshot)) {
        loaded = load_rdb(&path, states, route)?;
    }
    loaded.functions = prefer_kept(std::mem::take(&mut loaded.functions), kept);
    if config.appendonly {
        let states: Vec<&ShardState> = states.iter().map(|s| &**s).collect();
        let at = wal::fresh_offset(&wal.dir);
        wal::start_log_with_base(wal, &states, &loaded.functions, at)?;
    }
    Ok(loaded)
}

/// The libraries a node starts with: those it keeps, if it keeps any file of them, else the
/// loaded file's.
fn prefer_kept(loaded: Vec<Vec<u8>>, kept: Option<&[Vec<u8>]>) -> Vec<Vec<u8>> {
    match kept {
        Some(kept) => {
            if !loaded.is_empty() && loaded != kept {
                info!(
                    libraries = loaded.len(),
                    "function libraries in the loaded file differ from functions.rdb's, which are kept"
                );
            }
            kept.to_vec()
        }
        None => loaded,
    }
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}
