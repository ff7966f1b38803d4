//! The collection types a key can hold besides strings, each with a compact form for small
//! sizes and a scalable one for large sizes, switched by the `*-max-listpack-*` settings.

pub mod hash;
pub mod pack;
pub mod set;
pub mod stream;
pub mod zset;

use super::bytes::SmallBytes;
use std::collections::VecDeque;

/// A list: a ring buffer of elements, O(1) at both ends and by index. (Redis 7.0 reports
/// every list as `quicklist`, and so do we.)
pub type List = VecDeque<SmallBytes>;

/// Size thresholds that decide when a collection leaves its compact form (the Redis
/// settings of the same names).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Encodings {
    pub hash_entries: usize,
    pub hash_value: usize,
    pub set_intset_entries: usize,
    pub set_entries: usize,
    pub set_value: usize,
    pub zset_entries: usize,
    pub zset_value: usize,
}

impl Default for Encodings {
    fn default() -> Self {
        Encodings {
            hash_entries: 128,
            hash_value: 64,
            set_intset_entries: 512,
            set_entries: 128,
            set_value: 64,
            zset_entries: 128,
            zset_value: 64,
        }
    }
}
