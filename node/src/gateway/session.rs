//! The state of one client connection that commands can read and change (SELECT, HELLO,
//! CLIENT REPLY, ...).

use crate::cmd::pubsub::Subscriptions;
use crate::cmd::table::CommandSpec;
use crate::node::ClientHandle;
use crate::pubsub::Outbox;
use crate::shard::watch::WatchFlag;
use bytes::Bytes;
use shoal_proto::Protocol;
use shoal_proto::Request;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Why `Session::check` refuses a command.
enum Refusal {
    /// Renamed away or disabled for this user: it answers as an unknown command.
    Hidden,
    NoAuth,
    Denied(crate::acl::Denied),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyMode {
    On,
    Off,
}

pub struct Session {
    pub handle: Arc<ClientHandle>,
    pub db: usize,
    pub proto: Protocol,
    pub reply_mode: ReplyMode,
    /// CLIENT REPLY SKIP: the next command's reply is dropped.
    pub skip_next: bool,
    /// Close once the replies written so far are sent (QUIT, protocol errors, kills).
    pub close_after_reply: bool,
    pub readonly: bool,
    pub asking: bool,
    /// The user authenticated as (`default` until AUTH says otherwise).
    pub user: String,
    /// That user's rules; None until the connection has authenticated.
    pub auth: Option<Arc<crate::acl::User>>,
    /// The ACL version `auth` was read at, and whether it allows everything (no checks).
    acl_version: u64,
    unrestricted: bool,
    /// Commands queued since MULTI.
    pub multi: Option<Vec<(&'static CommandSpec, Request)>>,
    /// An error while queueing: EXEC will answer EXECABORT.
    pub multi_failed: bool,
    /// Set by shards when a watched key changes.
    pub watch_flag: Arc<WatchFlag>,
    /// Watched keys: (shard, db, key).
    pub watched: Vec<(usize, usize, Vec<u8>)>,
    /// The outbox Pub/Sub messages arrive in, once the client has subscribed to something.
    pub pubsub: Option<(Arc<Outbox>, mpsc::UnboundedReceiver<Bytes>)>,
    pub subs: Subscriptions,
    /// CLIENT TRACKING settings while tracking is on.
    pub tracking: Option<TrackingMode>,
    /// In MONITOR mode: sees every command through `pubsub`'s outbox, may not touch keys.
    pub monitor: bool,
}

/// A client's CLIENT TRACKING options.
#[derive(Clone, Debug, Default)]
pub struct TrackingMode {
    pub redirect: u64,
    pub bcast: bool,
    pub prefixes: Vec<Vec<u8>>,
    pub optin: bool,
    pub optout: bool,
    pub noloop: bool,
    /// CLIENT CACHING's answer for the next command.
    pub caching: Option<bool>,
}

impl Session {
    /// Starts authenticated as `default` when that user needs no password, as Redis does.
    pub fn start_auth(&mut self, acl: &crate::acl::Acl) {
        let default = acl.get("default").filter(|u| u.enabled && u.nopass);
        self.set_user(acl, default);
    }

    /// Sets the authenticated user (None: not authenticated).
    pub fn set_user(&mut self, acl: &crate::acl::Acl, user: Option<Arc<crate::acl::User>>) {
        self.acl_version = acl.version();
        self.unrestricted = user.as_ref().is_some_and(|u| u.unrestricted());
        if let Some(u) = &user {
            self.user = u.name.clone();
        }
        self.auth = user;
    }

    /// Whether this connection may run `req`: NOAUTH before authentication, NOPERM (logged in
    /// ACL LOG) when the user's rules refuse it. A user changed since it was read is re-read
    /// (a user switched off keeps its connections, as in Redis; ACL DELUSER kills them).
    #[inline]
    pub fn permit(&mut self, node: &crate::node::Node, spec: &CommandSpec, req: &Request) -> Result<(), String> {
        let denied = match self.check(node, spec, req) {
            Ok(()) => return Ok(()),
            Err(Refusal::Hidden) => return Err(super::connection::unknown_command_error(req)),
            Err(Refusal::NoAuth) => return Err("NOAUTH Authentication required.".into()),
            Err(Refusal::Denied(denied)) => denied,
        };
        let (reason, object) = match &denied {
            crate::acl::Denied::Command => ("command", spec.full_name.clone()),
            crate::acl::Denied::Key(i) => ("key", String::from_utf8_lossy(req.arg(*i)).into_owned()),
            crate::acl::Denied::Channel(i) => ("channel", String::from_utf8_lossy(req.arg(*i)).into_owned()),
        };
        let context = if self.multi.is_some() { "multi" } else { "toplevel" };
        let now = crate::util::now_ms();
        let info = crate::cmd::client::describe(&self.handle, now);
        node.acl.log.add(reason, context, object, self.user.clone(), info, now);
        Err(denied.message(spec))
    }

    /// Whether this connection's user may run `req` (`redis.acl_check_cmd`): `permit`'s
    /// checks, with nothing logged.
    pub fn allows(&mut self, node: &crate::node::Node, spec: &CommandSpec, req: &Request) -> bool {
        self.check(node, spec, req).is_ok()
    }

    #[inline]
    fn check(&mut self, node: &crate::node::Node, spec: &CommandSpec, req: &Request) -> Result<(), Refusal> {
        let acl = &node.acl;
        if acl.restrict.denies(spec, &self.user) {
            return Err(Refusal::Hidden);
        }
        if self.acl_version != acl.version() {
            let fresh = self.auth.as_ref().and_then(|_| acl.get(&self.user));
            self.set_user(acl, fresh);
        }
        if self.unrestricted {
            return Ok(());
        }
        let Some(user) = &self.auth else {
            if spec.has(crate::cmd::table::flags::NO_AUTH) {
                return Ok(());
            }
            return Err(Refusal::NoAuth);
        };
        user.check(spec, req).map_err(Refusal::Denied)
    }

    pub fn new(handle: Arc<ClientHandle>) -> Session {
        Session {
            handle,
            db: 0,
            proto: Protocol::Resp2,
            reply_mode: ReplyMode::On,
            skip_next: false,
            close_after_reply: false,
            readonly: false,
            asking: false,
            user: "default".into(),
            auth: None,
            acl_version: 0,
            unrestricted: false,
            multi: None,
            multi_failed: false,
            watch_flag: Arc::new(WatchFlag::default()),
            watched: Vec::new(),
            pubsub: None,
            subs: Subscriptions::default(),
            tracking: None,
            monitor: false,
        }
    }

    pub fn set_db(&mut self, db: usize) {
        self.db = db;
        self.handle.db.store(db, Relaxed);
    }

    pub fn set_proto(&mut self, proto: Protocol) {
        self.proto = proto;
        self.handle.resp.store(proto.version() as u8, Relaxed);
    }

    /// RESET: back to a fresh connection's state (the caller drops the watches first).
    pub fn reset(&mut self) {
        self.multi = None;
        self.multi_failed = false;
        self.set_db(0);
        self.set_proto(Protocol::Resp2);
        self.reply_mode = ReplyMode::On;
        self.skip_next = false;
        self.readonly = false;
        self.asking = false;
        self.handle.name.lock().expect("name lock").clear();
        self.handle.no_evict.store(false, Relaxed);
        self.handle.no_touch.store(false, Relaxed);
    }
}

impl Session {
    /// A RESP2 client with subscriptions may only run subscription commands, PING, QUIT and
    /// RESET (Redis's "subscribed context").
    pub fn in_subscribed_context(&self) -> bool {
        self.proto == Protocol::Resp2 && self.subs.total() > 0
    }
}
