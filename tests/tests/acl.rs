//! Passwords and ACL rules, checked from outside with the exact replies Redis 7.0 gives:
//! requirepass and NOAUTH, password rotation with two passwords, command categories, key and
//! channel patterns with their NOPERM texts, ACL LOG, the ACL file, and secrets kept out of
//! CLIENT LIST.

use shoal_proto::Frame;
use shoal_tests::{bulk, err, fresh_dir, int, ok, simple, Raw, Server};

fn setuser(r: &mut Raw, rules: &[&str]) {
    let mut args = vec!["ACL", "SETUSER"];
    args.extend_from_slice(rules);
    assert_eq!(r.cmd(&args), ok(), "ACL SETUSER {rules:?}");
}

/// A new connection authenticated as `user`.
fn login(s: &Server, user: &str, pass: &str) -> Raw {
    let mut r = s.raw();
    assert_eq!(r.cmd(&["AUTH", user, pass]), ok(), "AUTH {user}");
    r
}

#[test]
fn requirepass_gates_every_command_until_auth() {
    let s = Server::start_with(&["--requirepass", "s3cret"]);
    let mut r = s.raw();
    assert_eq!(r.cmd(&["GET", "k"]), err("NOAUTH Authentication required."));
    assert_eq!(r.cmd(&["PING"]), err("NOAUTH Authentication required."));
    assert_eq!(
        r.cmd(&["HELLO", "3"]),
        err("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time")
    );
    assert_eq!(r.cmd(&["AUTH", "wrong"]), err("WRONGPASS invalid username-password pair or user is disabled."));
    assert_eq!(r.cmd(&["AUTH", "s3cret"]), ok());
    assert_eq!(r.cmd(&["PING"]), simple("PONG"));
    // HELLO AUTH authenticates and switches protocol in one step.
    let mut h = s.raw();
    let Frame::Map(_) = h.cmd(&["HELLO", "3", "AUTH", "default", "s3cret"]) else { panic!("HELLO 3 is a map") };
    assert_eq!(h.cmd(&["ACL", "WHOAMI"]), bulk("default"));
    // The password never shows in CLIENT LIST, nor in INFO.
    let Frame::Bulk(list) = r.cmd(&["CLIENT", "LIST"]) else { panic!() };
    let Frame::Bulk(info) = r.cmd(&["INFO", "everything"]) else { panic!() };
    assert!(!String::from_utf8_lossy(&list).contains("s3cret") && !String::from_utf8_lossy(&info).contains("s3cret"));
    // CONFIG SET requirepass "" opens the door again, for new connections too.
    assert_eq!(r.cmd(&["CONFIG", "SET", "requirepass", ""]), ok());
    assert_eq!(s.raw().cmd(&["PING"]), simple("PONG"));
}

#[test]
fn a_password_rotates_with_two_passwords_in_between() {
    let s = Server::start();
    let mut admin = s.raw();
    setuser(&mut admin, &["app", "on", ">old", "~*", "+@all"]);
    let mut before = login(&s, "app", "old");
    // Add the new password: both work while clients move over.
    setuser(&mut admin, &["app", ">new"]);
    login(&s, "app", "old");
    login(&s, "app", "new");
    // Remove the old one: only the new one works; connections already in stay in.
    setuser(&mut admin, &["app", "<old"]);
    assert_eq!(
        s.raw().cmd(&["AUTH", "app", "old"]),
        err("WRONGPASS invalid username-password pair or user is disabled.")
    );
    login(&s, "app", "new");
    assert_eq!(before.cmd(&["PING"]), simple("PONG"));
    assert_eq!(
        admin.cmd(&["ACL", "SETUSER", "app", "<old"]),
        err("ERR Error in ACL SETUSER modifier '<old': The password you are trying to remove from the user does not exist")
    );
}

#[test]
fn categories_keys_and_channels_allow_and_deny_with_redis_texts() {
    let s = Server::start();
    let mut admin = s.raw();
    setuser(
        &mut admin,
        &[
            "reader",
            "on",
            ">pw",
            "%R~cache:*",
            "~own:*",
            "&news.*",
            "+@read",
            "+@pubsub",
            "+@transaction",
            "+set",
            "-keys",
        ],
    );
    let mut r = login(&s, "reader", "pw");
    assert_eq!(r.cmd(&["GET", "cache:1"]), Frame::Null);
    assert_eq!(r.cmd(&["SET", "own:1", "v"]), ok());
    assert_eq!(
        r.cmd(&["SET", "cache:1", "v"]),
        err("NOPERM this user has no permissions to access one of the keys used as arguments")
    );
    assert_eq!(
        r.cmd(&["GET", "other"]),
        err("NOPERM this user has no permissions to access one of the keys used as arguments")
    );
    assert_eq!(r.cmd(&["DEL", "own:1"]), err("NOPERM this user has no permissions to run the 'del' command"));
    assert_eq!(r.cmd(&["KEYS", "*"]), err("NOPERM this user has no permissions to run the 'keys' command"));
    assert_eq!(
        r.cmd(&["CONFIG", "GET", "x"]),
        err("NOPERM this user has no permissions to run the 'config|get' command")
    );
    assert_eq!(r.cmd(&["PUBLISH", "news.today", "m"]), int(0));
    assert_eq!(
        r.cmd(&["PUBLISH", "gossip", "m"]),
        err("NOPERM this user has no permissions to access one of the channels used as arguments")
    );
    // A refused command inside MULTI fails the transaction.
    assert_eq!(r.cmd(&["MULTI"]), ok());
    assert_eq!(r.cmd(&["DEL", "own:1"]), err("NOPERM this user has no permissions to run the 'del' command"));
    assert_eq!(r.cmd(&["EXEC"]), err("EXECABORT Transaction discarded because of previous errors."));
    // Rule changes reach connections at their next command.
    setuser(&mut admin, &["reader", "+del"]);
    assert_eq!(r.cmd(&["DEL", "own:1"]), int(1));
    assert_eq!(
        admin.cmd(&["ACL", "DRYRUN", "reader", "get", "x"]),
        bulk("This user has no permissions to access the 'x' key")
    );
    assert_eq!(admin.cmd(&["ACL", "DRYRUN", "reader", "get", "cache:x"]), ok());

    // ACL LOG: newest first, repeats counted on one entry.
    let Frame::Array(entries) = admin.cmd(&["ACL", "LOG"]) else { panic!("ACL LOG") };
    let text: Vec<String> = entries.iter().map(|e| format!("{e:?}")).collect();
    assert!(text[0].contains("\"multi\"") && text[0].contains("\"del\""), "{}", text[0]);
    let keys_entry = text.iter().find(|t| t.contains("\"key\"") && t.contains("\"other\"")).expect("key entry");
    assert!(keys_entry.contains("\"reader\"") && keys_entry.contains("user=reader"), "{keys_entry}");
    assert_eq!(
        s.raw().cmd(&["AUTH", "reader", "bad"]),
        err("WRONGPASS invalid username-password pair or user is disabled.")
    );
    let Frame::Array(entries) = admin.cmd(&["ACL", "LOG", "1"]) else { panic!() };
    assert!(format!("{:?}", entries[0]).contains("\"auth\""));
    assert_eq!(admin.cmd(&["ACL", "LOG", "RESET"]), ok());
    assert_eq!(admin.cmd(&["ACL", "LOG"]), Frame::Array(vec![]));

    // Deleting a user ends its connections.
    assert_eq!(admin.cmd(&["ACL", "DELUSER", "reader", "nobody"]), int(1));
    shoal_tests::wait_for("the deleted user's connection to close", || r.is_closed());
    assert_eq!(admin.cmd(&["ACL", "DELUSER", "default"]), err("ERR The 'default' user cannot be removed"));
}

#[test]
fn the_acl_file_loads_at_start_and_saves_and_reloads() {
    let dir = fresh_dir("aclfile");
    let file = dir.join("users.acl");
    std::fs::write(&file, "# operators\nuser ops on >opspw ~* +@all\nuser default on nopass ~* &* +@all\n").unwrap();
    let path = file.display().to_string();
    let s = Server::start_with(&["--aclfile", &path]);
    let mut ops = login(&s, "ops", "opspw");
    setuser(&mut ops, &["late", "on", ">x", "+get", "~*"]);
    assert_eq!(ops.cmd(&["ACL", "SAVE"]), ok());
    let saved = std::fs::read_to_string(&file).unwrap();
    assert!(saved.contains("user late on #") && !saved.contains(">x"), "hashes, never passwords: {saved}");
    // A bad file is refused whole, and the users stay as they were.
    std::fs::write(&file, "user broken on +nosuchcommand\n").unwrap();
    let Frame::Error(e) = ops.cmd(&["ACL", "LOAD"]) else { panic!("ACL LOAD of a bad file") };
    let e = String::from_utf8_lossy(&e);
    assert!(e.contains("nosuchcommand"), "{e}");
    assert_eq!(ops.cmd(&["ACL", "USERS"]), Frame::Array(vec![bulk("default"), bulk("late"), bulk("ops")]));
    std::fs::write(&file, saved).unwrap();
    assert_eq!(ops.cmd(&["ACL", "LOAD"]), ok());
    login(&s, "late", "x");
    drop(s);
    // A start with a damaged file stops with the reason.
    std::fs::write(&file, "user x on +@nosuch\n").unwrap();
    let out = std::process::Command::new(shoal_tests::shoal_bin())
        .args(["--port", "0", "--bind", "127.0.0.1", "--save=", "--aclfile", &path, "--data-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("cannot load the ACL file") && stderr.contains("+@nosuch"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn auth_brute_force_is_rate_limited_per_address() {
    let s = Server::start_with(&["--requirepass", "right"]);
    let mut bystander = login(&s, "default", "right");
    // 10,000 guesses in one pipeline from 127.0.0.1.
    let mut attacker = s.raw();
    let guesses: Vec<u8> = (0..10_000).flat_map(|i| Raw::encode(&[b"AUTH", format!("guess{i}").as_bytes()])).collect();
    attacker.send(&guesses);
    let (mut wrongpass, mut limited) = (0, 0);
    for _ in 0..10_000 {
        match attacker.read() {
            Frame::Error(e) if e.starts_with(b"WRONGPASS") => wrongpass += 1,
            Frame::Error(e) if e.starts_with(b"ERR too many failed authentication attempts") => limited += 1,
            other => panic!("unexpected reply {other:?}"),
        }
    }
    assert_eq!((wrongpass, limited), (10, 9_990), "ten tries, then refusals without a check");
    // Locked out: even the right password is refused from that address for the window.
    assert_eq!(
        attacker.cmd(&["AUTH", "right"]),
        err("ERR too many failed authentication attempts from this address; try again in a few seconds")
    );
    // Other clients are not affected: one already in, and a new one from another address.
    assert_eq!(bystander.cmd(&["PING"]), simple("PONG"));
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.bind(&std::net::SocketAddr::from(([127, 0, 0, 2], 0)).into()).unwrap();
    socket.connect(&s.addr().into()).unwrap();
    let mut elsewhere = Raw::from_stream(socket.into());
    assert_eq!(elsewhere.cmd(&["AUTH", "right"]), ok());
}

#[test]
fn the_managed_profile_withholds_admin_commands_from_all_but_the_admin() {
    let dir = fresh_dir("managed");
    let file = dir.join("users.acl");
    std::fs::write(&file, "user ops on >opspw ~* &* +@all\nuser default on nopass ~* &* +@all\n").unwrap();
    let path = file.display().to_string();
    let args = ["--aclfile", &path, "--profile", "managed", "--admin-user", "ops", "--deny-commands", "keys"];
    let s = Server::start_with(&args);
    let mut tenant = s.raw();
    for cmd in
        [&["CONFIG", "GET", "maxmemory"][..], &["BGSAVE"], &["ACL", "LIST"], &["DEBUG", "SLEEP", "0"], &["MONITOR"]]
    {
        let Frame::Error(e) = tenant.cmd(cmd) else { panic!("{cmd:?} must be refused") };
        assert!(e.starts_with(b"ERR unknown command"), "{cmd:?}: {}", String::from_utf8_lossy(&e));
    }
    assert_eq!(tenant.cmd(&["SET", "k", "v"]), ok());
    let mut ops = login(&s, "ops", "opspw");
    let Frame::Array(_) = ops.cmd(&["CONFIG", "GET", "maxmemory"]) else { panic!("the admin may CONFIG") };
    // --deny-commands holds for the admin too.
    assert_eq!(ops.cmd(&["KEYS", "*"]), err("ERR unknown command 'KEYS', with args beginning with: '*' "));
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn rename_command_moves_a_command_to_a_secret_name() {
    let s = Server::start_with(&["--rename-command", "config=cfg-7f3a", "--rename-command", "flushall="]);
    let mut r = s.raw();
    assert_eq!(
        r.cmd(&["CONFIG", "GET", "x"]),
        err("ERR unknown command 'CONFIG', with args beginning with: 'GET' 'x' ")
    );
    let Frame::Array(_) = r.cmd(&["CFG-7F3A", "GET", "maxmemory"]) else { panic!("the new name works") };
    // The old name stays unknown after the new one was used (the lookup cache does not leak).
    assert_eq!(
        r.cmd(&["config", "GET", "x"]),
        err("ERR unknown command 'config', with args beginning with: 'GET' 'x' ")
    );
    assert_eq!(r.cmd(&["FLUSHALL"]), err("ERR unknown command 'FLUSHALL', with args beginning with: "));
}

#[test]
fn selectors_grant_a_second_set_of_permissions() {
    let s = Server::start();
    let mut admin = s.raw();
    // The selector given over two arguments, as clients split it.
    setuser(&mut admin, &["app", "on", ">pw", "~app:*", "+@all", "(%R~logs:*", "+get)"]);
    assert_eq!(
        admin.cmd(&["ACL", "LIST"]),
        Frame::Array(vec![
            bulk(&format!(
                "user app on #{} ~app:* resetchannels +@all (%R~logs:* resetchannels -@all +get)",
                sha256("pw")
            )),
            bulk("user default on nopass ~* &* +@all"),
        ])
    );
    let mut app = login(&s, "app", "pw");
    assert_eq!(app.cmd(&["SET", "app:1", "v"]), ok());
    assert_eq!(app.cmd(&["GET", "logs:today"]), Frame::Null, "the selector allows reading logs");
    assert_eq!(
        app.cmd(&["SET", "logs:today", "v"]),
        err("NOPERM this user has no permissions to access one of the keys used as arguments")
    );
    setuser(&mut admin, &["app", "clearselectors"]);
    assert_eq!(
        app.cmd(&["GET", "logs:today"]),
        err("NOPERM this user has no permissions to access one of the keys used as arguments")
    );
}

fn sha256(s: &str) -> String {
    use std::process::{Command, Stdio};
    let mut c = Command::new("sha256sum").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    std::io::Write::write_all(c.stdin.as_mut().unwrap(), s.as_bytes()).unwrap();
    let out = c.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap().to_string()
}

/// Commands by how they use their keys, with `{A}`, `{B}`, `{C}` for the keys.
const KEY_USES: &[&str] = &[
    "GET {A}",
    "SET {A} v",
    "SET {A} v GET",
    "SETNX {A} v",
    "GETSET {A} v",
    "GETDEL {A}",
    "GETEX {A} PERSIST",
    "APPEND {A} v",
    "INCR {A}",
    "STRLEN {A}",
    "MGET {A} {B}",
    "MSET {A} 1 {B} 2",
    "MSETNX {A} 1 {B} 2",
    "SETRANGE {A} 0 v",
    "GETRANGE {A} 0 1",
    "LCS {A} {B}",
    "DEL {A} {B}",
    "UNLINK {A}",
    "EXISTS {A} {B}",
    "TYPE {A}",
    "EXPIRE {A} 10",
    "TTL {A}",
    "PERSIST {A}",
    "TOUCH {A}",
    "RENAME {A} {B}",
    "RENAMENX {A} {B}",
    "COPY {A} {B}",
    "MOVE {A} 1",
    "DUMP {A}",
    "RESTORE {A} 0 x",
    "OBJECT ENCODING {A}",
    "SORT {A}",
    "SORT {A} STORE {B}",
    "SORT_RO {A}",
    "LPUSH {A} v",
    "LPUSHX {A} v",
    "LPOP {A}",
    "LRANGE {A} 0 -1",
    "LINSERT {A} BEFORE p v",
    "LMOVE {A} {B} LEFT RIGHT",
    "RPOPLPUSH {A} {B}",
    "LMPOP 2 {A} {B} LEFT",
    "BLPOP {A} {B} 1",
    "SADD {A} m",
    "SREM {A} m",
    "SMEMBERS {A}",
    "SMOVE {A} {B} m",
    "SUNION {A} {B}",
    "SUNIONSTORE {A} {B} {C}",
    "SINTERSTORE {A} {B} {C}",
    "SDIFFSTORE {A} {B} {C}",
    "SINTERCARD 2 {A} {B}",
    "HSET {A} f v",
    "HGET {A} f",
    "HINCRBY {A} f 1",
    "HDEL {A} f",
    "HGETALL {A}",
    "ZADD {A} 1 m",
    "ZINCRBY {A} 1 m",
    "ZRANGE {A} 0 -1",
    "ZRANGESTORE {A} {B} 0 -1",
    "ZUNIONSTORE {A} 2 {B} {C}",
    "ZINTER 2 {A} {B}",
    "ZPOPMIN {A}",
    "ZMPOP 2 {A} {B} MIN",
    "XADD {A} * f v",
    "XRANGE {A} - +",
    "XREAD STREAMS {A} {B} 0 0",
    "XREADGROUP GROUP g c STREAMS {A} 0",
    "XGROUP CREATE {A} g $",
    "XACK {A} g 0-1",
    "XTRIM {A} MAXLEN 1",
    "PFADD {A} x",
    "PFCOUNT {A} {B}",
    "PFMERGE {A} {B} {C}",
    "SETBIT {A} 1 1",
    "GETBIT {A} 1",
    "BITCOUNT {A}",
    "BITOP AND {A} {B} {C}",
    "BITFIELD {A} GET u8 0",
    "BITFIELD {A} SET u8 0 1",
    "BITFIELD_RO {A} GET u8 0",
    "GEOADD {A} 0 0 m",
    "GEOSEARCH {A} FROMLONLAT 0 0 BYRADIUS 1 km",
    "GEOSEARCHSTORE {A} {B} FROMLONLAT 0 0 BYRADIUS 1 km",
    "GEORADIUS {A} 0 0 1 km STORE {B}",
    "WATCH {A} {B}",
];

/// A key is checked for reading when the command uses its value and for writing when it
/// changes it, key by key, from Redis's key specs: ACL DRYRUN and COMMAND GETKEYSANDFLAGS
/// answer as redis-server does for every command and mix of read-only, write-only and
/// read-write keys.
#[test]
fn read_and_write_key_patterns_follow_each_keys_use_as_in_redis() {
    let redis = shoal_tests::RedisServer::start();
    let s = Server::start();
    let mut mine = s.raw();
    let mut theirs = redis.raw();
    let rules = ["u", "on", "nopass", "%R~r:*", "%W~w:*", "~rw:*", "+@all"];
    setuser(&mut mine, &rules);
    setuser(&mut theirs, &rules);
    let prefixes = ["r:", "w:", "rw:"];
    let (mut allowed, mut denied) = (0, 0);
    for template in KEY_USES {
        for a in prefixes {
            for b in prefixes {
                let line =
                    template.replace("{A}", &format!("{a}a")).replace("{B}", &format!("{b}b")).replace("{C}", "rw:c");
                let args: Vec<&str> = line.split(' ').collect();
                let dryrun = [&["ACL", "DRYRUN", "u"][..], &args].concat();
                let answer = mine.cmd(&dryrun);
                assert_eq!(answer, theirs.cmd(&dryrun), "ACL DRYRUN u {line}");
                if answer == ok() {
                    allowed += 1;
                } else {
                    denied += 1;
                }
                let getkeys = [&["COMMAND", "GETKEYSANDFLAGS"][..], &args].concat();
                assert_eq!(mine.cmd(&getkeys), theirs.cmd(&getkeys), "COMMAND GETKEYSANDFLAGS {line}");
            }
        }
    }
    assert!(allowed > 100 && denied > 100, "{allowed} allowed, {denied} denied");

    // The case users meet: sources readable, the destination writable.
    setuser(&mut mine, &["etl", "on", ">pw", "%R~src:*", "%W~dst:*", "+@set"]);
    let mut etl = login(&s, "etl", "pw");
    assert_eq!(etl.cmd(&["SUNIONSTORE", "dst:all", "src:a", "src:b"]), int(0));
    assert_eq!(
        etl.cmd(&["SUNIONSTORE", "src:a", "dst:all"]),
        err("NOPERM this user has no permissions to access one of the keys used as arguments")
    );
}
