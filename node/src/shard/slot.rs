//! Where a shard's state rests between messages, and how it is held: by the shard's actor
//! (which waits for it without blocking a runtime thread), or by a connection running work
//! on its own thread while the shard is idle (a pipeline's batch, a script). The script
//! engine rests in one too.
//!
//! A script may hold shards for as long as it runs, so a waiting actor must not park its
//! worker thread on the mutex: with one thread per core, that would stop SCRIPT KILL and
//! every other client. Waiters register, and whoever releases the state wakes them.
//!
//! A lease is the slot held by the shard's actor and handed to the borrower
//! ([`OwnedSlotGuard`]): the actor goes on to its next message, which waits for the slot
//! like any other holder, and a batch among them can give up when a script turns busy.

use super::ShardState;
use std::sync::atomic::{fence, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;

/// A shard's slot.
pub type StateSlot = Slot<Option<Box<ShardState>>>;

pub struct Slot<T> {
    state: parking_lot::Mutex<T>,
    waiters: AtomicUsize,
    released: tokio::sync::Notify,
}

/// The slot held. Releasing wakes waiting holders.
pub struct SlotGuard<'a, T = Option<Box<ShardState>>> {
    guard: Option<parking_lot::MutexGuard<'a, T>>,
    slot: &'a Slot<T>,
}

impl<T> Slot<T> {
    pub fn new(state: T) -> Slot<T> {
        Slot {
            state: parking_lot::Mutex::new(state),
            waiters: AtomicUsize::new(0),
            released: tokio::sync::Notify::new(),
        }
    }

    /// The slot, if nobody holds it now.
    #[inline]
    pub fn try_hold(&self) -> Option<SlotGuard<'_, T>> {
        self.state.try_lock().map(|g| SlotGuard { guard: Some(g), slot: self })
    }

    /// Whether someone holds the slot now (reading only: no cache-line ping-pong with the
    /// holder).
    #[inline]
    pub fn is_held(&self) -> bool {
        self.state.is_locked()
    }

    /// The slot, if its holder lets it go within a few microseconds, spinning meanwhile.
    /// Another connection's batch holds a shard for about a microsecond: waiting that out
    /// on this thread is cheaper than handing the work to the shard's actor, which wakes a
    /// runtime thread and then this one (measured under memaslap's 50 connections: a third of
    /// the eventfd writes and a fifth of the futex calls).
    #[inline]
    pub fn try_hold_spinning(&self) -> Option<SlotGuard<'_, T>> {
        for _ in 0..SPINS {
            // Reading, not trying, while it is held: no cache-line ping-pong with the holder.
            if !self.is_held() {
                if let Some(g) = self.try_hold() {
                    return Some(g);
                }
            }
            std::hint::spin_loop();
        }
        self.try_hold()
    }

    /// The slot, if its holder lets it go within `wait`; the thread waits.
    pub fn try_hold_for(&self, wait: std::time::Duration) -> Option<SlotGuard<'_, T>> {
        self.state.try_lock_for(wait).map(|g| SlotGuard { guard: Some(g), slot: self })
    }

    /// The slot, once its holder lets it go; the task waits, its thread does not.
    pub async fn hold(&self) -> SlotGuard<'_, T> {
        match self.hold_unless(None).await {
            Some(g) => g,
            None => unreachable!("only a give-up check ends a wait empty-handed"),
        }
    }

    /// As `hold`, but gives up (None) once `give_up` says so, checked every few milliseconds
    /// while waiting: a batch waiting behind a script that went past `busy-reply-threshold`
    /// is answered -BUSY rather than left waiting.
    pub async fn hold_unless(&self, give_up: Option<&(dyn Fn() -> bool + Send + Sync)>) -> Option<SlotGuard<'_, T>> {
        if let Some(g) = self.try_hold() {
            return Some(g);
        }
        loop {
            let released = self.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            // Registered before the second try: a holder that lets go after this try sees
            // the count and wakes us (see SlotGuard's drop).
            self.waiters.fetch_add(1, SeqCst);
            if let Some(g) = self.try_hold() {
                self.waiters.fetch_sub(1, SeqCst);
                return Some(g);
            }
            // Checked before each wait, the first included: waiters queued behind a busy
            // script give up at once, not one poll each.
            if give_up.is_some_and(|f| f()) {
                self.waiters.fetch_sub(1, SeqCst);
                return None;
            }
            match give_up {
                None => released.await,
                Some(_) => {
                    tokio::select! {
                        _ = &mut released => {}
                        _ = tokio::time::sleep(GIVE_UP_POLL) => {}
                    }
                }
            }
            self.waiters.fetch_sub(1, SeqCst);
        }
    }
}

/// How many times `try_hold_spinning` looks (a spin-loop hint apart: a few µs in all).
const SPINS: usize = 64;

/// How often a waiter that may give up checks whether it should.
const GIVE_UP_POLL: std::time::Duration = std::time::Duration::from_millis(20);

impl<T> std::ops::Deref for SlotGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        self.guard.as_ref().expect("held until dropped")
    }
}

impl<T> std::ops::DerefMut for SlotGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.guard.as_mut().expect("held until dropped")
    }
}

impl SlotGuard<'_> {
    /// The state (absent only in a slot made empty, as unit tests do).
    #[inline]
    pub fn state(&mut self) -> Option<&mut ShardState> {
        self.guard.as_mut().and_then(|g| g.as_deref_mut())
    }
}

impl<T> SlotGuard<'_, T> {
    /// Keeps the slot held beyond this borrow of it: `slot` must be the slot this guard holds.
    pub fn into_owned(mut self, slot: Arc<Slot<T>>) -> OwnedSlotGuard<T> {
        assert!(std::ptr::eq(self.slot, &*slot), "the guard's own slot");
        // The mutex stays locked; the owned guard unlocks it when dropped.
        std::mem::forget(self.guard.take().expect("held until dropped"));
        std::mem::forget(self);
        OwnedSlotGuard { slot }
    }
}

/// A slot held by whoever owns this, on any thread, until it is dropped (a lease).
pub struct OwnedSlotGuard<T = Option<Box<ShardState>>> {
    slot: Arc<Slot<T>>,
}

impl<T> OwnedSlotGuard<T> {
    pub fn get(&self) -> &T {
        // SAFETY: the mutex was left locked for this guard (`into_owned`), and only its drop
        // unlocks it: nobody else can reach the data meanwhile.
        unsafe { &*self.slot.state.data_ptr() }
    }

    pub fn get_mut(&mut self) -> &mut T {
        // SAFETY: as in `get`, and `&mut self` makes this the only reference through the guard.
        unsafe { &mut *self.slot.state.data_ptr() }
    }
}

impl<T> Drop for OwnedSlotGuard<T> {
    fn drop(&mut self) {
        // SAFETY: locked by the guard `into_owned` consumed, and not unlocked since;
        // parking_lot's `send_guard` lets another thread unlock it.
        unsafe { self.slot.state.force_unlock() };
        fence(SeqCst);
        if self.slot.waiters.load(SeqCst) > 0 {
            self.slot.released.notify_waiters();
        }
    }
}

impl<T> Drop for SlotGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        drop(self.guard.take());
        // Pairs with the waiter's count-then-try: either it sees the unlock, or this sees it.
        fence(SeqCst);
        if self.slot.waiters.load(SeqCst) > 0 {
            self.slot.released.notify_waiters();
        }
    }
}
