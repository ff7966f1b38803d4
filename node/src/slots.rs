//! Which shard owns which hash slot on this node.

use shoal_proto::{key_hash_slot, SLOT_COUNT};

pub struct SlotRoute {
    shard_of_slot: Box<[u16]>,
    shards: usize,
}

impl SlotRoute {
    /// Splits the 16384 slots into `shards` contiguous ranges.
    pub fn even(shards: usize) -> SlotRoute {
        assert!((1..=1024).contains(&shards), "1 to 1024 shards");
        let map = (0..SLOT_COUNT as usize).map(|slot| (slot * shards / SLOT_COUNT as usize) as u16).collect();
        SlotRoute { shard_of_slot: map, shards }
    }

    pub fn shards(&self) -> usize {
        self.shards
    }

    #[inline]
    pub fn shard_of_slot(&self, slot: u16) -> usize {
        self.shard_of_slot[slot as usize] as usize
    }

    #[inline]
    pub fn shard_of_key(&self, key: &[u8]) -> usize {
        if self.shards == 1 {
            return 0;
        }
        self.shard_of_slot(key_hash_slot(key))
    }
}
