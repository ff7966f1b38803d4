//! The Lua patterns applications build on: a Redlock-style lock (SET NX PX to take it, a
//! compare-and-delete script to release it) and a sliding-window rate limiter on a sorted
//! set, each under 50 concurrent clients, on Shoal and on redis-server alike.

use shoal_tests::{RedisServer, Server};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

const CLIENTS: usize = 50;

/// Redlock's release: delete the lock only if it still holds our token.
const RELEASE: &str =
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";
/// Redlock's extend: push the expiry only if the lock is still ours.
const EXTEND: &str =
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end";

/// The common sorted-set sliding window: drop entries older than the window, admit if under
/// the limit. Time comes from the caller, so the test controls it.
const SLIDING_WINDOW: &str = "
local key, now, window, limit, member = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
if redis.call('ZCARD', key) < limit then
  redis.call('ZADD', key, now, member)
  redis.call('PEXPIRE', key, window)
  return 1
end
return 0";

fn urls() -> (RedisServer, Server) {
    (RedisServer::start(), Server::start())
}

/// 50 clients each take the lock 10 times and, holding it, do a read-modify-write that would
/// lose updates without it. No two ever hold it at once, and no update is lost.
fn lock_excludes(url: &str) {
    let client = redis::Client::open(url).unwrap();
    let held = AtomicBool::new(false);
    let overlaps = AtomicUsize::new(0);
    let rounds = 10;
    std::thread::scope(|s| {
        for c in 0..CLIENTS {
            let (client, held, overlaps) = (&client, &held, &overlaps);
            s.spawn(move || {
                let mut con = client.get_connection().unwrap();
                let release = redis::Script::new(RELEASE);
                for r in 0..rounds {
                    let token = format!("{c}-{r}");
                    let deadline = Instant::now() + Duration::from_secs(60);
                    loop {
                        let got: Option<String> = redis::cmd("SET")
                            .arg("lock:counter")
                            .arg(&token)
                            .arg("NX")
                            .arg("PX")
                            .arg(30_000)
                            .query(&mut con)
                            .unwrap();
                        if got.is_some() {
                            break;
                        }
                        assert!(Instant::now() < deadline, "lock never became free");
                        std::thread::yield_now();
                    }
                    if held.swap(true, SeqCst) {
                        overlaps.fetch_add(1, SeqCst);
                    }
                    let n: i64 = redis::cmd("GET").arg("counter").query::<Option<i64>>(&mut con).unwrap().unwrap_or(0);
                    let _: () = redis::cmd("SET").arg("counter").arg(n + 1).query(&mut con).unwrap();
                    held.store(false, SeqCst);
                    let released: i64 = release.key("lock:counter").arg(&token).invoke(&mut con).unwrap();
                    assert_eq!(released, 1, "our own lock is released");
                }
            });
        }
    });
    assert_eq!(overlaps.load(SeqCst), 0, "two clients held the lock at once");
    let mut con = client.get_connection().unwrap();
    let n: i64 = redis::cmd("GET").arg("counter").query(&mut con).unwrap();
    assert_eq!(n, (CLIENTS * rounds) as i64, "updates lost");
}

/// A lock whose holder vanished expires; a stale token can neither release nor extend it.
fn lock_expires_and_guards_its_token(url: &str) {
    let mut con = redis::Client::open(url).unwrap().get_connection().unwrap();
    let set = |con: &mut redis::Connection, token: &str, px: u64| -> Option<String> {
        redis::cmd("SET").arg("lock:x").arg(token).arg("NX").arg("PX").arg(px).query(con).unwrap()
    };
    assert!(set(&mut con, "dead-holder", 200).is_some());
    assert!(set(&mut con, "me", 30_000).is_none());
    shoal_tests::wait_until("the abandoned lock to expire", || set(&mut con, "me", 30_000));
    let (release, extend) = (redis::Script::new(RELEASE), redis::Script::new(EXTEND));
    let stale: i64 = release.key("lock:x").arg("dead-holder").invoke(&mut con).unwrap();
    assert_eq!(stale, 0);
    let stale: i64 = extend.key("lock:x").arg("dead-holder").arg(60_000).invoke(&mut con).unwrap();
    assert_eq!(stale, 0);
    let mine: i64 = extend.key("lock:x").arg("me").arg(60_000).invoke(&mut con).unwrap();
    assert_eq!(mine, 1);
    let ttl: i64 = redis::cmd("PTTL").arg("lock:x").query(&mut con).unwrap();
    assert!(ttl > 30_000, "extended: {ttl}");
}

/// 50 clients make 20 requests each inside one window with a limit of 100: exactly 100 are
/// admitted. A window later the limit is free again.
fn window_admits_exactly_the_limit(url: &str) -> usize {
    let client = redis::Client::open(url).unwrap();
    let admitted = AtomicUsize::new(0);
    let now = 1_000_000;
    std::thread::scope(|s| {
        for c in 0..CLIENTS {
            let (client, admitted) = (&client, &admitted);
            s.spawn(move || {
                let mut con = client.get_connection().unwrap();
                let limiter = redis::Script::new(SLIDING_WINDOW);
                for r in 0..20 {
                    // Each request a millisecond apart, all inside the 60-second window.
                    let at = now + c * 20 + r;
                    let ok: i64 = limiter
                        .key("rate:api")
                        .arg(at)
                        .arg(60_000)
                        .arg(100)
                        .arg(format!("{c}-{r}"))
                        .invoke(&mut con)
                        .unwrap();
                    admitted.fetch_add(ok as usize, SeqCst);
                }
            });
        }
    });
    let mut con = client.get_connection().unwrap();
    let limiter = redis::Script::new(SLIDING_WINDOW);
    let later: i64 =
        limiter.key("rate:api").arg(now + 60_000 + 1000).arg(60_000).arg(100).arg("later").invoke(&mut con).unwrap();
    assert_eq!(later, 1, "a window later requests are admitted again");
    let members: i64 = redis::cmd("ZCARD").arg("rate:api").query(&mut con).unwrap();
    assert_eq!(members, 1, "the old window's entries are gone");
    admitted.load(SeqCst)
}

#[test]
fn redlock_style_lock_excludes_50_clients() {
    let (redis, shoal) = urls();
    for url in [format!("redis://127.0.0.1:{}/", redis.port), shoal.url()] {
        lock_excludes(&url);
        lock_expires_and_guards_its_token(&url);
    }
}

#[test]
fn sliding_window_rate_limiter_admits_exactly_its_limit() {
    let (redis, shoal) = urls();
    let theirs = window_admits_exactly_the_limit(&format!("redis://127.0.0.1:{}/", redis.port));
    let mine = window_admits_exactly_the_limit(&shoal.url());
    assert_eq!((mine, theirs), (100, 100));
}
