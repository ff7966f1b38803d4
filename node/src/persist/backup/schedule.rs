//! When scheduled backups run: `every <N>h`, or weekdays and an hour in UTC
//! (`daily@03`, `mon,thu@02`), like a managed store's backup window.

/// A parsed `--backup-schedule`.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum Schedule {
    #[default]
    Off,
    /// Every this many hours, counted from the last backup (or the start).
    EveryHours(u64),
    /// At `hour` (UTC) on the weekdays whose bits are set (bit 0 = Monday).
    Weekly { days: u8, hour: u8 },
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

impl Schedule {
    pub fn parse(s: &str) -> Result<Schedule, String> {
        let s = s.trim().to_ascii_lowercase();
        if s.is_empty() || s == "off" {
            return Ok(Schedule::Off);
        }
        if let Some(h) = s.strip_prefix("every ") {
            let n: u64 =
                h.trim().strip_suffix('h').and_then(|n| n.trim().parse().ok()).ok_or("expected 'every <N>h'")?;
            if n == 0 {
                return Err("'every 0h' never runs; use 'off'".into());
            }
            return Ok(Schedule::EveryHours(n));
        }
        let (days, hour) = s.split_once('@').ok_or("expected 'every <N>h', '<days>@<hour>' or 'off'")?;
        let hour: u8 = hour.trim().parse().ok().filter(|h| *h < 24).ok_or("the hour must be 0 to 23 (UTC)")?;
        let days = match days.trim() {
            "daily" | "*" => 0x7f,
            list => list.split(',').try_fold(0u8, |acc, d| {
                let i = DAYS.iter().position(|x| *x == d.trim()).ok_or(format!("unknown weekday '{d}' (mon..sun)"))?;
                Ok::<u8, String>(acc | 1 << i)
            })?,
        };
        Ok(Schedule::Weekly { days, hour })
    }

    /// Whether a backup is due at `now` (Unix seconds) when the last one started at `last`
    /// (or the node started then).
    pub fn due(&self, now: u64, last: u64) -> bool {
        match *self {
            Schedule::Off => false,
            Schedule::EveryHours(n) => now >= last + n * 3600,
            Schedule::Weekly { days, hour } => {
                // The window is the hour: due once per matching hour, if not run in it yet.
                let start = now - now % 3600;
                days & (1 << weekday(now)) != 0 && hour_of(now) == hour && last < start
            }
        }
    }
}

/// 0 = Monday (1970-01-01 was a Thursday).
pub fn weekday(unix_secs: u64) -> u8 {
    ((unix_secs / 86400 + 3) % 7) as u8
}

fn hour_of(unix_secs: u64) -> u8 {
    (unix_secs % 86400 / 3600) as u8
}

/// `YYYYMMDDTHHMMSSZ` for a Unix time (Howard Hinnant's civil-from-days).
pub fn timestamp(unix_secs: u64) -> String {
    let days = (unix_secs / 86400) as i64;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let s = unix_secs % 86400;
    format!("{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z", s / 3600, s % 3600 / 60, s % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_fire_in_their_window() {
        assert_eq!(Schedule::parse("every 6h"), Ok(Schedule::EveryHours(6)));
        assert_eq!(Schedule::parse("mon,thu@02"), Ok(Schedule::Weekly { days: 0b1001, hour: 2 }));
        assert_eq!(Schedule::parse("daily@3"), Ok(Schedule::Weekly { days: 0x7f, hour: 3 }));
        assert_eq!(Schedule::parse(""), Ok(Schedule::Off));
        assert!(Schedule::parse("mon@24").is_err() && Schedule::parse("funday@1").is_err());
        // 2026-11-22 is a Sunday.
        let sun_0230 = 1_795_314_600;
        assert_eq!(timestamp(sun_0230), "20261122T023000Z");
        assert_eq!(weekday(sun_0230), 6);
        let s = Schedule::parse("sun@02").unwrap();
        assert!(s.due(sun_0230, sun_0230 - 86400));
        assert!(!s.due(sun_0230, sun_0230 - 60), "already ran in this hour");
        assert!(!Schedule::parse("mon@02").unwrap().due(sun_0230, 0));
        assert!(Schedule::EveryHours(6).due(sun_0230, sun_0230 - 6 * 3600));
        assert!(!Schedule::EveryHours(6).due(sun_0230, sun_0230 - 3600));
    }
}
