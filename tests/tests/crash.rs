//! Crash tests: writers send acknowledged writes while the node is killed with SIGKILL at a
//! random moment, 20 times over; after each restart the write-ahead log must have brought
//! back every acknowledged write (appendfsync always), or all but about the last second of
//! them (everysec, where the test reports how much was lost). Multi-shard writes (MSET across
//! shards) come back whole or not at all.
//!
//! `cargo test --test crash -- --nocapture` shows the per-round report.

use rand::Rng;
use redis::Commands;
use shoal_tests::{fresh_dir, wait_until, Server};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ROUNDS: usize = 20;
const WRITERS: usize = 4;

/// What one writer had acknowledged when the node died: for each write, its number and when
/// the reply came.
#[derive(Default)]
struct Acked {
    /// (n, acknowledged at) of each write the node answered, in order.
    writes: Vec<(u64, Instant)>,
    /// The highest n sent, answered or not.
    sent: u64,
}

/// Writer `w` of round `round`: cycles through a single-key SET, an RPUSH to its own list, an
/// INCR of its own counter and an MSET of two keys in different shards, until the node dies.
/// Write n's effects are all named by n, so the check can tell exactly which writes survived.
fn writer(port: u16, round: usize, w: usize, acks: Arc<AtomicU64>, stop: Arc<AtomicBool>) -> Acked {
    let mut out = Acked::default();
    let Ok(client) = redis::Client::open(format!("redis://127.0.0.1:{port}/")) else { return out };
    let Ok(mut c) = client.get_connection() else { return out };
    let p = format!("r{round}:w{w}");
    for n in 1.. {
        if stop.load(Relaxed) {
            break;
        }
        out.sent = n;
        let r: redis::RedisResult<()> = match n % 4 {
            0 => c.set(format!("{p}:s:{n}"), n),
            1 => c.rpush(format!("{p}:list"), n),
            2 => c.incr(format!("{p}:counter"), 1),
            _ => c.mset(&[(format!("{{a}}{p}:m:{n}"), n), (format!("{{b}}{p}:m:{n}"), n)]),
        };
        if r.is_err() {
            break;
        }
        out.writes.push((n, Instant::now()));
        acks.fetch_add(1, Relaxed);
    }
    out
}

/// Which of writer `w`'s writes are in the node now: (present, missing) as sets of n.
fn survived(c: &mut redis::Connection, round: usize, w: usize, acked: &Acked) -> (Vec<u64>, Vec<u64>) {
    let p = format!("r{round}:w{w}");
    let list: Vec<u64> = c.lrange(format!("{p}:list"), 0, -1).unwrap();
    let counter: Option<u64> = c.get(format!("{p}:counter")).unwrap();
    // Increments are numbered 2, 6, 10, ...: the counter says how many landed.
    let incrs = counter.unwrap_or(0);
    let (mut present, mut missing) = (Vec::new(), Vec::new());
    for n in 1..=acked.sent {
        let here = match n % 4 {
            0 => c.exists::<_, bool>(format!("{p}:s:{n}")).unwrap(),
            1 => list.contains(&n),
            2 => (n - 2) / 4 < incrs,
            _ => {
                let a: bool = c.exists(format!("{{a}}{p}:m:{n}")).unwrap();
                let b: bool = c.exists(format!("{{b}}{p}:m:{n}")).unwrap();
                assert_eq!(a, b, "MSET {n} of {p} came back half applied: a={a} b={b}");
                a
            }
        };
        if here {
            present.push(n);
        } else {
            missing.push(n);
        }
    }
    // The list holds its pushes in order with no gaps: a write never comes back without the
    // ones before it.
    let pushes: Vec<u64> = (1..=acked.sent).filter(|n| n % 4 == 1).take(list.len()).collect();
    assert_eq!(list, pushes, "{p}:list is not a prefix of the pushes sent");
    (present, missing)
}

/// One crash round's outcome.
struct Round {
    acked: usize,
    lost: usize,
    /// How long before the kill the earliest lost acknowledged write was answered.
    lost_window: Duration,
}

/// Runs the rounds against a node with the given fsync policy; returns each round's outcome.
fn crash_rounds(fsync: &str) -> Vec<Round> {
    let dir = fresh_dir(fsync);
    let args = ["--appendonly", "yes", "--appendfsync", fsync, "--shards", "3"];
    let mut server = Server::start_in(&dir, &args);
    let mut rng = rand::thread_rng();
    let mut rounds = Vec::new();
    // Acknowledged plain SETs of earlier rounds, which every later restart must still hold.
    let mut kept: Vec<String> = Vec::new();
    for round in 0..ROUNDS {
        let acks = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let port = server.port;
        let handles: Vec<_> = (0..WRITERS)
            .map(|w| {
                let (acks, stop) = (acks.clone(), stop.clone());
                std::thread::spawn(move || writer(port, round, w, acks, stop))
            })
            .collect();
        // The kill comes at a random point of the write stream.
        let target = rng.gen_range(200..3000);
        wait_until("writers to get acknowledgements", || (acks.load(Relaxed) >= target).then_some(()));
        let killed_at = Instant::now();
        server.signal_and_wait(libc::SIGKILL);
        stop.store(true, Relaxed);
        let results: Vec<Acked> = handles.into_iter().map(|h| h.join().unwrap()).collect();

        server = Server::start_in(&dir, &args);
        let mut c = server.redis();
        let mut outcome = Round { acked: 0, lost: 0, lost_window: Duration::ZERO };
        for (w, acked) in results.iter().enumerate() {
            let (present, missing) = survived(&mut c, round, w, acked);
            let lost: Vec<&(u64, Instant)> = acked.writes.iter().filter(|(n, _)| missing.contains(n)).collect();
            outcome.acked += acked.writes.len();
            outcome.lost += lost.len();
            if let Some((_, at)) = lost.first() {
                outcome.lost_window = outcome.lost_window.max(killed_at.saturating_duration_since(*at));
            }
            // Only unacknowledged writes may be present beyond the acknowledged ones, and only
            // the last few that were in flight.
            let unacked_present = present.iter().filter(|n| !acked.writes.iter().any(|(a, _)| a == *n)).count();
            assert!(
                unacked_present <= 1,
                "writer {w} of round {round}: {unacked_present} unacknowledged writes present"
            );
            let p = format!("r{round}:w{w}");
            kept.extend(
                acked
                    .writes
                    .iter()
                    .filter(|(n, _)| n % 4 == 0 && !missing.contains(n))
                    .map(|(n, _)| format!("{p}:s:{n}")),
            );
        }
        for chunk in kept.chunks(500) {
            let present: usize = redis::cmd("EXISTS").arg(chunk).query(&mut c).unwrap();
            assert_eq!(present, chunk.len(), "round {round}: writes of earlier rounds went missing");
        }
        println!(
            "{fsync} round {round}: {} acknowledged writes, {} lost, lost window {} ms",
            outcome.acked,
            outcome.lost,
            outcome.lost_window.as_millis()
        );
        rounds.push(outcome);
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    rounds
}

#[test]
fn sigkill_loses_no_acknowledged_write_with_appendfsync_always() {
    let rounds = crash_rounds("always");
    let acked: usize = rounds.iter().map(|r| r.acked).sum();
    for (i, r) in rounds.iter().enumerate() {
        assert_eq!(r.lost, 0, "round {i} lost {} of {} acknowledged writes", r.lost, r.acked);
    }
    println!("always: {ROUNDS} kills, {acked} acknowledged writes, none lost");
}

#[test]
fn sigkill_loses_at_most_about_a_second_with_appendfsync_everysec() {
    let rounds = crash_rounds("everysec");
    let acked: usize = rounds.iter().map(|r| r.acked).sum();
    let lost: usize = rounds.iter().map(|r| r.lost).sum();
    let worst = rounds.iter().map(|r| r.lost_window).max().unwrap_or_default();
    println!(
        "everysec: {ROUNDS} kills, {acked} acknowledged writes, {lost} lost; worst round lost the last {} ms",
        worst.as_millis()
    );
    assert!(worst <= Duration::from_millis(1500), "everysec lost {} ms of acknowledged writes", worst.as_millis());
}
