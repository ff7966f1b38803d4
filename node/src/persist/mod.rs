//! Persistence: the DUMP/RESTORE payload, Redis's RDB files (import), snapshots written in
//! the same format, the write-ahead log, backups, and what a node loads at start-up.

pub mod backup;
pub mod crc64;
pub mod dump;
pub mod listpack;
pub mod load;
pub mod rdb;
pub mod snapshot;
pub mod wal;
