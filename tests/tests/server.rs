//! Connection and server commands: HELLO and RESP3, INFO, CONFIG, CLIENT, COMMAND, DEBUG.

use bytes::Bytes;
use shoal_proto::Frame;
use shoal_tests::{bulk, err, int, ok, simple, wait_for, Server};

fn map_get<'a>(f: &'a Frame, key: &str) -> Option<&'a Frame> {
    match f {
        Frame::Map(pairs) => pairs.iter().find(|(k, _)| *k == bulk(key)).map(|(_, v)| v),
        _ => None,
    }
}

#[test]
// 3.141 is the sample value DEBUG PROTOCOL sends, not an approximation of pi.
#[allow(clippy::approx_constant)]
fn hello_switches_to_resp3_and_replies_change_shape() {
    let s = Server::start();
    let mut r = s.raw();
    let h = r.cmd(&["HELLO", "3"]);
    assert_eq!(map_get(&h, "proto"), Some(&int(3)));
    assert_eq!(map_get(&h, "version"), Some(&bulk("7.0.15")));
    assert_eq!(map_get(&h, "server"), Some(&bulk("redis")));
    assert_eq!(r.cmd(&["GET", "missing"]), Frame::Null);
    r.send(b"*2\r\n$3\r\nGET\r\n$7\r\nmissing\r\n");
    let mut raw = [0u8; 3];
    std::io::Read::read_exact(&mut r.stream, &mut raw).unwrap();
    assert_eq!(&raw, b"_\r\n", "RESP3 null on the wire");
    assert_eq!(r.cmd(&["DEBUG", "PROTOCOL", "double"]), Frame::Double(3.141));
    assert_eq!(r.cmd(&["DEBUG", "PROTOCOL", "true"]), Frame::Boolean(true));
    assert_eq!(
        r.cmd(&["DEBUG", "PROTOCOL", "bignum"]),
        Frame::BigNumber(Bytes::from_static(b"1234567999999999999999999999999999999"))
    );
    assert_eq!(
        r.cmd(&["DEBUG", "PROTOCOL", "verbatim"]),
        Frame::Verbatim { format: *b"txt", data: Bytes::from_static(b"This is a verbatim\nstring") }
    );
    assert_eq!(r.cmd(&["DEBUG", "PROTOCOL", "set"]), Frame::Set(vec![int(0), int(1), int(2)]));
    assert_eq!(
        r.cmd(&["DEBUG", "PROTOCOL", "map"]),
        Frame::Map(vec![
            (int(0), Frame::Boolean(false)),
            (int(1), Frame::Boolean(true)),
            (int(2), Frame::Boolean(false))
        ])
    );
    let Frame::Attribute { frame, .. } = r.cmd(&["DEBUG", "PROTOCOL", "attrib"]) else { panic!("attribute") };
    assert_eq!(*frame, bulk("Some real reply following the attribute"));
    assert!(matches!(r.cmd(&["DEBUG", "PROTOCOL", "push"]), Frame::Push(_)));
    assert_eq!(r.read(), bulk("Some real reply following the push reply"));
    assert!(matches!(r.cmd(&["CONFIG", "GET", "maxmemory"]), Frame::Map(_)));
    assert!(matches!(r.cmd(&["INFO", "server"]), Frame::Verbatim { .. }));
    // Back to RESP2.
    let h2 = r.cmd(&["HELLO", "2"]);
    assert!(matches!(h2, Frame::Array(ref a) if a.len() == 14));
    assert_eq!(r.cmd(&["DEBUG", "PROTOCOL", "double"]), bulk("3.141"));
    assert_eq!(r.cmd(&["HELLO", "4"]), err("NOPROTO unsupported protocol version"));
    assert_eq!(r.cmd(&["HELLO", "x"]), err("ERR Protocol version is not an integer or out of range"));
    assert_eq!(r.cmd(&["HELLO", "3", "FOO"]), err("ERR Syntax error in HELLO option 'FOO'"));
    let h = r.cmd(&["HELLO", "3", "AUTH", "default", "any", "SETNAME", "me"]);
    assert_eq!(map_get(&h, "proto"), Some(&int(3)));
    assert_eq!(r.cmd(&["CLIENT", "GETNAME"]), bulk("me"));
}

#[test]
fn resp3_through_the_redis_crate() {
    let s = Server::start();
    let client = redis::Client::open(format!("redis://127.0.0.1:{}/?protocol=resp3", s.port)).unwrap();
    let mut c = client.get_connection().unwrap();
    let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut c).unwrap();
    let v: String = redis::cmd("GET").arg("k").query(&mut c).unwrap();
    assert_eq!(v, "v");
    let m: std::collections::HashMap<String, String> =
        redis::cmd("CONFIG").arg("GET").arg("port").query(&mut c).unwrap();
    assert_eq!(m.get("port"), Some(&s.port.to_string()));
}

#[test]
fn ping_echo_time_select_reset_quit() {
    let s = Server::start();
    let mut r = s.raw();
    assert_eq!(r.cmd(&["PING", "hi"]), bulk("hi"));
    assert_eq!(r.cmd(&["PING", "a", "b"]), err("ERR wrong number of arguments for 'ping' command"));
    assert_eq!(r.cmd(&["ECHO", "x"]), bulk("x"));
    let Frame::Array(t) = r.cmd(&["TIME"]) else { panic!("TIME") };
    assert_eq!(t.len(), 2);
    assert_eq!(r.cmd(&["SELECT", "3"]), ok());
    assert_eq!(r.cmd(&["CLIENT", "SETNAME", "n1"]), ok());
    assert_eq!(r.cmd(&["RESET"]), simple("RESET"));
    assert_eq!(r.cmd(&["CLIENT", "GETNAME"]), Frame::Null);
    let Frame::Bulk(info) = r.cmd(&["CLIENT", "INFO"]) else { panic!("CLIENT INFO") };
    assert!(String::from_utf8_lossy(&info).contains(" db=0 "));
    assert_eq!(r.cmd(&["AUTH", "pw"]), err("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"));
    assert_eq!(r.cmd(&["QUIT"]), ok());
    assert!(r.is_closed());
}

#[test]
fn info_sections_have_redis_fields() {
    let s = Server::start();
    let mut r = s.raw();
    // The harness's readiness probe may still be closing: wait until only `r` remains, as
    // `r` sees it (a helper's own connection would be one more, closing in its turn).
    wait_for("other connections to close", || {
        let Frame::Bulk(clients) = r.cmd(&["INFO", "clients"]) else { return false };
        String::from_utf8_lossy(&clients).contains("connected_clients:1\r\n")
    });
    assert_eq!(r.cmd(&["SET", "a", "1"]), ok());
    assert_eq!(r.cmd(&["GET", "a"]), bulk("1"));
    assert_eq!(r.cmd(&["GET", "b"]), Frame::Null);
    assert_eq!(r.cmd(&["NOSUCH"]).to_bytes()[0], b'-');
    let Frame::Bulk(all) = r.cmd(&["INFO", "everything"]) else { panic!("INFO") };
    let text = String::from_utf8_lossy(&all);
    for section in [
        "# Server",
        "# Clients",
        "# Memory",
        "# Persistence",
        "# Stats",
        "# Replication",
        "# CPU",
        "# Cluster",
        "# Keyspace",
        "# Commandstats",
        "# Errorstats",
    ] {
        assert!(text.contains(section), "missing {section}");
    }
    for field in [
        "redis_version:7.0.15",
        "shoal_version:",
        "process_id:",
        "tcp_port:",
        "connected_clients:1",
        "used_memory:",
        "used_memory_rss:",
        "maxmemory_policy:noeviction",
        "keyspace_hits:1",
        "keyspace_misses:1",
        "db0:keys=1,expires=0,avg_ttl=0",
        "cmdstat_get:calls=2",
        "errorstat_ERR:count=1",
        "cluster_enabled:1",
        "role:master",
    ] {
        assert!(text.contains(field), "missing {field}");
    }
    let Frame::Bulk(one) = r.cmd(&["INFO", "keyspace"]) else { panic!("INFO") };
    assert!(!String::from_utf8_lossy(&one).contains("# Server"));
    assert_eq!(r.cmd(&["CONFIG", "RESETSTAT"]), ok());
    let Frame::Bulk(after) = r.cmd(&["INFO", "stats"]) else { panic!("INFO") };
    assert!(String::from_utf8_lossy(&after).contains("keyspace_hits:0"));
}

#[test]
fn config_get_set_with_globs_and_errors() {
    let s = Server::start();
    let mut r = s.raw();
    let Frame::Array(items) = r.cmd(&["CONFIG", "GET", "max*"]) else { panic!("CONFIG GET") };
    let names: Vec<Frame> = items.iter().step_by(2).cloned().collect();
    assert!(names.contains(&bulk("maxmemory")) && names.contains(&bulk("maxclients")));
    assert_eq!(r.cmd(&["CONFIG", "SET", "maxmemory", "100mb", "timeout", "30"]), ok());
    assert_eq!(r.cmd(&["CONFIG", "GET", "maxmemory"]), Frame::Array(vec![bulk("maxmemory"), bulk("104857600")]));
    assert_eq!(
        r.cmd(&["CONFIG", "SET", "nosuch", "1"]),
        err("ERR Unknown option or number of arguments for CONFIG SET - 'nosuch'")
    );
    assert_eq!(
        r.cmd(&["CONFIG", "SET", "port", "1"]),
        err("ERR CONFIG SET failed (possibly related to argument 'port') - can't set immutable config")
    );
    assert_eq!(
        r.cmd(&["CONFIG", "SET", "maxmemory", "lots"]),
        err("ERR CONFIG SET failed (possibly related to argument 'maxmemory') - argument must be a memory value")
    );
    assert_eq!(r.cmd(&["CONFIG", "SET", "timeout", "5", "maxmemory", "lots"]).to_bytes()[0], b'-');
    assert_eq!(
        r.cmd(&["CONFIG", "GET", "timeout"]),
        Frame::Array(vec![bulk("timeout"), bulk("30")]),
        "a failed CONFIG SET changes nothing"
    );
    assert_eq!(r.cmd(&["CONFIG", "SET", "maxmemory-policy", "allkeys-lfu"]), ok());
    assert_eq!(r.cmd(&["SET", "k", "v"]), ok());
    assert_eq!(r.cmd(&["OBJECT", "FREQ", "k"]), int(5), "a new key starts at Redis's LFU_INIT_VAL");
    assert_eq!(r.cmd(&["CONFIG", "SET", "proto-max-bulk-len", "2mb"]), ok());
    assert_eq!(
        r.cmd(&["SETRANGE", "k", "3000000", "x"]),
        err("ERR string exceeds maximum allowed size (proto-max-bulk-len)")
    );
}

#[test]
fn client_list_kill_reply_pause() {
    let s = Server::start();
    let mut a = s.raw();
    let mut b = s.raw();
    let Frame::Integer(b_id) = b.cmd(&["CLIENT", "ID"]) else { panic!("CLIENT ID") };
    assert_eq!(b.cmd(&["CLIENT", "SETNAME", "victim"]), ok());
    assert_eq!(
        b.cmd(&["CLIENT", "SETNAME", "bad name"]),
        err("ERR Client names cannot contain spaces, newlines or special characters.")
    );
    assert_eq!(b.cmd(&["CLIENT", "SETINFO", "lib-name", "mylib"]), ok());
    let Frame::Bulk(list) = a.cmd(&["CLIENT", "LIST"]) else { panic!("CLIENT LIST") };
    let list = String::from_utf8_lossy(&list);
    let line = list.lines().find(|l| l.contains("name=victim")).expect("victim listed");
    assert!(
        line.contains(&format!("id={b_id} ")) && line.contains("cmd=client|setinfo") && line.contains("lib-name=mylib")
    );
    assert_eq!(a.cmd(&["CLIENT", "KILL", "ID", &b_id.to_string()]), int(1));
    assert!(b.is_closed());
    assert_eq!(a.cmd(&["CLIENT", "KILL", "ID", "0"]), err("ERR client-id should be greater than 0"));
    assert_eq!(a.cmd(&["CLIENT", "KILL", "127.0.0.1:1"]), err("ERR No such client"));
    // CLIENT REPLY OFF / SKIP: the suppressed replies never reach the wire.
    let mut c = s.raw();
    c.send(b"CLIENT REPLY SKIP\r\nSET x 1\r\nGET x\r\n");
    assert_eq!(c.read(), bulk("1"));
    c.send(b"CLIENT REPLY OFF\r\nSET x 2\r\nGET x\r\nCLIENT REPLY ON\r\nGET x\r\n");
    assert_eq!(c.read(), ok());
    assert_eq!(c.read(), bulk("2"));
    // CLIENT PAUSE WRITE holds writes, not reads.
    assert_eq!(c.cmd(&["CLIENT", "PAUSE", "300", "WRITE"]), ok());
    let start = std::time::Instant::now();
    assert_eq!(s.raw().cmd(&["GET", "x"]), bulk("2"));
    assert!(start.elapsed().as_millis() < 250, "reads are not paused");
    assert_eq!(s.raw().cmd(&["SET", "x", "3"]), ok());
    assert!(start.elapsed().as_millis() >= 250, "writes wait for the pause to end");
    assert_eq!(c.cmd(&["CLIENT", "PAUSE", "-1"]), err("ERR timeout is negative"));
    assert_eq!(c.cmd(&["CLIENT", "UNPAUSE"]), ok());
}

#[test]
fn command_introspection() {
    let s = Server::start();
    let mut r = s.raw();
    let Frame::Integer(n) = r.cmd(&["COMMAND", "COUNT"]) else { panic!("COUNT") };
    assert!(n > 60);
    let Frame::Array(all) = r.cmd(&["COMMAND"]) else { panic!("COMMAND") };
    assert_eq!(all.len() as i64, n);
    let Frame::Array(info) = r.cmd(&["COMMAND", "INFO", "get", "mset", "nosuch"]) else { panic!("INFO") };
    let Frame::Array(get) = &info[0] else { panic!("get") };
    assert_eq!(get[0], bulk("get"));
    assert_eq!(get[1], int(2));
    assert_eq!(get[2], Frame::Array(vec![simple("readonly"), simple("fast")]));
    assert_eq!(&get[3..6], &[int(1), int(1), int(1)]);
    assert_eq!(get[6], Frame::Array(vec![simple("@read"), simple("@string"), simple("@fast")]));
    let Frame::Array(mset) = &info[1] else { panic!("mset") };
    assert_eq!(&mset[3..6], &[int(1), int(-1), int(2)]);
    assert_eq!(info[2], Frame::Null);
    assert_eq!(r.cmd(&["COMMAND", "GETKEYS", "MSET", "a", "1", "b", "2"]), Frame::Array(vec![bulk("a"), bulk("b")]));
    assert_eq!(r.cmd(&["COMMAND", "GETKEYS", "PING", "x"]), err("ERR The command has no key arguments"));
    assert_eq!(r.cmd(&["COMMAND", "GETKEYS", "TIME", "x"]), err("ERR The command has no key arguments"));
    assert_eq!(r.cmd(&["COMMAND", "GETKEYS", "NOSUCH", "x"]), err("ERR Invalid command specified"));
    assert_eq!(
        r.cmd(&["COMMAND", "GETKEYS", "GET", "a", "b"]),
        err("ERR Invalid number of arguments specified for command")
    );
    let Frame::Array(list) = r.cmd(&["COMMAND", "LIST", "FILTERBY", "PATTERN", "config*"]) else { panic!("LIST") };
    assert!(list.contains(&bulk("config|get")));
    let Frame::Array(docs) = r.cmd(&["COMMAND", "DOCS", "get"]) else { panic!("DOCS") };
    assert_eq!(docs[0], bulk("get"));
}

#[test]
fn flushall_empties_every_shard() {
    let s = Server::start_with(&["--shards", "4"]);
    let mut c = s.redis();
    for i in 0..5000 {
        let _: () = redis::cmd("SET").arg(format!("k{i}")).arg(i).query(&mut c).unwrap();
    }
    let mut r = s.raw();
    assert_eq!(r.cmd(&["DBSIZE"]), int(5000));
    assert_eq!(r.cmd(&["FLUSHALL"]), ok());
    assert_eq!(r.cmd(&["DBSIZE"]), int(0));
}

#[test]
fn config_set_limits_apply_to_open_connections() {
    let s = Server::start();
    let mut r = s.raw();
    assert_eq!(r.cmd(&["SET", "k", "v"]), ok());
    assert_eq!(s.raw().cmd(&["CONFIG", "SET", "proto-max-bulk-len", "1mb"]), ok());
    // This connection was open before the change; a 2 MB bulk is now over the limit.
    r.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2000000\r\n");
    assert_eq!(r.read(), err("ERR Protocol error: invalid bulk length"));
    assert_eq!(
        s.raw().cmd(&["CONFIG", "SET", "client-query-buffer-limit", "8gb"]),
        err("ERR CONFIG SET failed (possibly related to argument 'client-query-buffer-limit') - argument must be between 1048576 and 2147483647 inclusive")
    );
}

/// Every command (and subcommand) as COMMAND lists it, by name.
fn commands_by_name(r: &mut shoal_tests::Raw) -> std::collections::BTreeMap<String, Vec<Frame>> {
    fn walk(f: &Frame, out: &mut std::collections::BTreeMap<String, Vec<Frame>>) {
        let Frame::Array(fields) = f else { panic!("a command entry: {f:?}") };
        let Frame::Bulk(name) = &fields[0] else { panic!("a name") };
        if let Frame::Array(subs) = &fields[9] {
            subs.iter().for_each(|s| walk(s, out));
        }
        out.insert(String::from_utf8_lossy(name).into_owned(), fields.clone());
    }
    let Frame::Array(all) = r.cmd(&["COMMAND"]) else { panic!("COMMAND") };
    let mut out = std::collections::BTreeMap::new();
    all.iter().for_each(|c| walk(c, &mut out));
    out
}

/// Clients read COMMAND: cluster clients route by its key positions, tips and key specs, and
/// ACL key rules follow the specs' flags. Every command the two servers share is described as
/// Redis describes it.
#[test]
fn command_info_is_redis_own_for_every_shared_command() {
    let redis = shoal_tests::RedisServer::start();
    let s = Server::start();
    let theirs = commands_by_name(&mut redis.raw());
    let ours = commands_by_name(&mut s.raw());
    let mut compared = 0;
    for (name, mine) in &ours {
        let Some(reference) = theirs.get(name) else { continue };
        // ZRANK and ZREVRANK take Redis 7.2's WITHSCORE.
        if !matches!(name.as_str(), "zrank" | "zrevrank") {
            assert_eq!(mine[1], reference[1], "{name}: arity");
        }
        let sorted = |f: &Frame| match f {
            Frame::Array(items) => {
                let mut v: Vec<String> = items.iter().map(|i| format!("{i:?}")).collect();
                v.sort();
                v
            }
            other => panic!("{name}: a list, not {other:?}"),
        };
        assert_eq!(sorted(&mine[2]), sorted(&reference[2]), "{name}: flags");
        assert_eq!(mine[3..6], reference[3..6], "{name}: first key, last key, step");
        assert_eq!(sorted(&mine[6]), sorted(&reference[6]), "{name}: ACL categories");
        assert_eq!(mine[7], reference[7], "{name}: tips");
        assert_eq!(mine[8], reference[8], "{name}: key specs");
        compared += 1;
    }
    assert!(compared > 200, "compared {compared} commands");
}

/// A container's HELP is Redis's own text wherever Shoal has every subcommand that text
/// names (a text naming one Shoal lacks would promise it).
#[test]
fn help_is_redis_own_where_every_subcommand_is_shared() {
    let redis = shoal_tests::RedisServer::start();
    let s = Server::start();
    let (mut theirs, mut ours) = (redis.raw(), s.raw());
    let names = commands_by_name(&mut ours);
    let lines = |f: Frame| match f {
        Frame::Array(items) => items
            .into_iter()
            .map(|l| match l {
                Frame::Simple(s) => String::from_utf8_lossy(&s).into_owned(),
                other => panic!("a help line, not {other:?}"),
            })
            .collect::<Vec<String>>(),
        other => panic!("help lines, not {other:?}"),
    };
    let mut same = Vec::new();
    for container in names.keys().filter(|n| !n.contains('|') && names.contains_key(&format!("{n}|help"))) {
        // CLUSTER HELP is an error with cluster support off.
        let Frame::Array(text) = theirs.cmd(&[container, "HELP"]) else { continue };
        let reference = lines(Frame::Array(text));
        let shared = reference[1..]
            .iter()
            .filter(|l| !l.starts_with([' ', '(']))
            .all(|l| names.contains_key(&format!("{container}|{}", l.split(' ').next().unwrap().to_lowercase())));
        if shared {
            assert_eq!(lines(ours.cmd(&[container, "HELP"])), reference, "{container} HELP");
            same.push(container.as_str());
        }
    }
    for expected in ["client", "config", "function", "object", "script", "xinfo"] {
        assert!(same.contains(&expected), "{expected} HELP was compared: {same:?}");
    }
}
