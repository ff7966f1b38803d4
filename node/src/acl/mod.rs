//! Users, passwords and permissions (Redis's ACL), and the log of what they refused.
//!
//! The store is one interface over a map of users kept as their rule text (`Acl::snapshot`,
//! `Acl::replace`), so a cluster can later hold it in its Raft metadata and apply it on every
//! node. Connections keep the compiled `User` they authenticated as and refresh it when the
//! store's version moves, so a change applies to connected clients at their next command.

pub mod guard;
pub mod log;
pub mod passkey;
pub mod restrict;
pub mod user;

use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
pub use user::{Denied, RuleError, User};

/// The users as rule text: what is stored and replicated.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct UserRecords {
    /// name -> rules (`on #<hash> ~* +@all`).
    pub users: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AclError {
    #[error("ERR Error in ACL SETUSER modifier '{rule}': {why}")]
    Rule { rule: String, why: RuleError },
    #[error("ERR The 'default' user cannot be removed")]
    DefaultUser,
}

/// Splits rule text into rules, keeping a selector's parenthesised rules together
/// (`on ~a (~b +get) +set` is four rules).
pub fn split_rules(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut open = false;
    for w in text.split_whitespace() {
        match out.last_mut() {
            Some(last) if open => {
                last.push(' ');
                last.push_str(w);
            }
            _ => out.push(w.to_string()),
        }
        open = (open || w.starts_with('(')) && !w.ends_with(')');
    }
    out
}

pub struct Acl {
    users: RwLock<BTreeMap<String, Arc<User>>>,
    version: AtomicU64,
    pub log: log::AclLog,
    pub guard: guard::AuthGuard,
    /// Commands withheld whatever the rules say (--deny-commands, the managed profile,
    /// rename-command).
    pub restrict: restrict::Restrictions,
}

impl Default for Acl {
    fn default() -> Acl {
        Acl::new()
    }
}

impl Acl {
    /// A store with Redis's `default` user (on, no password, everything).
    pub fn new() -> Acl {
        let mut users = BTreeMap::new();
        users.insert("default".to_string(), Arc::new(User::default_user()));
        Acl {
            users: RwLock::new(users),
            version: AtomicU64::new(1),
            log: log::AclLog::default(),
            guard: guard::AuthGuard::default(),
            restrict: restrict::Restrictions::default(),
        }
    }

    /// Sets the withheld commands (at start-up).
    pub fn with_restrictions(mut self, r: restrict::Restrictions) -> Acl {
        self.restrict = r;
        self
    }

    /// Moves on every change: connections re-read their user when it does.
    #[inline]
    pub fn version(&self) -> u64 {
        self.version.load(Relaxed)
    }

    pub fn get(&self, name: &str) -> Option<Arc<User>> {
        self.users.read().get(name).cloned()
    }

    pub fn names(&self) -> Vec<String> {
        self.users.read().keys().cloned().collect()
    }

    pub fn all(&self) -> Vec<Arc<User>> {
        self.users.read().values().cloned().collect()
    }

    /// ACL SETUSER: creates the user if needed and applies the rules, all or nothing.
    pub fn set_user(&self, name: &str, rules: &[&str]) -> Result<(), AclError> {
        let mut users = self.users.write();
        let mut u = users.get(name).map(|u| (**u).clone()).unwrap_or_else(|| User::new(name));
        for r in rules {
            u.apply(r).map_err(|why| AclError::Rule { rule: r.to_string(), why })?;
        }
        users.insert(name.to_string(), Arc::new(u));
        self.version.fetch_add(1, Relaxed);
        Ok(())
    }

    /// ACL DELUSER: how many of the names existed.
    pub fn delete(&self, names: &[&str]) -> Result<usize, AclError> {
        if names.contains(&"default") {
            return Err(AclError::DefaultUser);
        }
        let mut users = self.users.write();
        let n = names.iter().filter(|n| users.remove(**n).is_some()).count();
        self.version.fetch_add(1, Relaxed);
        Ok(n)
    }

    /// The user `name` if it exists, is on, and `password` is one of its passwords.
    pub fn authenticate(&self, name: &str, password: &[u8]) -> Option<Arc<User>> {
        self.get(name).filter(|u| u.enabled && u.password_ok(password))
    }

    /// Every user as rule text.
    pub fn snapshot(&self) -> UserRecords {
        UserRecords { users: self.users.read().iter().map(|(n, u)| (n.clone(), u.describe())).collect() }
    }

    /// Replaces every user with `records` (all or nothing); `default` is kept if absent.
    pub fn replace(&self, records: &UserRecords) -> Result<(), AclError> {
        let mut fresh = BTreeMap::new();
        for (name, rules) in &records.users {
            let mut u = User::new(name);
            for r in &split_rules(rules) {
                u.apply(r).map_err(|why| AclError::Rule { rule: r.to_string(), why })?;
            }
            fresh.insert(name.clone(), Arc::new(u));
        }
        fresh.entry("default".to_string()).or_insert_with(|| Arc::new(User::default_user()));
        *self.users.write() = fresh;
        self.version.fetch_add(1, Relaxed);
        Ok(())
    }
}
