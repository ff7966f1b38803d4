//! Commands the gateway runs itself: connection state, broadcasts to every shard, server
//! and cluster introspection. They get the node and the session, never the socket.

use super::table::{CommandSpec, Gw};
use crate::gateway::session::Session;
use crate::node::Node;
use crate::shard::ShardState;
use bytes::BytesMut;
use shoal_proto::{reply, Request};
use std::sync::Arc;

pub struct GwCtx<'a> {
    pub node: &'a Arc<Node>,
    pub session: &'a mut Session,
    pub out: &'a mut BytesMut,
    pub spec: &'static CommandSpec,
    pub failed: bool,
    /// Every shard, when the caller already holds them all (a script): commands that visit
    /// each shard visit these instead of asking the shards' actors, which wait for them.
    pub held: Option<&'a mut (dyn HeldShards + 'a)>,
}

/// Gateway commands that reach the shards only through `GwCtx::each_shard`/`one_shard`/
/// `all_shards`, so run over held shards when given them.
pub fn runs_on_held_shards(g: Gw) -> bool {
    matches!(
        g,
        Gw::Keys
            | Gw::Scan
            | Gw::DbSize
            | Gw::RandomKey
            | Gw::FlushDb
            | Gw::FlushAll
            | Gw::SwapDb
            | Gw::Info
            | Gw::MemoryStats
            | Gw::ClusterCountKeysInSlot
            | Gw::ClusterGetKeysInSlot
    )
}

/// `f` on every shard, all of them leased for its length.
pub async fn with_all_leased<T>(node: &Node, f: impl FnOnce(&mut dyn HeldShards) -> T) -> T {
    let mut leases = node.lease_all().await;
    let mut states: Vec<&mut ShardState> = leases.iter_mut().map(|l| l.state()).collect();
    f(&mut states)
}

/// Every shard's state, held by the caller for the length of a command.
pub trait HeldShards: Send {
    fn count(&self) -> usize;
    fn shard(&mut self, i: usize) -> &mut ShardState;
}

impl HeldShards for Vec<&mut ShardState> {
    fn count(&self) -> usize {
        self.len()
    }

    fn shard(&mut self, i: usize) -> &mut ShardState {
        &mut *self[i]
    }
}

impl<'a> GwCtx<'a> {
    /// The script engine, or None having replied -BUSY: a script ahead turned busy.
    pub async fn engine(&mut self) -> Option<crate::script::EngineGuard<'a>> {
        let node: &'a Arc<Node> = self.node;
        match node.scripts.engine().await {
            Ok(engine) => Some(engine),
            Err(busy) => {
                self.err(busy);
                None
            }
        }
    }

    /// `f` on every shard, in shard order: on the held shards, or through their actors.
    pub async fn each_shard<T, F>(&mut self, f: F) -> Vec<T>
    where
        T: Send + 'static,
        F: Fn(&mut ShardState) -> T + Send + Sync + Clone + 'static,
    {
        match &mut self.held {
            Some(held) => (0..held.count()).map(|i| f(held.shard(i))).collect(),
            None => self.node.broadcast(f).await,
        }
    }

    /// `f` on every shard at once, atomically across them: the held shards, or all of them
    /// leased.
    pub async fn all_shards<T>(&mut self, f: impl FnOnce(&mut dyn HeldShards) -> T) -> T {
        match &mut self.held {
            Some(held) => f(&mut **held),
            None => with_all_leased(self.node, f).await,
        }
    }

    /// `f` on shard `shard`: held, or through its actor.
    pub async fn one_shard<T, F>(&mut self, shard: usize, f: F) -> T
    where
        T: Send + 'static,
        F: FnOnce(&mut ShardState) -> T + Send + 'static,
    {
        match &mut self.held {
            Some(held) => f(held.shard(shard)),
            None => self.node.broadcast_one(shard, f).await,
        }
    }

    pub fn err(&mut self, msg: &str) {
        reply::error(self.out, msg.as_bytes());
        self.note_error(msg);
    }

    /// Counts an error reply a script wrote (raised, or within its value) as Redis's
    /// `afterErrorReply` does: the call failed, and unless a command the script ran counted
    /// the error already (`counted`), it goes to errorstats as Redis writes it, `-<msg>`.
    pub fn note_script_error(&mut self, msg: &[u8], counted: bool) {
        self.failed = true;
        if !counted {
            self.node.stats.record_error_reply(msg);
        }
    }

    fn note_error(&mut self, msg: &str) {
        self.failed = true;
        self.node.stats.record_error_reply(msg.strip_prefix('-').unwrap_or(msg).as_bytes());
    }

    pub fn syntax(&mut self) {
        self.err(super::exec::SYNTAX);
    }

    pub fn proto(&self) -> shoal_proto::Protocol {
        self.session.proto
    }

    /// A verbatim text reply (INFO, CLIENT LIST, CLUSTER NODES).
    pub fn text(&mut self, s: &str) {
        reply::verbatim(self.out, self.session.proto, b"txt", s.as_bytes());
    }
}

pub async fn execute(g: Gw, ctx: &mut GwCtx<'_>, req: &Request) {
    run(g, ctx, req).await;
    if super::monitor::shown_after(g) {
        super::monitor::show(ctx.node, ctx.session, ctx.spec, req);
    }
}

async fn run(g: Gw, ctx: &mut GwCtx<'_>, req: &Request) {
    use super::{client, cluster, command, config, connection, info, pubsub, server};
    use crate::pubsub::Space;
    match g {
        Gw::Ping => connection::ping(ctx, req),
        Gw::Echo => reply::bulk(ctx.out, req.arg(1)),
        Gw::Hello => connection::hello(ctx, req),
        Gw::Auth => connection::auth(ctx, req),
        Gw::Select => connection::select(ctx, req),
        Gw::Quit => {
            reply::ok(ctx.out);
            ctx.session.close_after_reply = true;
        }
        Gw::Reset => {
            super::multi::unwatch_all(ctx);
            let id = ctx.session.handle.id;
            pubsub::forget_all(ctx.node, &mut ctx.session.subs, id);
            super::monitor::stop(ctx.node, ctx.session);
            ctx.session.pubsub = None;
            if ctx.session.tracking.take().is_some() {
                ctx.node.tracking.disable(id);
                ctx.session.handle.tracking.store(false, std::sync::atomic::Ordering::Relaxed);
            }
            ctx.session.reset();
            reply::simple(ctx.out, b"RESET");
        }
        Gw::ReadOnly => {
            ctx.session.readonly = true;
            reply::ok(ctx.out);
        }
        Gw::ReadWrite => {
            ctx.session.readonly = false;
            reply::ok(ctx.out);
        }
        Gw::Asking => {
            ctx.session.asking = true;
            reply::ok(ctx.out);
        }
        Gw::Time => {
            let us = crate::util::now_us();
            reply::array_len(ctx.out, 2);
            reply::bulk(ctx.out, (us / 1_000_000).to_string().as_bytes());
            reply::bulk(ctx.out, (us % 1_000_000).to_string().as_bytes());
        }
        Gw::Info => info::info(ctx, req).await,
        Gw::ConfigGet => config::get(ctx, req),
        Gw::ConfigSet => config::set(ctx, req),
        Gw::ConfigResetStat => config::resetstat(ctx).await,
        Gw::ConfigRewrite => ctx.err("ERR The server is running without a config file"),
        Gw::ClientId => reply::integer(ctx.out, ctx.session.handle.id as i64),
        Gw::ClientSetName => client::setname(ctx, req),
        Gw::ClientGetName => client::getname(ctx),
        Gw::ClientList => client::list(ctx, req),
        Gw::ClientInfo => client::info(ctx),
        Gw::ClientKill => client::kill(ctx, req),
        Gw::ClientPause => client::pause(ctx, req),
        Gw::ClientUnpause => client::unpause(ctx),
        Gw::ClientUnblock => client::unblock(ctx, req),
        Gw::ClientReply => client::reply_mode(ctx, req),
        Gw::ClientNoEvict => client::flag(ctx, req, |h| &h.no_evict),
        Gw::ClientNoTouch => client::flag(ctx, req, |h| &h.no_touch),
        Gw::ClientSetInfo => client::setinfo(ctx, req),
        Gw::ClientTracking => client::tracking(ctx, req),
        Gw::ClientCaching => client::caching(ctx, req),
        Gw::ClientGetRedir => client::getredir(ctx),
        Gw::ClientTrackingInfo => client::trackinginfo(ctx),
        Gw::Debug => server::debug(ctx, req).await,
        Gw::Shutdown => server::shutdown(ctx, req),
        Gw::DbSize => server::dbsize(ctx).await,
        Gw::Save => server::save(ctx).await,
        Gw::BgSave => server::bgsave(ctx, req).await,
        Gw::BgRewriteAof => server::bgrewriteaof(ctx).await,
        Gw::AclSetUser => super::acl::setuser(ctx, req),
        Gw::AclGetUser => super::acl::getuser(ctx, req),
        Gw::AclDelUser => super::acl::deluser(ctx, req),
        Gw::AclUsers => super::acl::users(ctx),
        Gw::AclList => super::acl::list(ctx),
        Gw::AclWhoAmI => super::acl::whoami(ctx),
        Gw::AclCat => super::acl::cat(ctx, req),
        Gw::AclGenPass => super::acl::genpass(ctx, req),
        Gw::AclDryRun => super::acl::dryrun(ctx, req),
        Gw::AclLog => super::acl::log(ctx, req),
        Gw::AclSave => super::acl::save(ctx),
        Gw::AclLoad => super::acl::load(ctx),
        Gw::BackupNow => super::backup::now(ctx),
        Gw::BackupList => super::backup::list(ctx).await,
        Gw::BackupRestore => super::backup::restore(ctx, req).await,
        Gw::BackupStatus => super::backup::status(ctx),
        Gw::LastSave => {
            reply::integer(ctx.out, ctx.node.saves.last_save.load(std::sync::atomic::Ordering::Relaxed) as i64)
        }
        Gw::MemoryStats => super::memory::stats(ctx).await,
        Gw::MemoryDoctor => super::memory::doctor(ctx),
        Gw::MemoryMallocStats => super::memory::malloc_stats(ctx),
        Gw::MemoryPurge => super::memory::purge(ctx),
        Gw::FlushDb => server::flush(ctx, req, false).await,
        Gw::FlushAll => server::flush(ctx, req, true).await,
        Gw::SwapDb => server::swapdb(ctx, req).await,
        Gw::Keys => server::keys(ctx, req).await,
        Gw::Scan => server::scan(ctx, req).await,
        Gw::RandomKey => server::randomkey(ctx).await,
        Gw::Command => command::list_all(ctx),
        Gw::CommandCount => reply::integer(ctx.out, super::table::table().len() as i64),
        Gw::CommandInfo => command::info(ctx, req),
        Gw::CommandDocs => command::docs(ctx, req),
        Gw::CommandGetKeys => command::getkeys(ctx, req, false),
        Gw::CommandGetKeysAndFlags => command::getkeys(ctx, req, true),
        Gw::CommandList => command::list(ctx, req),
        Gw::ClusterInfo => cluster::info(ctx),
        Gw::ClusterMyId => reply::bulk(ctx.out, ctx.node.node_id.as_bytes()),
        Gw::ClusterMyShardId => reply::bulk(ctx.out, cluster::shard_id(ctx.node).as_bytes()),
        Gw::ClusterSlots => cluster::slots(ctx),
        Gw::ClusterShards => cluster::shards(ctx),
        Gw::ClusterNodes => cluster::nodes(ctx),
        Gw::ClusterKeySlot => reply::integer(ctx.out, shoal_proto::key_hash_slot(req.arg(2)) as i64),
        Gw::ClusterCountKeysInSlot => cluster::countkeysinslot(ctx, req).await,
        Gw::ClusterGetKeysInSlot => cluster::getkeysinslot(ctx, req).await,
        Gw::Help => help(ctx),
        Gw::Multi => super::multi::multi(ctx),
        Gw::Exec => super::multi::exec(ctx).await,
        Gw::Monitor => super::monitor::monitor(ctx),
        Gw::Eval | Gw::EvalSha | Gw::EvalRo | Gw::EvalShaRo | Gw::FCall | Gw::FCallRo => {
            super::scripting::run_script(ctx, g, req).await
        }
        Gw::ScriptLoad => super::scripting::script_load(ctx, req).await,
        Gw::ScriptExists => super::scripting::script_exists(ctx, req).await,
        Gw::ScriptFlush => super::scripting::script_flush(ctx, req).await,
        Gw::ScriptKill => super::scripting::kill(ctx, false),
        Gw::ScriptDebug => super::scripting::debug(ctx, req),
        Gw::FunctionLoad => super::functions::load(ctx, req).await,
        Gw::FunctionList => super::functions::list(ctx, req).await,
        Gw::FunctionDelete => super::functions::delete(ctx, req).await,
        Gw::FunctionFlush => super::functions::flush(ctx, req).await,
        Gw::FunctionDump => super::functions::dump(ctx).await,
        Gw::FunctionRestore => super::functions::restore(ctx, req).await,
        Gw::FunctionStats => super::functions::stats(ctx).await,
        Gw::FunctionKill => super::scripting::kill(ctx, true),
        Gw::SlowLogGet => super::slowlog::get(ctx, req),
        Gw::SlowLogLen => super::slowlog::len(ctx),
        Gw::SlowLogReset => super::slowlog::reset(ctx),
        Gw::Discard => super::multi::discard(ctx),
        Gw::Watch => super::multi::watch(ctx, req).await,
        Gw::Unwatch => super::multi::unwatch(ctx),
        Gw::Subscribe => pubsub::subscribe(ctx, req, Space::Channel),
        Gw::Unsubscribe => pubsub::unsubscribe(ctx, req, Space::Channel),
        Gw::PSubscribe => pubsub::subscribe(ctx, req, Space::Pattern),
        Gw::PUnsubscribe => pubsub::unsubscribe(ctx, req, Space::Pattern),
        Gw::SSubscribe => pubsub::subscribe(ctx, req, Space::Shard),
        Gw::SUnsubscribe => pubsub::unsubscribe(ctx, req, Space::Shard),
        Gw::Publish => pubsub::publish(ctx, req),
        Gw::SPublish => pubsub::spublish(ctx, req),
        Gw::PubsubChannels => pubsub::channels(ctx, req, Space::Channel),
        Gw::PubsubNumSub => pubsub::numsub(ctx, req, Space::Channel),
        Gw::PubsubNumPat => pubsub::numpat(ctx),
        Gw::PubsubShardChannels => pubsub::channels(ctx, req, Space::Shard),
        Gw::PubsubShardNumSub => pubsub::numsub(ctx, req, Space::Shard),
    }
}

/// The HELP subcommand of any container: Redis's own text when Shoal has every subcommand it
/// names, else a short list of Shoal's subcommands.
fn help(ctx: &mut GwCtx<'_>) {
    let parent = ctx.spec.parent.unwrap_or(ctx.spec.name);
    let Some(container) = super::table::table().lookup(parent.as_bytes()) else { return };
    let has = |name: &str| container.subcommands.iter().any(|sub| sub.name.eq_ignore_ascii_case(name));
    // Past the first line, an unindented line starts with the subcommand it explains (or is
    // COMMAND's "(no subcommand)").
    let redis =
        super::redis_meta::HELP.iter().find(|(name, _)| name.eq_ignore_ascii_case(parent)).filter(|(_, text)| {
            text.iter().skip(1).filter(|l| !l.starts_with([' ', '('])).all(|l| has(l.split(' ').next().unwrap_or(l)))
        });
    if let Some((_, text)) = redis {
        reply::array_len(ctx.out, text.len());
        for l in text.iter() {
            reply::simple(ctx.out, l.as_bytes());
        }
        return;
    }
    let mut lines =
        vec![format!("{} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:", parent.to_ascii_uppercase())];
    for sub in &container.subcommands {
        lines.push(sub.name.to_ascii_uppercase());
        lines.push(format!("    {}", sub.summary));
    }
    reply::array_len(ctx.out, lines.len());
    for l in lines {
        reply::simple(ctx.out, l.as_bytes());
    }
}
