//! Client output-buffer limits per class, Redis's `client-output-buffer-limit`: a client whose
//! unsent replies pass the hard limit, or stay over the soft limit for the soft seconds, is
//! disconnected. Defaults as Redis: `normal 0 0 0` (none), `replica 256mb 64mb 60`,
//! `pubsub 32mb 8mb 60`. Settable live with CONFIG SET.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// One class's limits; 0 disables a limit.
pub struct ClassLimit {
    pub hard: AtomicU64,
    pub soft: AtomicU64,
    pub soft_secs: AtomicU64,
}

impl ClassLimit {
    fn new(hard: u64, soft: u64, soft_secs: u64) -> ClassLimit {
        ClassLimit { hard: AtomicU64::new(hard), soft: AtomicU64::new(soft), soft_secs: AtomicU64::new(soft_secs) }
    }

    /// Whether `pending` bytes at `now_ms` break the limit. `over_soft_since` (ms, 0 = not
    /// over) is the caller's record of when it went over the soft limit, updated here.
    pub fn exceeded(&self, pending: u64, now_ms: u64, over_soft_since: &AtomicU64) -> bool {
        let hard = self.hard.load(Relaxed);
        if hard > 0 && pending > hard {
            return true;
        }
        let soft = self.soft.load(Relaxed);
        if soft == 0 || pending <= soft {
            over_soft_since.store(0, Relaxed);
            return false;
        }
        let since = match over_soft_since.compare_exchange(0, now_ms.max(1), Relaxed, Relaxed) {
            Ok(_) => now_ms.max(1),
            Err(t) => t,
        };
        now_ms.saturating_sub(since) >= self.soft_secs.load(Relaxed) * 1000
    }
}

pub struct OutputLimits {
    pub normal: ClassLimit,
    pub replica: ClassLimit,
    pub pubsub: ClassLimit,
}

impl Default for OutputLimits {
    fn default() -> OutputLimits {
        OutputLimits {
            normal: ClassLimit::new(0, 0, 0),
            replica: ClassLimit::new(256 << 20, 64 << 20, 60),
            pubsub: ClassLimit::new(32 << 20, 8 << 20, 60),
        }
    }
}

impl OutputLimits {
    /// CONFIG GET's form.
    pub fn describe(&self) -> String {
        [("normal", &self.normal), ("slave", &self.replica), ("pubsub", &self.pubsub)]
            .iter()
            .map(|(n, c)| {
                format!("{n} {} {} {}", c.hard.load(Relaxed), c.soft.load(Relaxed), c.soft_secs.load(Relaxed))
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// CONFIG SET's form: `<class> <hard> <soft> <seconds>` groups; all or nothing.
    pub fn set(&self, text: &str) -> Result<(), String> {
        let words: Vec<&str> = text.split_whitespace().collect();
        if words.is_empty() || !words.len().is_multiple_of(4) {
            return Err("Wrong number of arguments in buffer limit configuration.".into());
        }
        let mut parsed = Vec::new();
        for g in words.chunks(4) {
            let class = match g[0].to_ascii_lowercase().as_str() {
                "normal" => &self.normal,
                "replica" | "slave" => &self.replica,
                "pubsub" => &self.pubsub,
                _ => return Err("Invalid client class specified in buffer limit configuration.".into()),
            };
            let mem = |s: &str| {
                crate::config::parse_memory(s)
                    .ok_or("Error in hard, soft or soft_seconds setting in buffer limit configuration.")
            };
            let secs: u64 = g[3]
                .parse()
                .map_err(|_| "Error in hard, soft or soft_seconds setting in buffer limit configuration.")?;
            parsed.push((class, mem(g[1])?, mem(g[2])?, secs));
        }
        for (c, hard, soft, secs) in parsed {
            c.hard.store(hard, Relaxed);
            c.soft.store(soft, Relaxed);
            c.soft_secs.store(secs, Relaxed);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_parse_describe_and_trip() {
        let l = OutputLimits::default();
        assert_eq!(l.describe(), "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60");
        l.set("normal 1mb 512kb 2").unwrap();
        assert!(l.set("normal 1mb 512kb").is_err() && l.set("bogus 1 1 1").is_err());
        let since = AtomicU64::new(0);
        assert!(!l.normal.exceeded(600 << 10, 1000, &since), "over soft, not for long");
        assert!(l.normal.exceeded(600 << 10, 3000, &since), "over soft for its seconds");
        assert!(l.normal.exceeded(2 << 20, 1000, &AtomicU64::new(0)), "over hard at once");
        assert!(!l.normal.exceeded(100, 5000, &since) && since.load(Relaxed) == 0, "back under resets");
    }
}
