//! MONITOR and SLOWLOG answer as redis-server's do, command for command, and no password
//! leaves the node through them, CLIENT LIST, INFO or the node's own logs.

use shoal_proto::Frame;
use shoal_tests::{free_port, fresh_dir, ok, Raw, RedisServer, Server};
use std::process::{Command, Stdio};

/// Every password in this file contains it, so one search finds any leak.
const SECRET: &str = "hunter2";

/// What a client does while it is watched: plain commands, odd bytes, every way of sending a
/// password, admin commands (never shown) and a transaction (shown when EXEC runs it).
fn watched_session() -> Vec<Vec<String>> {
    let lines: &[&[&str]] = &[
        &["SET", "k", "v"],
        &["GET", "k"],
        &["ECHO", "quote\" newline\n tab\t bell\x07 byte\x01 \\"],
        &["AUTH", "hunter2-alone"],
        &["AUTH", "nobody", "hunter2-wrong"],
        &["HELLO", "2", "AUTH", "default", "hunter2-hello"],
        &["HELLO", "2", "SETNAME", "app"],
        &["ACL", "SETUSER", "bob", "on", ">hunter2-bob", "~*", "+@all"],
        &["AUTH", "bob", "hunter2-bob"],
        &["CONFIG", "SET", "maxclients", "1000"],
        &["MULTI"],
        &["SET", "a", "1"],
        &["INCR", "a"],
        &["EXEC"],
        &["SELECT", "3"],
        &["MULTI"],
        &["SELECT", "5"],
        &["SET", "b", "2"],
        &["EXEC"],
        &["DEL", "k", "a"],
        &["PING", "done"],
    ];
    lines.iter().map(|l| l.iter().map(|a| a.to_string()).collect()).collect()
}

fn run(r: &mut Raw, cmd: &[String]) -> Frame {
    let args: Vec<&str> = cmd.iter().map(String::as_str).collect();
    r.cmd(&args)
}

/// MONITOR lines from `port` while `watched_session` runs, without the time and the client's
/// address, which differ between runs.
fn monitor_lines(port: u16) -> Vec<String> {
    let addr = ([127, 0, 0, 1], port).into();
    let mut monitor = Raw::connect(addr);
    assert_eq!(monitor.cmd(&["MONITOR"]), ok());
    let mut client = Raw::connect(addr);
    for cmd in watched_session() {
        run(&mut client, &cmd);
    }
    let mut lines = Vec::new();
    loop {
        let Frame::Simple(line) = monitor.read() else { panic!("MONITOR sends status lines") };
        let line = String::from_utf8_lossy(&line).into_owned();
        // `1700000000.123456 [0 127.0.0.1:50000] "SET" "k" "v"` -> `[0] "SET" "k" "v"`.
        let (time, rest) = line.split_once(" [").expect("a time, then [db addr]");
        assert!(time.split_once('.').is_some_and(|(s, us)| s.len() >= 10 && us.len() == 6), "{line}");
        let (db_addr, args) = rest.split_once("] ").expect("[db addr]");
        let db = db_addr.split(' ').next().unwrap();
        lines.push(format!("[{db}] {args}"));
        if args.contains("\"done\"") {
            return lines;
        }
    }
}

#[test]
fn monitor_shows_what_redis_shows_with_passwords_redacted() {
    let redis = RedisServer::start();
    let s = Server::start();
    let theirs = monitor_lines(redis.port);
    let mine = monitor_lines(s.port);
    assert_eq!(mine, theirs);
    assert!(mine.iter().any(|l| l.contains("(redacted)")), "{mine:#?}");
    assert!(mine.iter().all(|l| !l.contains(SECRET)), "{mine:#?}");

    // A monitor may not touch keys; MONITOR again is ignored; RESET ends it.
    let mut monitor = s.raw();
    assert_eq!(monitor.cmd(&["MONITOR"]), ok());
    assert_eq!(monitor.cmd(&["GET", "k"]), shoal_tests::err("ERR Replica can't interact with the keyspace"));
    assert_eq!(monitor.cmd(&["RESET"]), shoal_tests::simple("RESET"));
    assert_eq!(monitor.cmd(&["SET", "k", "v"]), ok());
}

/// SLOWLOG's entries from `port` (every command logged) for a session that sends passwords
/// every way there is, a long argument and many arguments: each entry's arguments and client
/// name.
fn slowlog_entries(port: u16) -> Vec<Frame> {
    let mut r = Raw::connect(([127, 0, 0, 1], port).into());
    assert_eq!(r.cmd(&["CONFIG", "SET", "slowlog-log-slower-than", "0"]), ok());
    assert_eq!(r.cmd(&["SLOWLOG", "RESET"]), ok());
    let long = "x".repeat(300);
    let many: Vec<String> = (0..40).map(|i| format!("key{i}")).collect();
    let mut del: Vec<&str> = vec!["DEL"];
    del.extend(many.iter().map(String::as_str));
    let session: Vec<Vec<&str>> = vec![
        vec!["CLIENT", "SETNAME", "worker"],
        vec!["SET", "k", &long],
        del,
        vec!["AUTH", "nobody", "hunter2-wrong"],
        vec!["HELLO", "2", "AUTH", "default", "hunter2-hello"],
        vec!["ACL", "SETUSER", "carol", "on", ">hunter2-carol", "~*"],
        vec!["CONFIG", "SET", "maxclients", "1000", "requirepass", "hunter2-pass"],
        vec!["AUTH", "hunter2-pass"],
        vec!["MULTI"],
        vec!["GET", "k"],
        vec!["EXEC"],
    ];
    for cmd in &session {
        r.cmd(cmd);
    }
    let Frame::Array(entries) = r.cmd(&["SLOWLOG", "GET", "-1"]) else { panic!("SLOWLOG GET") };
    entries
        .into_iter()
        .map(|e| {
            let Frame::Array(fields) = e else { panic!("an entry") };
            assert_eq!(fields.len(), 6);
            Frame::Array(vec![fields[3].clone(), fields[5].clone()])
        })
        .collect()
}

#[test]
fn slowlog_keeps_what_redis_keeps_with_passwords_redacted() {
    let redis = RedisServer::start();
    let s = Server::start();
    let theirs = slowlog_entries(redis.port);
    let mine = slowlog_entries(s.port);
    assert_eq!(mine, theirs);
    let shown = format!("{mine:?}");
    assert!(shown.contains("(redacted)") && shown.contains("more arguments") && shown.contains("more bytes"));
    assert!(!shown.contains(SECRET), "{shown}");

    let mut r = s.raw();
    assert_eq!(r.cmd(&["AUTH", "hunter2-pass"]), ok());
    assert_eq!(r.cmd(&["CONFIG", "SET", "slowlog-max-len", "2"]), ok());
    assert_eq!(r.cmd(&["SLOWLOG", "LEN"]), Frame::Integer(2), "a shorter log drops its oldest entries");
    // The other places a password could show.
    for place in [&["CLIENT", "LIST"][..], &["INFO", "everything"], &["ACL", "LOG"]] {
        let text = format!("{:?}", r.cmd(place));
        assert!(!text.contains(SECRET), "{place:?}: {text}");
    }
}

/// The node's logs at their most verbose carry no password: not from failed or good AUTH,
/// not from the lockout warning, not from ACL or CONFIG changes.
#[test]
fn logs_never_carry_a_password() {
    let dir = fresh_dir("secrets-logs");
    let port = free_port();
    let log = dir.join("stderr.log");
    let mut child = Command::new(shoal_tests::shoal_bin())
        .args(["--save=", "--bind", "127.0.0.1", "--port", &port.to_string(), "--log-level", "trace", "--data-dir"])
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    assert!(shoal_tests::listens(&mut child, port, "shoal"), "port {port} was taken");
    let mut r = Raw::connect(([127, 0, 0, 1], port).into());
    for cmd in watched_session() {
        run(&mut r, &cmd);
    }
    assert_eq!(r.cmd(&["CONFIG", "SET", "requirepass", "hunter2-pass"]), ok());
    // Enough failures from one address to be locked out, which is logged.
    let mut guesser = Raw::connect(([127, 0, 0, 1], port).into());
    for i in 0..20 {
        guesser.cmd(&["AUTH", &format!("hunter2-guess{i}")]);
    }
    let text = shoal_tests::wait_until("the lockout to be logged", || {
        let text = std::fs::read_to_string(&log).unwrap();
        text.contains("refusing its AUTH attempts").then_some(text)
    });
    let _ = child.kill();
    let _ = child.wait();
    let text = text + &std::fs::read_to_string(&log).unwrap();
    assert!(text.contains(" DEBUG ") && text.contains("client connected"), "verbose logging is on: {text}");
    assert!(!text.contains(SECRET), "a password in the logs:\n{text}");
    let _ = std::fs::remove_dir_all(&dir);
}
