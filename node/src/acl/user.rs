//! One ACL user: Redis's rule language applied to it (`on >pass ~key* +@read -flushall`), the
//! description ACL LIST and GETUSER print, and the permission check every command goes
//! through. Command rules compile to a bit per command-table entry, so a check is one bit test
//! plus, for restricted users, the key and channel patterns.

use crate::cmd::keyspec::{flags as kflags, keys_and_flags, KeyRef};
use crate::cmd::table::{table, CommandSpec, ACL_CATEGORIES};
use crate::util::glob::glob_match;
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;

/// A key pattern and what it allows: `~p` both, `%R~p` reads, `%W~p` writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyPattern {
    pub pattern: Vec<u8>,
    pub read: bool,
    pub write: bool,
}

/// What a set of rules allows: commands, keys, channels. A user has its root permissions and
/// any number of selectors (`(~logs:* +@read)`); a command runs if any of them allows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Perms {
    /// A bit per command-table id: may it run.
    allowed: Vec<u64>,
    /// The command rules in the order given, for ACL LIST (`-@all +get`).
    command_rules: Vec<String>,
    pub keys: Vec<KeyPattern>,
    pub channels: Vec<Vec<u8>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub enabled: bool,
    pub nopass: bool,
    /// SHA-256 of each password, lowercase hex (what `#<hash>` names).
    pub passwords: BTreeSet<String>,
    pub root: Perms,
    pub selectors: Vec<Perms>,
}

/// Why a rule was refused, in Redis's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleError {
    Syntax,
    UnknownCommand,
    NoSuchPassword,
    BadHash,
    Selector,
}

impl std::fmt::Display for RuleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RuleError::Syntax => "Syntax error",
            RuleError::UnknownCommand => "Unknown command or category name in ACL",
            RuleError::NoSuchPassword => "The password you are trying to remove from the user does not exist",
            RuleError::BadHash => {
                "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters"
            }
            RuleError::Selector => "Syntax error",
        })
    }
}

/// What a permission check refused, and the argument it refused (for ACL LOG).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    Command,
    Key(usize),
    Channel(usize),
}

impl Denied {
    /// The reply, as Redis words it.
    pub fn message(&self, spec: &CommandSpec) -> String {
        match self {
            Denied::Command => format!("NOPERM this user has no permissions to run the '{}' command", spec.full_name),
            Denied::Key(_) => "NOPERM this user has no permissions to access one of the keys used as arguments".into(),
            Denied::Channel(_) => {
                "NOPERM this user has no permissions to access one of the channels used as arguments".into()
            }
        }
    }
}

pub fn sha256_hex(password: &[u8]) -> String {
    let digest = Sha256::digest(password);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

impl User {
    /// A new user: off, no passwords, no keys, channels or commands (Redis's defaults).
    pub fn new(name: &str) -> User {
        User {
            name: name.to_string(),
            enabled: false,
            nopass: false,
            passwords: BTreeSet::new(),
            root: Perms::new(),
            selectors: Vec::new(),
        }
    }

    /// Redis's `default` user as a node starts it: on, no password, everything allowed.
    pub fn default_user() -> User {
        let mut u = User::new("default");
        for r in ["on", "nopass", "~*", "&*", "+@all"] {
            u.apply(r).expect("valid default rules");
        }
        u
    }

    /// Applies one rule.
    pub fn apply(&mut self, rule: &str) -> Result<(), RuleError> {
        let lower = rule.to_ascii_lowercase();
        match lower.as_str() {
            "on" => self.enabled = true,
            "off" => self.enabled = false,
            "nopass" => {
                self.nopass = true;
                self.passwords.clear();
            }
            "resetpass" => {
                self.nopass = false;
                self.passwords.clear();
            }
            "reset" => {
                for r in ["resetpass", "resetkeys", "resetchannels", "off", "-@all", "clearselectors"] {
                    self.apply(r)?;
                }
            }
            "clearselectors" => self.selectors.clear(),
            _ if rule.starts_with('(') => {
                // A selector: its own key, channel and command rules, from no permissions.
                let inner = rule.strip_prefix('(').and_then(|r| r.strip_suffix(')')).ok_or(RuleError::Selector)?;
                let mut perms = Perms::new();
                for r in inner.split_whitespace() {
                    if !perms.apply(r)? {
                        return Err(RuleError::Selector);
                    }
                }
                self.selectors.push(perms);
            }
            _ => {
                if !self.root.apply(rule)? {
                    self.apply_password(rule)?;
                }
            }
        }
        Ok(())
    }

    fn apply_password(&mut self, rule: &str) -> Result<(), RuleError> {
        let (head, rest) = rule.split_at(rule.chars().next().map_or(0, char::len_utf8));
        match head {
            ">" => {
                self.passwords.insert(sha256_hex(rest.as_bytes()));
                self.nopass = false;
            }
            "<" => {
                if !self.passwords.remove(&sha256_hex(rest.as_bytes())) {
                    return Err(RuleError::NoSuchPassword);
                }
            }
            "#" => {
                if rest.len() != 64 || !rest.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
                    return Err(RuleError::BadHash);
                }
                self.passwords.insert(rest.to_string());
                self.nopass = false;
            }
            "!" => {
                if !self.passwords.remove(rest) {
                    return Err(RuleError::NoSuchPassword);
                }
            }
            _ => return Err(RuleError::Syntax),
        }
        Ok(())
    }

    #[inline]
    pub fn may_run(&self, spec: &CommandSpec) -> bool {
        self.root.may_run(spec) || self.selectors.iter().any(|p| p.may_run(spec))
    }

    /// Whether every command, key and channel is allowed: the check can be skipped.
    pub fn unrestricted(&self) -> bool {
        self.root.unrestricted()
    }

    /// Whether `password` is one of the user's (or the user needs none).
    pub fn password_ok(&self, password: &[u8]) -> bool {
        self.nopass || self.passwords.contains(&sha256_hex(password))
    }

    /// Checks a command with its arguments: allowed if the root permissions or any selector
    /// allow it; refused with the root permissions' reason otherwise, as Redis does.
    pub fn check(&self, spec: &CommandSpec, req: &shoal_proto::Request) -> Result<(), Denied> {
        let keys = keys_and_flags(spec, req);
        let root = self.root.check(spec, req, &keys);
        if root.is_err() && self.selectors.iter().any(|p| p.check(spec, req, &keys).is_ok()) {
            return Ok(());
        }
        root
    }

    /// The rules that rebuild this user (ACL LIST's line after `user <name>`).
    pub fn describe(&self) -> String {
        let mut parts = vec![if self.enabled { "on" } else { "off" }.to_string()];
        if self.nopass {
            parts.push("nopass".into());
        }
        parts.extend(self.passwords.iter().map(|h| format!("#{h}")));
        parts.push(self.root.describe());
        parts.extend(self.selectors.iter().map(|p| format!("({})", p.describe())));
        parts.join(" ")
    }

    /// The root command rules (`-@all +get`).
    pub fn commands_text(&self) -> String {
        self.root.commands_text()
    }
}

impl Default for Perms {
    fn default() -> Perms {
        Perms::new()
    }
}

impl Perms {
    /// No keys, channels or commands.
    pub fn new() -> Perms {
        Perms {
            allowed: vec![0; table().stat_slots().div_ceil(64)],
            command_rules: vec!["-@all".into()],
            keys: Vec::new(),
            channels: Vec::new(),
        }
    }

    /// Applies a key, channel or command rule; false if `rule` is none of those.
    pub fn apply(&mut self, rule: &str) -> Result<bool, RuleError> {
        match rule.to_ascii_lowercase().as_str() {
            "allkeys" => return self.apply("~*"),
            "resetkeys" => self.keys.clear(),
            "allchannels" => return self.apply("&*"),
            "resetchannels" => self.channels.clear(),
            "allcommands" => return self.apply("+@all"),
            "nocommands" => return self.apply("-@all"),
            _ => {
                let (head, rest) = rule.split_at(rule.chars().next().map_or(0, char::len_utf8));
                match head {
                    "~" => self.add_keys(rest.as_bytes(), true, true),
                    "%" => {
                        let (perm, pattern) = rest.split_once('~').ok_or(RuleError::Syntax)?;
                        let perm = perm.to_ascii_uppercase();
                        if perm.is_empty() || !perm.chars().all(|c| c == 'R' || c == 'W') {
                            return Err(RuleError::Syntax);
                        }
                        self.add_keys(pattern.as_bytes(), perm.contains('R'), perm.contains('W'));
                    }
                    "&" => {
                        if !self.channels.iter().any(|c| c.as_slice() == rest.as_bytes()) {
                            self.channels.push(rest.as_bytes().to_vec());
                        }
                    }
                    "+" | "-" => self.command_rule(head == "+", rest)?,
                    _ => return Ok(false),
                }
            }
        }
        Ok(true)
    }

    fn add_keys(&mut self, pattern: &[u8], read: bool, write: bool) {
        match self.keys.iter_mut().find(|k| k.pattern == pattern) {
            Some(k) => {
                k.read |= read;
                k.write |= write;
            }
            None => self.keys.push(KeyPattern { pattern: pattern.to_vec(), read, write }),
        }
    }

    /// `+name`, `-name`, `+name|sub`, `+@category` (and their `-` forms).
    fn command_rule(&mut self, allow: bool, what: &str) -> Result<(), RuleError> {
        let t = table();
        let lower = what.to_ascii_lowercase();
        let mut ids = Vec::new();
        if let Some(cat) = lower.strip_prefix('@') {
            if cat == "all" {
                ids.extend(0..t.stat_slots());
            } else {
                let bit = ACL_CATEGORIES.iter().position(|c| *c == cat).ok_or(RuleError::UnknownCommand)?;
                ids.extend(t.all_specs().filter(|s| s.acl & (1 << bit) != 0).map(|s| s.id));
            }
        } else if let Some((name, sub)) = lower.split_once('|') {
            let spec = t.lookup(name.as_bytes()).ok_or(RuleError::UnknownCommand)?;
            let sub = spec.subcommand(sub.as_bytes()).ok_or(RuleError::UnknownCommand)?;
            ids.push(sub.id);
        } else {
            let spec = t.lookup(lower.as_bytes()).ok_or(RuleError::UnknownCommand)?;
            ids.push(spec.id);
            ids.extend(spec.subcommands.iter().map(|s| s.id));
        }
        for id in ids {
            if allow {
                self.allowed[id / 64] |= 1 << (id % 64);
            } else {
                self.allowed[id / 64] &= !(1 << (id % 64));
            }
        }
        let rule = format!("{}{lower}", if allow { '+' } else { '-' });
        if lower == "@all" {
            self.command_rules.clear();
        }
        self.command_rules.retain(|r| r[1..] != rule[1..]);
        self.command_rules.push(rule);
        Ok(())
    }

    #[inline]
    pub fn may_run(&self, spec: &CommandSpec) -> bool {
        self.allowed.get(spec.id / 64).is_some_and(|w| w & (1 << (spec.id % 64)) != 0)
    }

    /// Whether every command, key and channel is allowed.
    pub fn unrestricted(&self) -> bool {
        let all = table().stat_slots();
        (0..all).all(|id| self.allowed[id / 64] & (1 << (id % 64)) != 0)
            && self.keys.iter().any(|k| k.pattern == b"*" && k.read && k.write)
            && self.channels.iter().any(|c| c == b"*")
    }

    /// Checks a command with its arguments (and the keys they name) against these permissions.
    /// A key needs read permission if the command uses its value, write permission if it
    /// changes it: `%R~src:* %W~dst:*` may SUNIONSTORE from `src:` into `dst:`.
    pub fn check(&self, spec: &CommandSpec, req: &shoal_proto::Request, keys: &[KeyRef]) -> Result<(), Denied> {
        if !self.may_run(spec) {
            return Err(Denied::Command);
        }
        for k in keys {
            let (read, write) = (kflags::reads(k.flags), kflags::writes(k.flags));
            let key = req.arg(k.pos);
            let ok = self
                .keys
                .iter()
                .any(|p| (!read || p.read) && (!write || p.write) && glob_match(&p.pattern, key, false));
            if !ok {
                return Err(Denied::Key(k.pos));
            }
        }
        if let Some((positions, pattern)) = channel_args(spec, req) {
            for i in positions {
                let ch = req.arg(i);
                // A pattern subscription needs that very pattern allowed, as in Redis.
                let ok =
                    self.channels.iter().any(|c| if pattern { c == ch || c == b"*" } else { glob_match(c, ch, false) });
                if !ok {
                    return Err(Denied::Channel(i));
                }
            }
        }
        Ok(())
    }

    /// Key patterns as rules (`~k* %R~logs:*`).
    pub fn keys_text(&self) -> String {
        self.keys
            .iter()
            .map(|k| {
                let p = String::from_utf8_lossy(&k.pattern);
                match (k.read, k.write) {
                    (true, true) => format!("~{p}"),
                    (true, false) => format!("%R~{p}"),
                    _ => format!("%W~{p}"),
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Channel patterns as rules (`&news.*`).
    pub fn channels_text(&self) -> String {
        self.channels.iter().map(|c| format!("&{}", String::from_utf8_lossy(c))).collect::<Vec<_>>().join(" ")
    }

    /// Keys, channels and commands as rules, in ACL LIST's order.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.keys.is_empty() {
            parts.push(self.keys_text());
        }
        parts.push(if self.channels.is_empty() { "resetchannels".to_string() } else { self.channels_text() });
        parts.push(self.commands_text());
        parts.join(" ")
    }

    /// The command rules (`-@all +get`).
    pub fn commands_text(&self) -> String {
        self.command_rules.join(" ")
    }
}

/// Where a Pub/Sub command's channels are, and whether they are patterns.
fn channel_args(spec: &CommandSpec, req: &shoal_proto::Request) -> Option<(std::ops::Range<usize>, bool)> {
    match spec.full_name.as_str() {
        "publish" | "spublish" => Some((1..2, false)),
        "subscribe" | "ssubscribe" => Some((1..req.len(), false)),
        "psubscribe" => Some((1..req.len(), true)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(rules: &str) -> User {
        let mut u = User::new("u");
        for r in rules.split_whitespace() {
            u.apply(r).unwrap();
        }
        u
    }

    #[test]
    fn rules_describe_as_redis_lists_them() {
        let u = user("on >p1 ~k* +get");
        assert_eq!(u.describe(), format!("on #{} ~k* resetchannels -@all +get", sha256_hex(b"p1")));
        assert_eq!(User::default_user().describe(), "on nopass ~* &* +@all");
        assert_eq!(user("").describe(), "off resetchannels -@all");
        assert_eq!(User::new("x").apply("+nosuch"), Err(RuleError::UnknownCommand));
        assert_eq!(User::new("x").apply("foo"), Err(RuleError::Syntax));
        assert_eq!(User::new("x").apply("<nothere"), Err(RuleError::NoSuchPassword));
        assert_eq!(User::new("x").apply("#abc"), Err(RuleError::BadHash));
    }

    #[test]
    fn selectors_allow_what_the_root_does_not() {
        let t = table();
        let req = |a: &[&str]| shoal_proto::Request::from_args(a.iter().copied());
        let mut u = user("on nopass ~app:* +@all");
        u.apply("(%R~logs:* +get +scan)").unwrap();
        assert_eq!(u.describe(), "on nopass ~app:* resetchannels +@all (%R~logs:* resetchannels -@all +get +scan)");
        let get = t.lookup(b"get").unwrap();
        let set = t.lookup(b"set").unwrap();
        assert_eq!(u.check(get, &req(&["GET", "logs:1"])), Ok(()), "the selector allows it");
        assert_eq!(
            u.check(set, &req(&["SET", "logs:1", "v"])),
            Err(Denied::Key(1)),
            "neither allows it: the root's reason"
        );
        assert_eq!(u.apply("(~x >pw)"), Err(RuleError::Selector), "passwords do not belong in a selector");
        u.apply("clearselectors").unwrap();
        assert!(u.check(get, &req(&["GET", "logs:1"])).is_err());
        assert_eq!(crate::acl::split_rules("on ~a (~b +get) +set"), vec!["on", "~a", "(~b +get)", "+set"]);
    }

    #[test]
    fn checks_follow_commands_keys_and_channels() {
        let t = table();
        let spec = |n: &str| t.lookup(n.as_bytes()).unwrap();
        let req = |a: &[&str]| shoal_proto::Request::from_args(a.iter().copied());
        let u = user("on nopass %R~r:* ~rw:* &news.* +@read +set +publish");
        assert_eq!(u.check(spec("get"), &req(&["GET", "r:1"])), Ok(()));
        assert_eq!(u.check(spec("set"), &req(&["SET", "r:1", "v"])), Err(Denied::Key(1)));
        assert_eq!(u.check(spec("set"), &req(&["SET", "rw:1", "v"])), Ok(()));
        assert_eq!(u.check(spec("del"), &req(&["DEL", "rw:1"])), Err(Denied::Command));
        assert_eq!(u.check(spec("publish"), &req(&["PUBLISH", "news.a", "m"])), Ok(()));
        assert_eq!(u.check(spec("publish"), &req(&["PUBLISH", "other", "m"])), Err(Denied::Channel(1)));
        assert!(User::default_user().unrestricted());
        assert!(!u.unrestricted());
        let config_get = spec("config").subcommand(b"get").unwrap();
        let mut v = user("on +config|get");
        assert!(v.may_run(config_get) && !v.may_run(spec("config").subcommand(b"set").unwrap()));
        v.apply("-config").unwrap();
        assert!(!v.may_run(config_get));
    }
}
