//! Small helpers shared across the node: glob matching, float parsing and formatting, time.

pub mod counter;
pub mod float;
pub mod geohash;
pub mod glob;

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

static COARSE_MS: AtomicU64 = AtomicU64::new(0);

/// Unix time in ms, updated every 10 ms by [`run_coarse_clock`]: for idle times and other
/// figures that do not need a clock read on every request.
#[inline]
pub fn coarse_ms() -> u64 {
    match COARSE_MS.load(Relaxed) {
        0 => now_ms(),
        t => t,
    }
}

/// Keeps [`coarse_ms`] current; runs for the life of the process.
pub async fn run_coarse_clock() {
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(10));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        COARSE_MS.store(now_ms(), Relaxed);
    }
}

use std::time::{SystemTime, UNIX_EPOCH};

/// Unix time in milliseconds.
#[inline]
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// Microseconds on a monotonic clock since the process first asked: for measuring how long
/// something has run, unaffected by changes to the wall clock.
pub fn mono_us() -> u64 {
    static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    EPOCH.get_or_init(std::time::Instant::now).elapsed().as_micros() as u64
}

/// Unix time in microseconds.
pub fn now_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0)
}

/// Bytes in Redis's human form (`1.50M`).
pub fn bytes_human(n: u64) -> String {
    let n = n as f64;
    let units = [
        (1024f64.powi(5), "P"),
        (1024f64.powi(4), "T"),
        (1024f64.powi(3), "G"),
        (1024f64 * 1024.0, "M"),
        (1024.0, "K"),
    ];
    for (size, unit) in units {
        if n >= size {
            return format!("{:.2}{unit}", n / size);
        }
    }
    format!("{}B", n as u64)
}

/// A random 40-character hex identifier (run ids, node ids).
pub fn random_hex40() -> String {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    (0..40).map(|_| char::from_digit(rng.gen_range(0..16), 16).expect("hex digit")).collect()
}
