//! One client connection: read, parse every complete request, send each shard one batch of
//! the commands for its keys, write all replies back in request order with one write.
//!
//! Commands that are not single-shard act as barriers: the batches before them are flushed
//! first, so a client always observes its own commands in order. A command with keys in
//! several shards starts a *locked segment*: it and the key commands after it in the same
//! read run together under one lease of the union of their shards, so a pipeline of MSETs
//! costs one round trip to the shards, not one per command.

use super::session::{ReplyMode, Session};
use crate::cmd::blocking::BlockReq;
use crate::cmd::exec::Exec;
use crate::cmd::gateway::{self, GwCtx};
use crate::cmd::table::{flags, table, CommandSpec, Gw, Handler};
use crate::node::{Node, Unblock};
use crate::shard::blocked::{Waiter, Wake};
use crate::shard::{run_guarded, serve_blocked, Batch, ShardMsg};
use crate::util::now_ms;
use bytes::BytesMut;
use shoal_proto::{reply, Limits, ProtocolError, Request, RequestParser};
use std::net::SocketAddr;
use std::ops::Range;
use std::os::fd::RawFd;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::oneshot;
use tracing::debug;

const READ_CHUNK: usize = 16 * 1024;
/// Most commands one locked segment may hold; other clients wait for it to finish.
const MAX_LOCKED_SEGMENT: usize = 256;

/// What scheduling a request came to.
enum Step {
    /// Queued for its shard, or answered with an error; the command id if it will run.
    Done(Option<usize>),
    /// Must run after everything before it; with its shards when it is a key command.
    Later(&'static CommandSpec, Request, Option<Vec<usize>>),
}

/// An entry of a locked segment: a command with its reply suppression, or an error found
/// before dispatch, which must be answered in its place among the segment's replies.
enum Locked {
    Cmd(&'static CommandSpec, Request, bool),
    Error(String, bool),
}

/// Where a reply in the current run of batched commands comes from.
enum Src {
    /// The next reply of this shard's batch.
    Shard(usize, bool),
    /// Bytes already in `local` (errors found before dispatch).
    Local(Range<usize>, bool),
}

pub struct Connection<S> {
    node: Arc<Node>,
    stream: S,
    session: Session,
    parser: RequestParser,
    rbuf: BytesMut,
    wbuf: BytesMut,
    local: BytesMut,
    reqs: Vec<Request>,
    pending: Vec<Option<Box<Batch>>>,
    // Batches stay boxed: they travel through shard mailboxes and back without copying.
    #[allow(clippy::vec_box)]
    spare: Vec<Box<Batch>>,
    seq: Vec<Src>,
    in_flight: Vec<(usize, oneshot::Receiver<Box<Batch>>)>,
    done: Vec<Option<(Box<Batch>, usize)>>,
    /// The locked segment being collected, in request order.
    locked: Vec<Locked>,
    locked_shards: Vec<usize>,
    /// A wait the last blocking command registered.
    blocked: Option<BlockReq>,
    /// Bytes arrived while blocked that are not parsed yet.
    unparsed: bool,
    /// The last command looked up (top level, before any subcommand).
    last_spec: Option<&'static CommandSpec>,
    /// When the replies waiting to be written first went over the normal class's soft limit.
    over_soft_since: std::sync::atomic::AtomicU64,
}

/// How a blocking command's wait ended.
enum WaitEnd {
    Reply(BytesMut),
    Timeout,
    Retry,
    /// CLIENT UNBLOCK ... ERROR.
    Unblocked,
    /// The client disconnected or was killed.
    Gone,
}

/// What a blocking command answers when CLIENT UNBLOCK ... ERROR ends its wait.
const UNBLOCKED: &str = "UNBLOCKED client unblocked via CLIENT UNBLOCK";

pub async fn serve<S>(node: Arc<Node>, stream: S, addr: SocketAddr, laddr: SocketAddr, fd: Option<RawFd>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let handle = node.clients.register(addr, laddr, fd);
    let id = handle.id;
    let limits = Limits {
        max_bulk_len: node.live.proto_max_bulk_len.load(Relaxed) as usize,
        max_request_bytes: node.live.client_query_buffer_limit.load(Relaxed) as usize,
        ..Limits::default()
    };
    let shards = node.shards.len();
    let mut conn = Connection {
        node: node.clone(),
        stream,
        session: Session::new(handle),
        parser: RequestParser::new(limits),
        rbuf: BytesMut::with_capacity(READ_CHUNK),
        wbuf: BytesMut::with_capacity(READ_CHUNK),
        local: BytesMut::new(),
        reqs: Vec::new(),
        pending: (0..shards).map(|_| None).collect(),
        spare: Vec::new(),
        seq: Vec::new(),
        in_flight: Vec::new(),
        done: (0..shards).map(|_| None).collect(),
        locked: Vec::new(),
        locked_shards: Vec::new(),
        blocked: None,
        unparsed: false,
        last_spec: None,
        over_soft_since: std::sync::atomic::AtomicU64::new(0),
    };
    conn.session.start_auth(&node.acl);
    debug!(client = id, %addr, "client connected");
    // A node that began shutting down before this client registered must not miss it.
    if node.is_shutting_down() {
        conn.session.handle.stop_reading();
    }
    conn.run().await;
    crate::cmd::multi::forget_watches(&node, &mut conn.session.watched, &conn.session.watch_flag);
    crate::cmd::pubsub::forget_all(&node, &mut conn.session.subs, id);
    crate::cmd::monitor::stop(&node, &mut conn.session);
    if conn.session.tracking.is_some() {
        node.tracking.disable(id);
    }
    conn.session.handle.release_socket();
    node.clients.unregister(id);
    debug!(client = id, %addr, "client disconnected");
}

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<S> {
    async fn run(&mut self) {
        let handle = self.session.handle.clone();
        loop {
            make_room(&mut self.rbuf, self.parser.bytes_needed());
            let timeout = self.node.live.timeout.load(Relaxed);
            // Kills and shutdown end this read by shutting the socket down (see ClientHandle).
            // Input that arrived during a blocking wait is parsed before reading more.
            let n = if std::mem::take(&mut self.unparsed) {
                0
            } else if let Some((outbox, rx)) = &mut self.session.pubsub {
                // A subscriber waits for its next request and its next message at once (and
                // never times out, as in Redis).
                tokio::select! {
                    r = self.stream.read_buf(&mut self.rbuf) => match r {
                        Ok(n) if n > 0 && !handle.killed.load(Relaxed) => n,
                        _ => break,
                    },
                    m = rx.recv() => {
                        let Some(m) = m else { break };
                        let mut n = m.len();
                        self.wbuf.extend_from_slice(&m);
                        while let Ok(m) = rx.try_recv() {
                            n += m.len();
                            self.wbuf.extend_from_slice(&m);
                            if self.wbuf.len() > READ_CHUNK * 4 {
                                break;
                            }
                        }
                        outbox.written(n);
                        if !self.write_out().await || handle.killed.load(Relaxed) {
                            break;
                        }
                        continue;
                    }
                }
            } else {
                match read_with_timeout(&mut self.stream, &mut self.rbuf, timeout).await {
                    Some(Ok(n)) if n > 0 && !handle.killed.load(Relaxed) => n,
                    _ => break,
                }
            };
            let node = &self.node;
            node.stats.net_input_bytes.add(n as u64);
            node.stats.total_reads_processed.add(1);
            handle.last_interaction.store(crate::util::coarse_ms(), Relaxed);
            self.refresh_limits();
            let parsed = self.parser.parse(&mut self.rbuf, &mut self.reqs);
            handle.qbuf.store(self.rbuf.len(), Relaxed);
            self.process().await;
            if let Err(e) = parsed {
                self.node.stats.protocol_errors.fetch_add(1, Relaxed);
                if e != ProtocolError::QueryBufferLimit {
                    reply::error(&mut self.wbuf, format!("ERR {e}").as_bytes());
                    self.node.stats.record_error("ERR");
                }
                debug!(client = handle.id, error = %e, "protocol error, closing connection");
                self.session.close_after_reply = true;
            }
            if !self.write_out().await {
                break;
            }
            if self.session.close_after_reply || handle.killed.load(Relaxed) {
                break;
            }
        }
        let _ = self.stream.shutdown().await;
    }

    /// Sends the replies gathered so far; false when the client is gone.
    async fn write_out(&mut self) -> bool {
        if self.wbuf.is_empty() {
            return true;
        }
        // Replies a normal client has not read count against its output-buffer limit (Pub/Sub
        // messages count against the pubsub class, in the outbox).
        if self.session.pubsub.is_none() {
            let pending = self.wbuf.len() as u64;
            if self.node.output_limits.normal.exceeded(pending, crate::util::coarse_ms(), &self.over_soft_since) {
                tracing::warn!(
                    client = self.session.handle.id,
                    pending,
                    "client over its output buffer limit, disconnecting"
                );
                self.session.handle.kill();
                return false;
            }
        }
        // With appendfsync always, nothing this client could have seen is unsynced.
        self.node.wal.barrier().await;
        if self.stream.write_all(&self.wbuf).await.is_err() {
            return false;
        }
        self.node.stats.net_output_bytes.add(self.wbuf.len() as u64);
        self.node.stats.total_writes_processed.add(1);
        self.wbuf.clear();
        // A large reply should not pin a large buffer for the connection's life.
        if self.wbuf.capacity() > 1 << 20 {
            self.wbuf = BytesMut::with_capacity(READ_CHUNK);
        }
        true
    }

    /// Applies CONFIG SET changes to the size limits, as Redis does for open connections.
    fn refresh_limits(&mut self) {
        let live = &self.node.live;
        let bulk = live.proto_max_bulk_len.load(Relaxed) as usize;
        let query = live.client_query_buffer_limit.load(Relaxed) as usize;
        let l = self.parser.limits();
        if l.max_bulk_len != bulk || l.max_request_bytes != query {
            self.parser.set_limits(Limits { max_bulk_len: bulk, max_request_bytes: query, ..l.clone() });
        }
    }

    /// Runs every parsed request in order.
    async fn process(&mut self) {
        let mut reqs = std::mem::take(&mut self.reqs);
        let mut last_cmd = None;
        for req in reqs.drain(..) {
            if self.session.close_after_reply {
                break;
            }
            // The common case (a single-shard command) is scheduled without building a future.
            match self.schedule(req) {
                Step::Done(id) => last_cmd = id.or(last_cmd),
                Step::Later(spec, req, many) => {
                    self.schedule_barrier(spec, req, many).await;
                    last_cmd = Some(spec.id);
                }
            }
        }
        self.reqs = reqs;
        self.drain().await;
        if let Some(id) = last_cmd {
            self.session.handle.last_cmd.store(id, Relaxed);
        }
    }

    /// Whether this command's reply is dropped (CLIENT REPLY OFF/SKIP), advancing SKIP.
    fn suppress_next(&mut self) -> bool {
        let skip = self.session.skip_next;
        self.session.skip_next = false;
        skip || self.session.reply_mode == ReplyMode::Off
    }

    fn local_error(&mut self, msg: &str, cmd: Option<usize>) {
        if self.session.multi.is_some() {
            self.session.multi_failed = true;
        }
        self.node.stats.record_error_reply(msg.as_bytes());
        if let Some(id) = cmd {
            self.node.stats.record_rejected(id);
        }
        let suppress = self.suppress_next();
        if !self.locked.is_empty() {
            // The segment's replies are written when it runs, after `seq`'s: keep the order.
            self.locked.push(Locked::Error(msg.to_string(), suppress));
            return;
        }
        let start = self.local.len();
        reply::error(&mut self.local, msg.as_bytes());
        self.seq.push(Src::Local(start..self.local.len(), suppress));
    }

    /// CLIENT TRACKING: remembers the keys a read-only command reads (as its caching options
    /// allow), so their next change is announced to this client.
    fn track_read(&mut self, spec: &CommandSpec, req: &Request) {
        let Some(t) = self.session.tracking.as_mut() else { return };
        let caching = t.caching.take();
        if !spec.has(flags::READONLY) || t.bcast {
            return;
        }
        let wanted = match (t.optin, t.optout) {
            (true, _) => caching == Some(true),
            (_, true) => caching != Some(false),
            _ => true,
        };
        if wanted {
            let keys = spec.keys_of(req).map(|i| req.arg(i).to_vec());
            self.node.tracking.remember(self.session.handle.id, keys);
        }
    }

    /// A reply decided before dispatch (QUEUED), kept in order with the others.
    fn local_reply(&mut self, bytes: &[u8]) {
        let suppress = self.suppress_next();
        let start = self.local.len();
        self.local.extend_from_slice(bytes);
        self.seq.push(Src::Local(start..self.local.len(), suppress));
    }

    /// Finds the command, checks it, and queues it when it is single-shard; everything that
    /// must wait for the commands before it is handed back as `Step::Later`.
    fn schedule(&mut self, req: Request) -> Step {
        let t = table();
        // Pipelines repeat one command: compare with the last one before hashing the name.
        let cached = self.last_spec.filter(|s| s.name.as_bytes().eq_ignore_ascii_case(req.arg(0)));
        let found = self.node.acl.restrict.resolve(cached.or_else(|| t.lookup(req.arg(0))), req.arg(0));
        let Some(mut spec) = found else {
            self.local_error(&unknown_command_error(&req), None);
            return Step::Done(None);
        };
        self.last_spec = Some(spec);
        if !spec.subcommands.is_empty() && (req.len() >= 2 || matches!(spec.handler, Handler::Container)) {
            if req.len() < 2 {
                self.local_error(
                    &format!("ERR wrong number of arguments for '{}' command", spec.full_name),
                    Some(spec.id),
                );
                return Step::Done(None);
            }
            match spec.subcommand(req.arg(1)) {
                Some(sub) => spec = sub,
                None => {
                    let msg = format!(
                        "ERR unknown subcommand '{}'. Try {} HELP.",
                        truncated(req.arg(1), 128),
                        spec.name.to_ascii_uppercase()
                    );
                    self.local_error(&msg, None);
                    return Step::Done(None);
                }
            }
        }
        if !spec.arity_ok(req.len()) {
            self.local_error(&format!("ERR wrong number of arguments for '{}' command", spec.full_name), Some(spec.id));
            return Step::Done(None);
        }
        if let Err(msg) = self.session.permit(&self.node, spec, &req) {
            self.local_error(&msg, Some(spec.id));
            return Step::Done(None);
        }
        if !spec.has(flags::ALLOW_BUSY) {
            if let Some(busy) = self.node.scripts.busy() {
                self.local_error(busy, Some(spec.id));
                return Step::Done(None);
            }
        }
        if self.session.in_subscribed_context() && !allowed_when_subscribed(spec) {
            let msg = format!(
                "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
                spec.full_name
            );
            self.local_error(&msg, Some(spec.id));
            return Step::Done(None);
        }
        if let Some(msg) = crate::cmd::monitor::refused(&self.session, spec) {
            self.local_error(msg, Some(spec.id));
            return Step::Done(None);
        }
        if self.node.monitors.active() {
            // A transaction's commands are shown when EXEC runs them.
            let shown_later = match spec.handler {
                Handler::Gateway(Gw::Discard) => false,
                Handler::Gateway(g) if crate::cmd::monitor::shown_after(g) => true,
                _ => self.session.multi.is_some(),
            };
            if !shown_later {
                crate::cmd::monitor::show(&self.node, &self.session, spec, &req);
            }
        }
        if self.session.multi.is_some() && !controls_transaction(spec) {
            if spec.has(flags::NO_MULTI) {
                self.local_error("ERR Command not allowed inside a transaction", Some(spec.id));
                return Step::Done(None);
            }
            // Queueing takes memory too: at the limit Redis refuses every command but EXEC
            // and DISCARD, and the transaction fails.
            if self.node.memory.refuses_writes() {
                self.local_error(crate::memory::OOM_ERROR, Some(spec.id));
                return Step::Done(None);
            }
            self.session.multi.as_mut().expect("in MULTI").push((spec, req));
            self.local_reply(b"+QUEUED\r\n");
            return Step::Done(None);
        }
        if self.session.tracking.is_some() {
            self.track_read(spec, &req);
        }
        if !matches!(spec.handler, Handler::Shard(_)) || spec.has(flags::BLOCKING) || self.paused_for(spec) {
            return Step::Later(spec, req, None);
        }
        if spec.needs_all_shards(&req) {
            return Step::Later(spec, req, Some((0..self.node.shards.len()).collect()));
        }
        let route = &self.node.route;
        let mut keys = spec.keys_of(&req);
        let first = keys.next().map(|i| route.shard_of_key(req.arg(i))).unwrap_or(0);
        let mut shards: Option<Vec<usize>> = None;
        for i in keys {
            let s = route.shard_of_key(req.arg(i));
            if s != first {
                shards.get_or_insert_with(|| vec![first]).push(s);
            }
        }
        if shards.is_none() && self.locked.is_empty() {
            self.enqueue(first, spec, req);
            return Step::Done(Some(spec.id));
        }
        Step::Later(spec, req, Some(shards.unwrap_or_else(|| vec![first])))
    }

    /// Commands that wait for everything before them: a paused command, a command joining or
    /// starting a locked segment (`shards` given), or a gateway command.
    async fn schedule_barrier(&mut self, spec: &'static CommandSpec, req: Request, shards: Option<Vec<usize>>) {
        if self.paused_for(spec) {
            self.drain().await;
            self.wait_unpaused(spec).await;
        }
        match spec.handler {
            Handler::Shard(_) => {
                let shards = shards.unwrap_or_else(|| {
                    let route = &self.node.route;
                    let mut v: Vec<usize> = spec.keys_of(&req).map(|i| route.shard_of_key(req.arg(i))).collect();
                    if v.is_empty() {
                        v.push(0);
                    }
                    v
                });
                if spec.has(flags::BLOCKING) {
                    self.drain().await;
                    let suppress = self.suppress_next();
                    return self.run_blocking(spec, req, shards, suppress).await;
                }
                if shards.len() == 1 && self.locked.is_empty() {
                    return self.enqueue(shards[0], spec, req);
                }
                if self.locked.is_empty() {
                    // Commands queued before the segment run first.
                    self.flush().await;
                }
                let suppress = self.suppress_next();
                self.locked_shards.extend(shards);
                self.locked.push(Locked::Cmd(spec, req, suppress));
                if self.locked.len() >= MAX_LOCKED_SEGMENT {
                    self.run_locked().await;
                }
            }
            Handler::Gateway(g) => {
                self.drain().await;
                // Shard commands meet the memory limit on their shard (which may evict first);
                // the gateway's denyoom commands (FUNCTION LOAD, RESTORE) meet it here.
                if spec.has(flags::DENYOOM) && self.node.memory.refuses_writes() {
                    return self.local_error(crate::memory::OOM_ERROR, Some(spec.id));
                }
                self.run_gateway(g, spec, req).await
            }
            Handler::Container => unreachable!("containers resolve to a subcommand"),
        }
    }

    #[inline]
    fn paused_for(&self, spec: &CommandSpec) -> bool {
        if self.node.pause_until.load(Relaxed) == 0 {
            return false;
        }
        let p = *self.node.pause.borrow();
        p.until_ms != 0 && self.node.uptime_ms() < p.until_ms && (!p.writes_only || spec.is_write())
    }

    async fn wait_unpaused(&mut self, spec: &CommandSpec) {
        // CLIENT LIST shows the held command and INFO counts the client as blocked, as Redis
        // does.
        let handle = &self.session.handle;
        handle.last_cmd.store(spec.id, Relaxed);
        handle.held.store(true, Relaxed);
        self.node.stats.blocked_clients.fetch_add(1, Relaxed);
        let mut rx = self.node.pause.subscribe();
        while self.paused_for(spec) {
            let p = *rx.borrow_and_update();
            let left = p.until_ms.saturating_sub(self.node.uptime_ms());
            tokio::select! {
                _ = rx.changed() => {}
                _ = tokio::time::sleep(Duration::from_millis(left.max(1))) => {}
            }
        }
        self.node.stats.blocked_clients.fetch_sub(1, Relaxed);
        self.session.handle.held.store(false, Relaxed);
    }

    fn enqueue(&mut self, shard: usize, spec: &'static CommandSpec, req: Request) {
        let suppress = self.suppress_next();
        let batch = match &mut self.pending[shard] {
            Some(b) => b,
            slot => {
                let mut b = self.spare.pop().unwrap_or_else(|| Batch::new(self.node.exec_settings()));
                b.db = self.session.db;
                b.proto = self.session.proto;
                b.settings = self.node.exec_settings();
                b.settings.client = self.session.handle.id;
                b.client = Some(self.session.handle.clone());
                slot.insert(b)
            }
        };
        batch.cmds.push((spec, req));
        self.seq.push(Src::Shard(shard, suppress));
    }

    /// Sends the pending batches, waits for them, and copies replies out in request order.
    async fn flush(&mut self) {
        if self.seq.is_empty() {
            return;
        }
        self.node.run_batches(&mut self.pending, &mut self.done, &mut self.in_flight).await;
        // Fast path: one shard, nothing local, nothing suppressed: hand its buffer over.
        if self.wbuf.is_empty() && self.seq.iter().all(|s| matches!(s, Src::Shard(_, false))) {
            if let Src::Shard(first, _) = self.seq[0] {
                if self.seq.iter().all(|s| matches!(s, Src::Shard(x, _) if *x == first)) {
                    if let Some((mut b, _)) = self.done[first].take() {
                        std::mem::swap(&mut self.wbuf, &mut b.out);
                        b.out.clear();
                        b.cmds.clear();
                        self.spare.push(b);
                        self.seq.clear();
                        return;
                    }
                }
            }
        }
        for src in self.seq.drain(..) {
            match src {
                Src::Local(r, suppress) => {
                    if !suppress {
                        self.wbuf.extend_from_slice(&self.local[r]);
                    }
                }
                Src::Shard(s, suppress) => match &mut self.done[s] {
                    Some((b, i)) => {
                        let start = if *i == 0 { 0 } else { b.ends[*i - 1] as usize };
                        let end = b.ends[*i] as usize;
                        *i += 1;
                        if !suppress {
                            self.wbuf.extend_from_slice(&b.out[start..end]);
                        }
                    }
                    None => reply::error(&mut self.wbuf, b"ERR shard unavailable"),
                },
            }
        }
        self.local.clear();
        for slot in self.done.iter_mut() {
            if let Some((mut b, _)) = slot.take() {
                b.out.clear();
                b.cmds.clear();
                self.spare.push(b);
            }
        }
    }

    /// Runs everything scheduled so far: the pending batches, then the locked segment.
    async fn drain(&mut self) {
        self.flush().await;
        self.run_locked().await;
    }

    /// Runs the locked segment: lease the shards it touches, run its commands in order, give
    /// the shards back. Each command is atomic across its shards; so is the whole segment.
    async fn run_locked(&mut self) {
        if self.locked.is_empty() {
            return;
        }
        let mut leases = self.node.lease(&self.locked_shards).await;
        let mut states: Vec<&mut crate::shard::ShardState> = leases.iter_mut().map(|l| l.state()).collect();
        let mut settings = self.node.exec_settings();
        settings.client = self.session.handle.id;
        let now = now_ms();
        let mut t = Instant::now();
        for item in self.locked.drain(..) {
            let (spec, req, suppress) = match item {
                Locked::Cmd(spec, req, suppress) => (spec, req, suppress),
                Locked::Error(msg, suppress) => {
                    if !suppress {
                        reply::error(&mut self.wbuf, msg.as_bytes());
                    }
                    continue;
                }
            };
            let Handler::Shard(f) = spec.handler else { continue };
            let mark = self.wbuf.len();
            let route = &self.node.route;
            let mut ex =
                Exec::new(&mut states, route, self.session.db, self.session.proto, &mut self.wbuf, now, settings);
            let failed = run_guarded(&mut ex, f, &req, spec);
            if let Some(b) = ex.block.take() {
                self.blocked = Some(b);
            }
            serve_blocked(&mut states, route, now, settings);
            let t2 = Instant::now();
            self.node.record_call(spec, &req, (t2 - t).as_nanos() as u64, failed, &self.session.handle);
            t = t2;
            if suppress {
                self.wbuf.truncate(mark);
            }
        }
        drop(states);
        drop(leases);
        self.locked_shards.clear();
    }

    /// Runs a blocking command on its own; when it registered a wait, sends the replies so
    /// far and waits for a push, the timeout, or the client leaving.
    async fn run_blocking(&mut self, spec: &'static CommandSpec, req: Request, shards: Vec<usize>, suppress: bool) {
        loop {
            let mark = self.wbuf.len();
            self.locked_shards.extend(&shards);
            self.locked.push(Locked::Cmd(spec, req.clone(), false));
            self.run_locked().await;
            let Some(b) = self.blocked.take() else {
                if suppress {
                    self.wbuf.truncate(mark);
                }
                return;
            };
            if !self.write_out().await {
                self.session.close_after_reply = true;
            }
            let BlockReq { waiter, rx, timeout_ms, keys } = b;
            self.node.stats.blocked_clients.fetch_add(1, Relaxed);
            // CLIENT LIST shows a blocked client's command while it waits, as Redis does.
            self.session.handle.last_cmd.store(spec.id, Relaxed);
            let unblock = self.session.handle.block();
            let end = self.wait_blocked(&waiter, rx, unblock, timeout_ms).await;
            self.session.handle.unblocked();
            self.node.stats.blocked_clients.fetch_sub(1, Relaxed);
            // Drop the wait's registrations on the shards that did not serve it.
            for (shard, key) in keys {
                let (w, db) = (waiter.clone(), waiter.db);
                let job: crate::shard::RunFn = Box::new(move |st| st.blocked.forget(db, &key, &w));
                let _ = self.node.shards[shard].cast(ShardMsg::Run(job));
            }
            let mark = self.wbuf.len();
            match end {
                WaitEnd::Reply(r) => self.wbuf.extend_from_slice(&r),
                WaitEnd::Timeout => reply::null_array(&mut self.wbuf, waiter.proto),
                WaitEnd::Unblocked => {
                    // Counted as Redis counts it: an error reply, and the command failed.
                    reply::error(&mut self.wbuf, UNBLOCKED.as_bytes());
                    self.node.stats.record_error_reply(UNBLOCKED.as_bytes());
                    self.node.stats.record_failed(spec.id);
                }
                WaitEnd::Retry => continue,
                WaitEnd::Gone => {
                    self.session.close_after_reply = true;
                    return;
                }
            }
            if suppress {
                self.wbuf.truncate(mark);
            }
            return;
        }
    }

    /// Waits for a shard to serve `waiter`, its timeout (0: none), CLIENT UNBLOCK (on
    /// `unblock`), or the client to leave. Whoever claims the waiter first decides; a shard
    /// that claimed it always sends.
    async fn wait_blocked(
        &mut self,
        waiter: &Waiter,
        mut rx: oneshot::Receiver<Wake>,
        mut unblock: oneshot::Receiver<Unblock>,
        timeout_ms: u64,
    ) -> WaitEnd {
        let deadline = (timeout_ms > 0)
            .then(|| tokio::time::Instant::now().checked_add(Duration::from_millis(timeout_ms)))
            .flatten();
        let sleep = tokio::time::sleep_until(deadline.unwrap_or_else(tokio::time::Instant::now));
        tokio::pin!(sleep);
        let limit = self.node.live.client_query_buffer_limit.load(Relaxed) as usize;
        let woken = |w: Result<Wake, oneshot::error::RecvError>| match w {
            Ok(Wake::Reply(r)) => WaitEnd::Reply(r),
            Ok(Wake::Retry) => WaitEnd::Retry,
            Err(_) => WaitEnd::Gone,
        };
        loop {
            tokio::select! {
                w = &mut rx => return woken(w),
                _ = &mut sleep, if deadline.is_some() => {
                    if waiter.claim() {
                        return WaitEnd::Timeout;
                    }
                    // A shard claimed it in the same instant: its reply is on the way.
                    return woken(rx.await);
                }
                how = &mut unblock => {
                    if !waiter.claim() {
                        return woken(rx.await);
                    }
                    // (Only CLIENT UNBLOCK takes the sender while this waits, and it sends.)
                    return match how {
                        Ok(Unblock::Error) => WaitEnd::Unblocked,
                        _ => WaitEnd::Timeout,
                    };
                }
                r = self.stream.read_buf(&mut self.rbuf), if self.rbuf.len() < limit => {
                    match r {
                        Ok(n) if n > 0 && !self.session.handle.killed.load(Relaxed) => self.unparsed = true,
                        _ => {
                            if !waiter.claim() {
                                // Served as it left: the reply has nowhere to go (as in Redis).
                                let _ = rx.await;
                            }
                            return WaitEnd::Gone;
                        }
                    }
                }
            }
        }
    }

    async fn run_gateway(&mut self, g: Gw, spec: &'static CommandSpec, req: Request) {
        // CLIENT REPLY decides its own reply; everything else obeys the reply mode.
        let suppress = if g == Gw::ClientReply { false } else { self.suppress_next() };
        let started = Instant::now();
        let mark = self.wbuf.len();
        let mut ctx = GwCtx {
            node: &self.node,
            session: &mut self.session,
            out: &mut self.wbuf,
            spec,
            failed: false,
            held: None,
        };
        // Boxed: the gateway's futures are large, and would otherwise be moved into place as
        // part of every command's future.
        Box::pin(gateway::execute(g, &mut ctx, &req)).await;
        let failed = ctx.failed;
        self.node.record_call(spec, &req, started.elapsed().as_nanos() as u64, failed, &self.session.handle);
        if suppress {
            self.wbuf.truncate(mark);
        }
    }
}

/// Makes room in a connection's read buffer before a read: for all of a request whose size
/// is known (`needed`, in all), or another chunk when little is left.
pub(super) fn make_room(buf: &mut BytesMut, needed: Option<usize>) {
    let free = buf.capacity() - buf.len();
    match needed {
        Some(need) if need > buf.len() && need - buf.len() > free => buf.reserve(need - buf.len()),
        _ if free < 1024 => buf.reserve(READ_CHUNK),
        _ => {}
    }
}

/// Reads into `buf`; `None` when the client stayed idle for `timeout_s` seconds (0: never).
pub(super) async fn read_with_timeout<S: AsyncRead + Unpin>(
    s: &mut S,
    buf: &mut BytesMut,
    timeout_s: u64,
) -> Option<std::io::Result<usize>> {
    if timeout_s == 0 {
        Some(s.read_buf(buf).await)
    } else {
        tokio::time::timeout(Duration::from_secs(timeout_s), s.read_buf(buf)).await.ok()
    }
}

/// What a RESP2 client in the subscribed context may still run.
fn allowed_when_subscribed(spec: &CommandSpec) -> bool {
    matches!(
        spec.handler,
        Handler::Gateway(
            Gw::Subscribe
                | Gw::Unsubscribe
                | Gw::PSubscribe
                | Gw::PUnsubscribe
                | Gw::SSubscribe
                | Gw::SUnsubscribe
                | Gw::Ping
                | Gw::Quit
                | Gw::Reset
        )
    )
}

/// Commands that act on a transaction rather than being queued in it.
fn controls_transaction(spec: &CommandSpec) -> bool {
    matches!(spec.handler, Handler::Gateway(Gw::Exec | Gw::Discard | Gw::Multi | Gw::Watch | Gw::Quit | Gw::Reset))
}

/// C-string view of an argument, as Redis formats it with `%s`: cut at NUL and at `max` bytes.
fn truncated(arg: &[u8], max: usize) -> String {
    let end = arg.iter().position(|&b| b == 0).unwrap_or(arg.len()).min(max);
    String::from_utf8_lossy(&arg[..end]).into_owned()
}

/// Redis 7's unknown-command error, with up to 128 bytes of the arguments quoted.
/// Redis's reply to a command it does not know (or that is withheld or renamed away).
pub(crate) fn unknown_command_error(req: &Request) -> String {
    let mut args = String::new();
    for a in req.args().skip(1) {
        if args.len() >= 128 {
            break;
        }
        let room = 128 - args.len();
        args.push('\'');
        args.push_str(&truncated(a, room));
        args.push_str("' ");
    }
    format!("ERR unknown command '{}', with args beginning with: {}", truncated(req.arg(0), 128), args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_command_text_matches_redis() {
        let req = Request::from_args(["foo", "a", "b"]);
        assert_eq!(unknown_command_error(&req), "ERR unknown command 'foo', with args beginning with: 'a' 'b' ");
        let req = Request::from_args(["foo"]);
        assert_eq!(unknown_command_error(&req), "ERR unknown command 'foo', with args beginning with: ");
    }
}
