//! BACKUP RESTORE (and DEBUG RELOAD): replaces all data of a running node with a backup's
//! (or an RDB file's), function libraries included.
//!
//! The backup is downloaded, decrypted and parsed into fresh shard states first, so a bad
//! backup leaves the node as it was. Then every shard is held while its databases are swapped
//! for the restored ones, and, before any shard runs again, the restored snapshot becomes the
//! node's own: `dump.rdb`, and with the write-ahead log on, the log's new base at a cut. A
//! crash after the reply comes back to the restored data, never to the old.

use super::{BackupError, Meta};
use crate::cmd::table::table;
use crate::node::Node;
use crate::persist::wal;
use crate::shard::ShardState;
use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use tracing::info;

pub async fn restore(node: &Arc<Node>, which: &str) -> Result<Meta, BackupError> {
    let backups = node.backups.clone();
    if backups.running.swap(true, Relaxed) {
        return Err(BackupError::InProgress);
    }
    backups.phase("restore");
    let result = replace_all(node, which).await;
    backups.phase("idle");
    if result.is_ok() {
        backups.note_restore();
    }
    backups.running.store(false, Relaxed);
    result
}

async fn replace_all(node: &Arc<Node>, which: &str) -> Result<Meta, BackupError> {
    let started = std::time::Instant::now();
    let (meta, rdb) = node.backups.fetch(which).await?;
    replace_with_rdb(node, &rdb).await?;
    node.backups.forget(&meta);
    info!(id = %meta.id, keys = meta.keys, elapsed_ms = started.elapsed().as_millis() as u64, "backup restored");
    Ok(meta)
}

/// Replaces all data with the RDB file's (a backup's, or DEBUG RELOAD's dump.rdb), which
/// becomes the node's snapshot and, with the log on, the log's base.
pub async fn replace_with_rdb(node: &Arc<Node>, rdb: &Path) -> Result<(), BackupError> {
    let (route, shards, databases) = (node.route.clone(), node.shards.len(), node.config.databases);
    let (path, rdb) = (rdb.to_path_buf(), rdb.to_path_buf());
    let (staged, functions) = tokio::task::spawn_blocking(move || {
        let mut states: Vec<Box<ShardState>> =
            (0..shards).map(|i| Box::new(ShardState::new(i, databases, table().stat_slots()))).collect();
        crate::persist::load::load_rdb(&path, &mut states, &route).map(|l| (states, l.functions))
    })
    .await
    .map_err(|e| BackupError::Load(e.to_string()))?
    .map_err(|e| BackupError::Load(e.to_string()))?;
    // The file's function libraries replace the node's, all or nothing, before any data does.
    // A file without any (an older Shoal's backup) leaves them.
    if !functions.is_empty() {
        crate::cmd::functions::replace_all(&node.scripts, &node.config.data_dir, functions)
            .await
            .map_err(|e| BackupError::Load(format!("function libraries: {e}")))?;
    }

    // No background snapshot may walk the databases about to be replaced: wait for one under
    // way, and keep others from starting.
    while node.saves.in_progress.swap(true, Relaxed) {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let mut leases = node.lease_all().await;
    let now = crate::util::now_ms();
    let mut old = Vec::with_capacity(staged.len());
    for (l, mut new) in leases.iter_mut().zip(staged) {
        let st = l.state();
        for d in 0..st.dbs.len() {
            st.touch_all_watched(d, None, now);
        }
        std::mem::swap(&mut st.dbs, &mut new.dbs);
        let clock = st.clock;
        st.set_clock(clock);
        old.push(new);
    }
    let cut = node.wal.is_on().then(|| node.wal.cut());
    let (data_dir, wal) = (node.config.data_dir.clone(), node.wal.clone());
    let adopted = tokio::task::spawn_blocking(move || {
        let r = adopt(&rdb, &data_dir, &wal, cut);
        // The shards run again only once the restored data is the node's own.
        drop(leases);
        drop(old);
        r
    })
    .await
    .map_err(|e| BackupError::Load(e.to_string()));
    node.saves.in_progress.store(false, Relaxed);
    adopted?
}

/// Makes the restored snapshot the node's: `dump.rdb`, and the log's base at `cut`.
fn adopt(rdb: &Path, data_dir: &Path, wal: &wal::Wal, cut: Option<u64>) -> Result<(), BackupError> {
    let copy = |to: &Path| {
        crate::persist::snapshot::write_atomically(to, |f| {
            let mut from = std::fs::File::open(rdb)?;
            let bytes = std::io::copy(&mut from, f)?;
            Ok(crate::persist::snapshot::Saved { keys: 0, bytes })
        })
        .map_err(|e| BackupError::Io { path: to.to_path_buf(), source: std::io::Error::other(e.to_string()) })
    };
    let dump = data_dir.join(crate::persist::snapshot::FILE_NAME);
    if rdb != dump {
        copy(&dump)?;
    }
    if let Some(at) = cut {
        let saved = copy(&wal.dir.join(wal::format::base_name(at)))?;
        wal::write_manifest(&wal.dir, at).map_err(|e| BackupError::Load(e.to_string()))?;
        wal::remove_older_than(&wal.dir, at);
        wal.note_base(at, saved.bytes);
    }
    Ok(())
}

/// At start-up with `--restore-from`: whether the data directory holds nothing to load, so
/// the backup should be.
pub fn data_dir_is_empty(data_dir: &Path) -> bool {
    !data_dir.join(crate::persist::snapshot::FILE_NAME).exists() && !wal::recover::exists(&data_dir.join(wal::DIR_NAME))
}
