//! A counter many threads add to without sharing a cache line: each thread adds to its own
//! padded slot and readers sum the slots. For figures updated on every read or write.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

/// Slots per counter; threads beyond this share slots.
pub const SLOTS: usize = 16;

#[repr(align(128))]
#[derive(Default)]
struct Slot(AtomicU64);

#[derive(Default)]
pub struct Striped {
    slots: [Slot; SLOTS],
}

static NEXT_SLOT: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static MY_SLOT: Cell<usize> = Cell::new(NEXT_SLOT.fetch_add(1, Relaxed) % SLOTS);
}

/// This thread's slot, below `SLOTS`: for striped figures of other shapes than `Striped`.
#[inline]
pub fn my_slot() -> usize {
    MY_SLOT.with(|s| s.get())
}

impl Striped {
    #[inline]
    pub fn add(&self, n: u64) {
        self.slots[my_slot()].0.fetch_add(n, Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.slots.iter().map(|s| s.0.load(Relaxed)).sum()
    }

    pub fn reset(&self) {
        for s in &self.slots {
            s.0.store(0, Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sums_across_threads() {
        let c = std::sync::Arc::new(super::Striped::default());
        let hs: Vec<_> = (0..4)
            .map(|_| {
                let c = c.clone();
                std::thread::spawn(move || (0..1000).for_each(|_| c.add(2)))
            })
            .collect();
        hs.into_iter().for_each(|h| h.join().unwrap());
        assert_eq!(c.get(), 8000);
    }
}
