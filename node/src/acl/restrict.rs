//! Commands withheld from clients, whatever their ACL rules: `--deny-commands`, the `managed`
//! profile (what managed stores withhold from tenants, for every user but the admin user),
//! and Redis's `rename-command`. A withheld command answers as an unknown command, as a
//! renamed-away command does in Redis.

use crate::cmd::table::{table, CommandSpec};
use std::collections::HashMap;

/// What the `managed` profile withholds. Names this node does not have yet (FAILOVER,
/// MIGRATE, REPLICAOF, ...) are withheld when they arrive.
pub const MANAGED: &[&str] = &[
    "bgrewriteaof",
    "bgsave",
    "config",
    "debug",
    "failover",
    "migrate",
    "replicaof",
    "slaveof",
    "role",
    "save",
    "shutdown",
    "lastsave",
    "monitor",
    "acl",
    "backup",
    "module",
];

/// What `--managed-deny-scripts` adds to the profile.
pub const SCRIPTS: &[&str] = &["eval", "evalsha", "eval_ro", "evalsha_ro", "script", "function", "fcall", "fcall_ro"];

#[derive(Debug, thiserror::Error)]
pub enum RestrictError {
    #[error("unknown command '{0}' in --deny-commands")]
    UnknownDenied(String),
    #[error("--rename-command '{0}': expected OLD=NEW (NEW empty to disable OLD)")]
    BadRename(String),
    #[error("--rename-command: unknown command '{0}'")]
    UnknownRenamed(String),
}

#[derive(Default)]
pub struct Restrictions {
    /// A bit per command id: withheld from everyone (--deny-commands).
    denied: Vec<u64>,
    /// A bit per command id: withheld by the managed profile, from all but `admin`.
    managed: Vec<u64>,
    admin: Option<String>,
    /// A bit per command id: reachable only under its new name.
    hidden: Vec<u64>,
    renamed: HashMap<Vec<u8>, &'static CommandSpec>,
}

fn set(bits: &mut Vec<u64>, id: usize) {
    if bits.len() <= id / 64 {
        bits.resize(id / 64 + 1, 0);
    }
    bits[id / 64] |= 1 << (id % 64);
}

fn has(bits: &[u64], id: usize) -> bool {
    bits.get(id / 64).is_some_and(|w| w & (1 << (id % 64)) != 0)
}

impl Restrictions {
    /// `deny`: names from --deny-commands (must exist); `managed`: the profile with its admin
    /// user; `renames`: `OLD=NEW` pairs.
    pub fn new(
        deny: &[String],
        managed: Option<(&str, bool)>,
        renames: &[String],
    ) -> Result<Restrictions, RestrictError> {
        let t = table();
        let mut r = Restrictions::default();
        let withhold = |bits: &mut Vec<u64>, spec: &CommandSpec| {
            set(bits, spec.id);
            spec.subcommands.iter().for_each(|s| set(bits, s.id));
        };
        for name in deny {
            let spec = t.lookup(name.as_bytes()).ok_or_else(|| RestrictError::UnknownDenied(name.clone()))?;
            withhold(&mut r.denied, spec);
        }
        if let Some((admin, scripts)) = managed {
            let names = MANAGED.iter().chain(if scripts { SCRIPTS } else { &[] });
            names.filter_map(|n| t.lookup(n.as_bytes())).for_each(|spec| withhold(&mut r.managed, spec));
            r.admin = Some(admin.to_string());
        }
        for pair in renames {
            let (old, new) = pair.split_once('=').ok_or_else(|| RestrictError::BadRename(pair.clone()))?;
            let spec = t.lookup(old.as_bytes()).ok_or_else(|| RestrictError::UnknownRenamed(old.to_string()))?;
            set(&mut r.hidden, spec.id);
            if !new.is_empty() {
                r.renamed.insert(new.to_ascii_lowercase().into_bytes(), spec);
            }
        }
        Ok(r)
    }

    /// Whether there is nothing to check.
    pub fn is_empty(&self) -> bool {
        self.denied.is_empty() && self.managed.is_empty() && self.hidden.is_empty()
    }

    /// The command a client's name resolves to: a renamed command by its new name; a
    /// command renamed away is not found by its old one.
    #[inline]
    pub fn resolve(&self, found: Option<&'static CommandSpec>, name: &[u8]) -> Option<&'static CommandSpec> {
        if self.hidden.is_empty() {
            return found;
        }
        match found {
            Some(s) if !has(&self.hidden, s.id) => Some(s),
            _ => self.renamed.get(&name.to_ascii_lowercase()).copied(),
        }
    }

    /// Whether `user` is refused `spec`.
    #[inline]
    pub fn denies(&self, spec: &CommandSpec, user: &str) -> bool {
        has(&self.denied, spec.id) || (has(&self.managed, spec.id) && self.admin.as_deref() != Some(user))
    }
}
