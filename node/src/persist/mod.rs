//! Persistence: the DUMP/RESTORE payload, Redis's RDB files (import), and snapshots written
//! in the same format; the write-ahead log and backups build on them.

pub mod crc64;
pub mod dump;
pub mod listpack;
pub mod rdb;
pub mod snapshot;
