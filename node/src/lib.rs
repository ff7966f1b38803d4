//! shoal-node: everything a Shoal node runs. The `shoal` binary is a thin shell over
//! [`server::run`].

pub mod acl;
pub mod cmd;
pub mod config;
pub mod gateway;
pub mod memory;
pub mod metrics;
pub mod monitor;
pub mod node;
pub mod notify;
pub mod persist;
pub mod pubsub;
pub mod script;
pub mod server;
pub mod shard;
pub mod slots;
pub mod slowlog;
pub mod tracking;
pub mod util;

/// The Redis version whose behaviour Shoal matches; clients gate features on it. It is the
/// version the command metadata was generated from, so the two cannot drift apart.
pub const REDIS_VERSION: &str = cmd::redis_meta::REDIS_VERSION;
