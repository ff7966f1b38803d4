//! Where clients meet the node: listeners, connections, per-connection session state and the
//! routing of each command to the shard (or shards) that own its keys.

pub mod conn_threads;
pub mod connection;
pub mod endpoint;
pub mod listener;
pub mod memcache;
pub mod memcache_stats;
pub mod output_limit;
pub mod session;
pub mod tls;
