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
    pub user: String,
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
            multi: None,
            multi_failed: false,
            watch_flag: Arc::new(WatchFlag::default()),
            watched: Vec::new(),
            pubsub: None,
            subs: Subscriptions::default(),
            tracking: None,
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
