//! Commands: the table that declares them and one module per family. Handlers take parsed
//! arguments and the keyspace (or the node, for gateway commands) and write a reply; none of
//! them touches a socket.

pub mod acl;
pub mod args;
pub mod backup;
pub mod bitmaps;
pub mod blocking;
pub mod client;
pub mod cluster;
pub mod command;
pub mod config;
pub mod connection;
pub mod exec;
pub mod functions;
pub mod gateway;
pub mod geo;
pub mod hashes;
pub mod hll;
pub mod info;
pub mod keys;
pub mod keyspec;
pub mod lists;
pub mod memcache;
pub mod memory;
pub mod monitor;
pub mod multi;
pub mod pubsub;
pub mod redact;
pub mod redis_meta;
pub mod scan;
pub mod scripting;
pub mod server;
pub mod sets;
pub mod slowlog;
pub mod sort;
pub mod streams;
pub mod strings;
pub mod table;
pub mod zsets;
