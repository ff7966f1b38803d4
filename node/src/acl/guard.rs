//! Rate limiting of failed authentication per source address: past a few failures in a
//! window, an address gets no more tries until the window ends. Checking a password is cheap
//! (one SHA-256), so a brute-force attempt costs other clients nothing; the limit is what
//! makes guessing slow. Each locked-out address is logged once per window.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::IpAddr;

/// Failures allowed per address per window.
pub const MAX_FAILURES: u32 = 10;
pub const WINDOW_MS: u64 = 10_000;
/// Addresses tracked at most; past this, expired windows are dropped first.
const MAX_TRACKED: usize = 100_000;

#[derive(Default)]
pub struct AuthGuard {
    windows: Mutex<HashMap<IpAddr, (u64, u32)>>,
}

impl AuthGuard {
    /// Whether `ip` has used up its tries for the current window.
    pub fn locked(&self, ip: IpAddr, now_ms: u64) -> bool {
        self.windows.lock().get(&ip).is_some_and(|&(start, n)| now_ms < start + WINDOW_MS && n >= MAX_FAILURES)
    }

    /// Counts a failure; true exactly when it locks the address out (to log it once).
    pub fn failed(&self, ip: IpAddr, now_ms: u64) -> bool {
        let mut w = self.windows.lock();
        if w.len() >= MAX_TRACKED {
            w.retain(|_, (start, _)| now_ms < *start + WINDOW_MS);
        }
        let e = w.entry(ip).or_insert((now_ms, 0));
        if now_ms >= e.0 + WINDOW_MS {
            *e = (now_ms, 0);
        }
        e.1 += 1;
        e.1 == MAX_FAILURES
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_locked_out_for_the_rest_of_its_window() {
        let g = AuthGuard::default();
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        for i in 1..=MAX_FAILURES {
            assert!(!g.locked(a, 1000));
            assert_eq!(g.failed(a, 1000), i == MAX_FAILURES);
        }
        assert!(g.locked(a, 1000 + WINDOW_MS - 1));
        assert!(!g.locked(b, 1000), "other addresses are not affected");
        assert!(!g.locked(a, 1000 + WINDOW_MS), "the next window starts afresh");
    }
}
