//! Process lifecycle and operations: configuration sources, metrics endpoint, shutdown.

use shoal_proto::Frame;
use shoal_tests::{bulk, http_get, ok, shoal_bin, simple, Raw, Server};

#[test]
fn metrics_endpoint_reports_commands_clients_keys() {
    let s = Server::start_with(&["--metrics", "--appendonly", "yes", "--appendfsync", "always"]);
    let mut r = s.raw();
    assert_eq!(r.cmd(&["SET", "a", "1"]), ok());
    assert_eq!(r.cmd(&["GET", "a"]), bulk("1"));
    assert_eq!(r.cmd(&["GET", "nope"]), Frame::Null);
    let port = s.metrics_port.unwrap();
    // The harness's readiness probe may still be closing: wait until only `r` remains.
    shoal_tests::wait_for("probe connection to close", || {
        http_get(port, "/metrics").1.contains("shoal_connected_clients 1\n")
    });
    let (status, body) = http_get(port, "/metrics");
    assert_eq!(status, "HTTP/1.1 200 OK");
    for want in [
        "shoal_commands_total{cmd=\"get\"} 2",
        "shoal_commands_total{cmd=\"set\"} 1",
        "shoal_connected_clients 1",
        "shoal_keys{db=\"0\"} 1",
        "shoal_keyspace_hits_total 1",
        "shoal_keyspace_misses_total 1",
        "shoal_command_duration_seconds_count",
        "shoal_memory_used_bytes",
        "shoal_net_input_bytes_total",
        "shoal_expired_keys_total 0",
        "shoal_wal_enabled 1",
        "shoal_wal_unsynced_bytes 0",
        "shoal_rdb_changes_since_last_save 1",
        "shoal_backups_failed_total 0",
    ] {
        assert!(body.contains(want), "metrics lack {want}:\n{body}");
    }
    let value = |name: &str| -> f64 {
        let line = body.lines().find(|l| l.starts_with(&format!("{name} "))).unwrap_or_else(|| panic!("no {name}"));
        line.split(' ').nth(1).unwrap().parse().unwrap()
    };
    assert!(value("shoal_wal_fsyncs_total") >= 1.0, "the SET was synced before its reply");
    assert!(value("shoal_wal_size_bytes") > 0.0);
    assert_eq!(http_get(port, "/healthz"), ("HTTP/1.1 200 OK".to_string(), "ok\n".to_string()));
    assert_eq!(http_get(port, "/nope").0, "HTTP/1.1 404 Not Found");
}

#[test]
fn sigterm_answers_in_flight_work_and_exits_zero() {
    let mut s = Server::start();
    let mut r = s.raw();
    let mut wire = Vec::new();
    for i in 0..20_000 {
        wire.extend(Raw::encode(&[b"SET", format!("k{i}").as_bytes(), b"v"]));
    }
    r.send(&wire);
    // The first reply proves the pipeline is being processed when the signal lands.
    assert_eq!(r.read(), ok());
    let status = s.signal_and_wait(libc::SIGTERM);
    assert!(status.success(), "exit status {status:?}");
    // Everything read before the signal was answered; the connection then closed.
    let mut answered = 1;
    while let Some(f) = r.try_read() {
        assert_eq!(f, ok());
        answered += 1;
    }
    assert!(answered >= 1);
}

#[test]
fn shutdown_command_stops_the_node() {
    let mut s = Server::start();
    let mut r = s.raw();
    r.send(b"SHUTDOWN NOSAVE\r\n");
    assert!(r.is_closed());
    shoal_tests::wait_for("process exit", || !s.is_running());
}

#[test]
fn config_file_and_environment_are_read() {
    let dir = std::env::temp_dir().join(format!("shoal-cfg-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("shoal.toml");
    std::fs::write(&file, "databases = 4\nmaxclients = 77\n").unwrap();
    let s = Server::start_with(&["--config", file.to_str().unwrap()]);
    let mut r = s.raw();
    assert_eq!(r.cmd(&["CONFIG", "GET", "databases"]), Frame::Array(vec![bulk("databases"), bulk("4")]));
    assert_eq!(r.cmd(&["CONFIG", "GET", "maxclients"]), Frame::Array(vec![bulk("maxclients"), bulk("77")]));
    let bad = std::process::Command::new(shoal_bin()).args(["--config", "/nonexistent/shoal.toml"]).output().unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("cannot read config file /nonexistent/shoal.toml"));
    let help = std::process::Command::new(shoal_bin()).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for flag in [
        "--bind",
        "--port",
        "--shards",
        "--threads",
        "--databases",
        "--data-dir",
        "--metrics-port",
        "--log-level",
        "--log-format",
        "--config",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}");
    }
    let _ = std::fs::remove_dir_all(&dir);
    let _ = simple("x");
}

#[test]
fn maxclients_refuses_the_next_client() {
    let s = Server::start_with(&["--maxclients", "3"]);
    // Connect all at once: admission must hold under a burst, not only one by one. The
    // harness's own readiness probe may still hold a slot for a moment after it hangs up, so
    // a client refused in the burst tries again; each held client has seen a PONG, which
    // proves it was admitted.
    let held: Vec<Raw> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..3)
            .map(|_| {
                sc.spawn(|| {
                    let mut admitted = None;
                    shoal_tests::wait_for("a held client admitted", || {
                        let mut c = s.raw();
                        c.send(b"PING\r\n");
                        let ok = c.try_read() == Some(simple("PONG"));
                        if ok {
                            admitted = Some(c);
                        }
                        ok
                    });
                    admitted.expect("admitted")
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    // The refusal is written at accept; a probe that sent data first could see the close
    // as a reset that discards it (as with Redis), so it only reads.
    let mut probe = Raw::connect(s.addr());
    assert_eq!(probe.try_read(), Some(Frame::Error("ERR max number of clients reached".into())));
    assert!(probe.is_closed(), "a refused client is disconnected");
    drop(held);
    shoal_tests::wait_for("a slot frees up", || {
        let mut probe = Raw::connect(s.addr());
        probe.send(b"PING\r\n");
        probe.try_read() == Some(simple("PONG"))
    });
}

#[test]
fn idle_connections_cannot_hold_the_node_past_maxclients_and_timeout() {
    let s = Server::start_with(&["--maxclients", "20", "--timeout", "1"]);
    // A flood of connections that never send a byte: 20 are admitted, the rest refused at
    // accept with Redis's error.
    let idle: Vec<std::net::TcpStream> =
        (0..40).map(|_| std::net::TcpStream::connect(s.addr()).expect("connect")).collect();
    let mut refused = 0;
    for mut c in idle.iter().skip(20) {
        c.set_read_timeout(Some(shoal_tests::DEADLINE)).unwrap();
        let mut buf = [0u8; 64];
        let n = std::io::Read::read(&mut c, &mut buf).unwrap_or(0);
        if buf[..n].starts_with(b"-ERR max number of clients reached") {
            refused += 1;
        }
    }
    // The harness's readiness probe may hold a slot for a moment after it hangs up, letting one
    // connection past the 20th in.
    assert!(refused >= 19, "{refused} of the 20 connections past the limit were refused");
    // The idle ones are closed after the client timeout, and a real client gets in.
    shoal_tests::wait_for("a new client to be admitted once idle ones time out", || {
        let mut c = s.raw();
        c.send(b"PING\r\n");
        c.try_read() == Some(simple("PONG"))
    });
    drop(idle);
}
