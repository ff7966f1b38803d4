//! One Memcached client connection: read, parse (text, meta and binary requests may follow
//! each other), send each shard one batch of the keyed requests for its keys, write every
//! reply back in request order with one write — the RESP connection's pipeline, for
//! Memcached's protocols. Requests without a key (version, stats, flush_all, SASL) are
//! answered here, after the requests before them.

use crate::cmd::table::{table, CommandSpec};
use crate::node::Node;
use crate::shard::Batch;
use bytes::BytesMut;
use shoal_proto::memcache::binary::{self, opcode, status};
use shoal_proto::memcache::{reply as mc, ErrorKind, McError, McLimits, McParser, McRequest, Op, Parsed, Wire};
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::oneshot;
use tracing::debug;

const READ_CHUNK: usize = 16 * 1024;
/// Replies a connection gathers before it runs what it has (a longer pipeline, or a get of
/// more keys, runs in several rounds), and the output past which it writes them before
/// going on: together they bound what a client's gets of large items make the node hold, to
/// about `FLUSH_EVERY` items.
const FLUSH_EVERY: usize = 64;
const WRITE_AT: usize = 256 * 1024;
/// The version string clients see: memcached's protocol level, and Shoal's own.
pub(crate) const VERSION: &str = concat!("1.6.21-shoal-", env!("CARGO_PKG_VERSION"));

/// Counts Memcached flush_all commands (one node per process), so a delayed flush knows
/// whether a later one replaced it.
static FLUSH_GENERATION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Where a reply comes from, with what a generic error from the shard (an out-of-memory or
/// busy refusal, written in RESP) must be turned into.
enum Src {
    Shard(usize, Wire, u8, u32),
    Local(std::ops::Range<usize>),
}

struct Conn<S> {
    node: Arc<Node>,
    stream: S,
    handle: Arc<crate::node::ClientHandle>,
    parser: McParser,
    rbuf: BytesMut,
    wbuf: BytesMut,
    local: BytesMut,
    parsed: Vec<Parsed>,
    pending: Vec<Option<Box<Batch>>>,
    #[allow(clippy::vec_box)]
    spare: Vec<Box<Batch>>,
    seq: Vec<Src>,
    done: Vec<Option<(Box<Batch>, usize)>>,
    in_flight: Vec<(usize, oneshot::Receiver<Box<Batch>>)>,
    /// Whether the client has authenticated (always, without --memcached-auth).
    authed: bool,
    /// The ACL user it authenticated as, when its rules restrict it.
    user: Option<Arc<crate::acl::User>>,
    /// Its name, and the ACL version `user` was read at (rules changed since are picked up).
    user_name: String,
    acl_version: u64,
    close: bool,
}

pub async fn serve<S>(node: Arc<Node>, stream: S, addr: SocketAddr, laddr: SocketAddr, fd: Option<RawFd>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let handle = node.clients.register(addr, laddr, fd);
    let id = handle.id;
    let limits = McLimits { max_item_size: node.config.memcache.max_item_size as usize, ..McLimits::default() };
    let shards = node.shards.len();
    let mut conn = Conn {
        authed: !node.config.memcache.auth,
        user: None,
        user_name: String::new(),
        acl_version: 0,
        node: node.clone(),
        stream,
        handle,
        parser: McParser::new(limits),
        rbuf: BytesMut::with_capacity(READ_CHUNK),
        wbuf: BytesMut::with_capacity(READ_CHUNK),
        local: BytesMut::new(),
        parsed: Vec::new(),
        pending: (0..shards).map(|_| None).collect(),
        spare: Vec::new(),
        seq: Vec::new(),
        done: (0..shards).map(|_| None).collect(),
        in_flight: Vec::new(),
        close: false,
    };
    debug!(client = id, %addr, "memcached client connected");
    if node.is_shutting_down() {
        conn.handle.stop_reading();
    }
    conn.run().await;
    conn.handle.release_socket();
    node.clients.unregister(id);
    debug!(client = id, %addr, "memcached client disconnected");
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    async fn run(&mut self) {
        loop {
            super::connection::make_room(&mut self.rbuf, self.parser.bytes_needed());
            // `timeout` closes idle Memcached clients too (memcached's idle_timeout).
            let timeout = self.node.live.timeout.load(Relaxed);
            let n = match super::connection::read_with_timeout(&mut self.stream, &mut self.rbuf, timeout).await {
                Some(Ok(n)) if n > 0 && !self.handle.killed.load(Relaxed) => n,
                _ => break,
            };
            self.node.stats.net_input_bytes.add(n as u64);
            self.handle.last_interaction.store(crate::util::coarse_ms(), Relaxed);
            self.parser.parse(&mut self.rbuf, &mut self.parsed);
            let mut parsed = std::mem::take(&mut self.parsed);
            for p in parsed.drain(..) {
                if self.close {
                    break;
                }
                match p {
                    Ok(r) => self.request(r).await,
                    Err(e) => self.parse_error(&e),
                }
            }
            self.parsed = parsed;
            self.flush().await;
            if !self.write_out().await || self.close || self.handle.killed.load(Relaxed) {
                break;
            }
        }
        let _ = self.stream.shutdown().await;
    }

    /// Runs what is pending once `FLUSH_EVERY` replies wait, and writes the output once it
    /// passes `WRITE_AT`: a pipeline of gets, or one get of thousands of keys, for large items
    /// would otherwise be answered in memory all at once. Called for each key a request
    /// queues: the only replies that can be large. A client that is gone is closed.
    async fn bound_output(&mut self) {
        if self.seq.len() < FLUSH_EVERY {
            return;
        }
        self.flush().await;
        if self.wbuf.len() >= WRITE_AT && !self.write_out().await {
            self.close = true;
        }
    }

    /// Writes the replies gathered so far; false if the client is gone.
    async fn write_out(&mut self) -> bool {
        if self.wbuf.is_empty() {
            return true;
        }
        // With appendfsync always, nothing this client could have seen is unsynced.
        self.node.wal.barrier().await;
        if self.stream.write_all(&self.wbuf).await.is_err() {
            return false;
        }
        self.node.stats.net_output_bytes.add(self.wbuf.len() as u64);
        self.wbuf.clear();
        if self.wbuf.capacity() > 1 << 20 {
            self.wbuf = BytesMut::with_capacity(READ_CHUNK);
        }
        true
    }

    /// Appends a locally made reply, in order with the shards' replies.
    fn local(&mut self, write: impl FnOnce(&mut BytesMut)) {
        let start = self.local.len();
        write(&mut self.local);
        self.seq.push(Src::Local(start..self.local.len()));
    }

    fn parse_error(&mut self, e: &McError) {
        self.node.stats.protocol_errors.fetch_add(1, Relaxed);
        if let Some(key) = e.drop_key.clone() {
            if self.authed && self.user.as_ref().is_none_or(|u| self.may_write(u, &key)) {
                // The refused set's old item goes, silently, before the error is answered.
                let mut del = McRequest::new(Op::Delete, Wire::Text);
                del.noreply = true;
                del.keys.push(key);
                let spec = table().memcache(Op::Delete);
                let shard = self.node.route.shard_of_key(&del.keys[0]);
                let req = crate::cmd::memcache::encode(spec, &del, &del.keys[0]);
                self.enqueue(shard, spec, req, &del);
            }
        }
        if e.close {
            debug!(client = self.handle.id, error = ?e.kind, "memcached protocol error, closing connection");
            self.close = true;
        }
        let e = e.clone();
        self.local(|out| match e.wire {
            Wire::Binary => {
                let st = match e.kind {
                    ErrorKind::UnknownCommand => status::UNKNOWN_COMMAND,
                    ErrorKind::Client(_) => status::INVALID_ARGUMENTS,
                    ErrorKind::TooLarge => status::TOO_LARGE,
                };
                binary::error(out, e.opcode, st, e.opaque)
            }
            _ => match e.kind {
                ErrorKind::UnknownCommand => out.extend_from_slice(mc::ERROR),
                ErrorKind::Client(msg) => mc::client_error(out, msg),
                ErrorKind::TooLarge => mc::server_error(out, "object too large for cache"),
            },
        });
    }

    async fn request(&mut self, r: McRequest) {
        if self.authed && self.node.config.memcache.auth && self.acl_version != self.node.acl.version() {
            // The user's rules changed: read them again; a deleted or disabled user is out.
            self.acl_version = self.node.acl.version();
            match self.node.acl.get(&self.user_name).filter(|u| u.enabled) {
                Some(u) => self.user = (!u.unrestricted()).then_some(u),
                None => self.authed = false,
            }
        }
        if !self.authed && !matches!(r.op, Op::SaslList | Op::SaslAuth | Op::SaslStep) {
            return self.unauthenticated(r);
        }
        let spec = table().memcache(r.op);
        if let Some(user) = &self.user {
            if let Err(what) = permitted(user, &r) {
                return self.local(|out| match r.wire {
                    Wire::Binary => binary::error(out, r.opcode, status::AUTH_ERROR, r.opaque),
                    _ => mc::client_error(out, &format!("access denied: {what}")),
                });
            }
        }
        if r.op.has_key() {
            if let Some(busy) = self.node.scripts.busy() {
                let msg = busy.to_string();
                return self.local(|out| refusal(out, &r, &msg));
            }
            for key in r.keys.iter() {
                if self.close {
                    return;
                }
                let shard = self.node.route.shard_of_key(key);
                let req = crate::cmd::memcache::encode(spec, &r, key);
                self.enqueue(shard, spec, req, &r);
                self.bound_output().await;
            }
            if r.wire == Wire::Text && matches!(r.op, Op::Get | Op::Gets | Op::Gat | Op::Gats) {
                self.local(|out| out.extend_from_slice(mc::END));
            }
            return;
        }
        // The rest are answered here, after everything before them.
        self.flush().await;
        let started = Instant::now();
        self.answer_here(&r).await;
        let req = shoal_proto::Request::from_args([spec.name]);
        self.node.record_call(spec, &req, started.elapsed().as_nanos() as u64, false, &self.handle);
    }

    async fn answer_here(&mut self, r: &McRequest) {
        let bin = r.wire == Wire::Binary;
        match r.op {
            Op::Version => self.local(|out| {
                if bin {
                    binary::response(out, r.opcode, status::OK, r.opaque, 0, &[], VERSION.as_bytes());
                } else {
                    out.extend_from_slice(format!("VERSION {VERSION}\r\n").as_bytes());
                }
            }),
            Op::Verbosity => self.ok(r),
            Op::Noop => self.local(|out| {
                if bin {
                    binary::response(out, r.opcode, status::OK, r.opaque, 0, &[], &[]);
                } else {
                    out.extend_from_slice(b"MN\r\n");
                }
            }),
            Op::Quit => {
                if bin && !r.noreply {
                    self.local(|out| binary::response(out, r.opcode, status::OK, r.opaque, 0, &[], &[]));
                }
                self.close = true;
            }
            Op::FlushAll => {
                let delay = r.exptime;
                let node = self.node.clone();
                // The latest flush_all decides, as memcached's single flush time does: one
                // that comes later cancels a delayed one still waiting.
                let generation = FLUSH_GENERATION.fetch_add(1, Relaxed) + 1;
                if delay > 0 {
                    // memcached's delayed flush: everything stored until then goes then.
                    let at = shoal_proto::memcache::expiry_ms(delay, crate::util::now_ms()).unwrap_or(0);
                    let wait = at.saturating_sub(crate::util::now_ms());
                    tokio::spawn(async move {
                        tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
                        if FLUSH_GENERATION.load(Relaxed) == generation {
                            crate::cmd::server::flush_dbs(&node, Some(0), true).await;
                        }
                    });
                } else {
                    crate::cmd::server::flush_dbs(&node, Some(0), true).await;
                }
                self.ok(r);
            }
            Op::Stats => self.stats(r).await,
            Op::SaslList => self.local(|out| binary::response(out, r.opcode, status::OK, r.opaque, 0, &[], b"PLAIN")),
            Op::SaslAuth | Op::SaslStep => self.sasl(r),
            _ => {}
        }
    }

    /// `OK` (text), a bare success (binary), unless the client asked for no reply.
    fn ok(&mut self, r: &McRequest) {
        if r.noreply {
            return;
        }
        self.local(|out| match r.wire {
            Wire::Binary => binary::response(out, r.opcode, status::OK, r.opaque, 0, &[], &[]),
            _ => out.extend_from_slice(mc::OK),
        });
    }

    /// Whether `user` may overwrite `key` (as `set` would).
    fn may_write(&self, user: &crate::acl::User, key: &[u8]) -> bool {
        let mut probe = McRequest::new(Op::Set, Wire::Text);
        probe.keys.push(bytes::Bytes::copy_from_slice(key));
        permitted(user, &probe).is_ok()
    }

    /// Before authentication: the text protocol's `set` carries "user password"; anything
    /// else is refused.
    fn unauthenticated(&mut self, r: McRequest) {
        if r.wire == Wire::Text && r.op == Op::Set {
            let text = String::from_utf8_lossy(&r.value).into_owned();
            let mut parts = text.split_whitespace();
            let ok = match (parts.next(), parts.next(), parts.next()) {
                (Some(user), Some(pass), None) => self.login(user, pass.as_bytes()),
                _ => false,
            };
            return self.local(|out| {
                if ok {
                    out.extend_from_slice(mc::STORED);
                } else {
                    mc::client_error(out, "authentication failure");
                }
            });
        }
        self.local(|out| match r.wire {
            Wire::Binary => binary::error(out, r.opcode, status::AUTH_ERROR, r.opaque),
            _ => mc::client_error(out, "unauthenticated"),
        });
    }

    fn login(&mut self, user: &str, pass: &[u8]) -> bool {
        let found = self.node.acl.authenticate(user, pass).filter(|u| u.enabled);
        let ok = found.is_some();
        if let Some(u) = found {
            self.authed = true;
            self.user_name = u.name.clone();
            self.acl_version = self.node.acl.version();
            self.user = (!u.unrestricted()).then_some(u);
        } else {
            self.node.stats.memcache_auth_failures.fetch_add(1, Relaxed);
        }
        ok
    }

    /// SASL PLAIN: `[authzid] NUL authcid NUL password`.
    fn sasl(&mut self, r: &McRequest) {
        let ok = r.key() == b"PLAIN" && {
            let mut parts = r.value.split(|&b| b == 0);
            let (_authz, user, pass) = (parts.next(), parts.next(), parts.next());
            match (user, pass, parts.next()) {
                (Some(u), Some(p), None) => self.login(&String::from_utf8_lossy(u), p),
                _ => false,
            }
        };
        self.local(|out| {
            if ok {
                binary::response(out, r.opcode, status::OK, r.opaque, 0, &[], b"Authenticated");
            } else {
                binary::error(out, r.opcode, status::AUTH_ERROR, r.opaque);
            }
        });
    }

    async fn stats(&mut self, r: &McRequest) {
        let lines = super::memcache_stats::collect(&self.node, &r.value).await;
        self.local(|out| match (r.wire, lines) {
            (Wire::Binary, Some(lines)) => {
                for (name, value) in lines {
                    binary::response(out, opcode::STAT, status::OK, r.opaque, 0, name.as_bytes(), value.as_bytes());
                }
                binary::response(out, opcode::STAT, status::OK, r.opaque, 0, &[], &[]);
            }
            (Wire::Binary, None) => binary::error(out, r.opcode, status::KEY_NOT_FOUND, r.opaque),
            (_, Some(lines)) => {
                for (name, value) in lines {
                    mc::stat(out, &name, value);
                }
                out.extend_from_slice(mc::END);
            }
            (_, None) => out.extend_from_slice(mc::ERROR),
        });
    }

    fn enqueue(&mut self, shard: usize, spec: &'static CommandSpec, req: shoal_proto::Request, r: &McRequest) {
        let batch = match &mut self.pending[shard] {
            Some(b) => b,
            slot => {
                let mut b = self.spare.pop().unwrap_or_else(|| Batch::new(self.node.exec_settings()));
                b.db = 0;
                b.settings = self.node.exec_settings();
                b.settings.client = self.handle.id;
                b.client = Some(self.handle.clone());
                slot.insert(b)
            }
        };
        batch.cmds.push((spec, req));
        self.seq.push(Src::Shard(shard, r.wire, r.opcode, r.opaque));
    }

    /// The common case of a flush: every reply came from one shard's batch and none is an
    /// error to rewrite, so the batch's buffer becomes the output as it is.
    fn take_whole_batch(&mut self) -> bool {
        let Some(&Src::Shard(first, ..)) = self.seq.first() else { return false };
        if !self.wbuf.is_empty() || !self.seq.iter().all(|s| matches!(s, Src::Shard(x, ..) if *x == first)) {
            return false;
        }
        let Some((b, _)) = &self.done[first] else { return false };
        let starts = std::iter::once(0).chain(b.ends.iter().map(|&e| e as usize));
        if starts.take(b.ends.len()).any(|at| b.out.get(at) == Some(&b'-')) {
            return false;
        }
        let (mut b, _) = self.done[first].take().expect("checked above");
        std::mem::swap(&mut self.wbuf, &mut b.out);
        self.recycle(b);
        self.seq.clear();
        true
    }

    /// Keeps an answered batch's allocations for the next one.
    fn recycle(&mut self, mut b: Box<Batch>) {
        b.out.clear();
        b.cmds.clear();
        self.spare.push(b);
    }

    /// Sends the pending batches, waits for them, and copies replies out in request order.
    async fn flush(&mut self) {
        if self.seq.is_empty() {
            return;
        }
        self.node.run_batches(&mut self.pending, &mut self.done, &mut self.in_flight).await;
        if self.take_whole_batch() {
            return;
        }
        for src in self.seq.drain(..) {
            match src {
                Src::Local(r) => self.wbuf.extend_from_slice(&self.local[r]),
                Src::Shard(s, wire, op, opaque) => match &mut self.done[s] {
                    Some((b, i)) => {
                        let start = if *i == 0 { 0 } else { b.ends[*i - 1] as usize };
                        let end = b.ends[*i] as usize;
                        *i += 1;
                        let reply = &b.out[start..end];
                        if reply.first() == Some(&b'-') {
                            server_error(&mut self.wbuf, wire, op, opaque, reply);
                        } else {
                            self.wbuf.extend_from_slice(reply);
                        }
                    }
                    None => server_error(&mut self.wbuf, wire, op, opaque, b"-shard unavailable\r\n"),
                },
            }
        }
        self.local.clear();
        for s in 0..self.done.len() {
            if let Some((b, _)) = self.done[s].take() {
                self.recycle(b);
            }
        }
    }
}

/// Whether an authenticated user's ACL rules allow `r`: each Memcached command is checked as
/// the RESP command that does the same (get as GET, set as SET, delete as DEL, ...), on each
/// of its keys. `Err` names what was refused.
fn permitted(user: &crate::acl::User, r: &McRequest) -> Result<(), String> {
    let name = match r.op {
        Op::Get | Op::Gets | Op::MetaGet | Op::MetaDebug => "get",
        Op::Gat | Op::Gats => "getex",
        Op::Touch => "expire",
        Op::Set | Op::Add | Op::Replace | Op::Cas | Op::MetaSet => "set",
        Op::Append | Op::Prepend => "append",
        Op::Incr | Op::Decr | Op::MetaArith => "incrby",
        Op::Delete | Op::MetaDelete => "del",
        Op::FlushAll => "flushdb",
        Op::Stats => "info",
        _ => return Ok(()),
    };
    let spec = table().lookup(name.as_bytes()).expect("a RESP command");
    let keys: Vec<&[u8]> = if r.op.has_key() { r.keys.iter().map(|k| &k[..]).collect() } else { vec![] };
    let check = |key: Option<&[u8]>| {
        let mut args: Vec<&[u8]> = vec![name.as_bytes()];
        args.extend(key);
        // Arguments the RESP form needs after the key, so its key positions line up.
        match name {
            "set" | "append" | "incrby" | "expire" => args.push(b"0"),
            _ => {}
        }
        user.check(spec, &shoal_proto::Request::from_args(args))
    };
    let denied = |e: crate::acl::Denied| match e {
        crate::acl::Denied::Command => format!("command '{}'", r.op.name()),
        _ => "key".to_string(),
    };
    if keys.is_empty() {
        return check(None).map_err(denied);
    }
    keys.into_iter().try_for_each(|k| check(Some(k))).map_err(denied)
}

/// A refusal that applies to the whole node (a script is running), before dispatch.
fn refusal(out: &mut BytesMut, r: &McRequest, msg: &str) {
    match r.wire {
        Wire::Binary => binary::error(out, r.opcode, status::OUT_OF_MEMORY, r.opaque),
        _ => mc::server_error(out, msg),
    }
}

/// Turns a RESP error a shard wrote (out of memory, write log failure, busy) into the
/// request's protocol: `SERVER_ERROR <message>`, or a binary error status.
fn server_error(out: &mut BytesMut, wire: Wire, op: u8, opaque: u32, resp: &[u8]) {
    let msg = resp.strip_prefix(b"-").unwrap_or(resp);
    let msg = msg.strip_suffix(b"\r\n").unwrap_or(msg);
    match wire {
        Wire::Binary => {
            let st = if msg.starts_with(b"OOM") { status::OUT_OF_MEMORY } else { 0x0084 };
            binary::response(out, op, st, opaque, 0, &[], msg);
        }
        _ => {
            let text = String::from_utf8_lossy(msg);
            let text = if text.starts_with("OOM") { "out of memory storing object".into() } else { text };
            mc::server_error(out, &text);
        }
    }
}
