//! Persistence formats: the DUMP/RESTORE payload and Redis's RDB files; snapshots, the
//! write-ahead log and backups build on them.

pub mod crc64;
pub mod dump;
pub mod listpack;
pub mod rdb;
