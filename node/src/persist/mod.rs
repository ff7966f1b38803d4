//! Persistence formats. For now the DUMP/RESTORE payload; snapshots, the write-ahead log and
//! backups build on it.

pub mod crc64;
pub mod dump;
pub mod listpack;
