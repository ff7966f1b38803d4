//! Backups: to a local directory and to a real S3-compatible server (moto's server mode,
//! started here), encrypted so the stored bytes show nothing of the data, kept by count and by
//! age, and restored into a running node (BACKUP RESTORE) and into a fresh one
//! (`--restore-from`), with every key equal.

use redis::Commands;
use shoal_tests::{describe_key, free_port, fresh_dir, populate_every_type, wait_for, Server};
use std::io::Write;
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};

const MARKER: &str = "PLAINTEXT-MARKER-8d1f";

/// A key file in `dir` holding `byte` repeated (as hex).
fn key_file(dir: &Path, byte: u8) -> String {
    let path = dir.join(format!("key-{byte}"));
    std::fs::write(&path, format!("{byte:02x}").repeat(32)).unwrap();
    path.display().to_string()
}

/// Writes every type plus a marker value; returns the description of every key.
fn populate(c: &mut redis::Connection) -> Vec<(i64, String)> {
    let mut keys = populate_every_type(c);
    let _: () = redis::cmd("SELECT").arg(0).query(c).unwrap();
    let _: () = c.set("secret", MARKER).unwrap();
    keys.push((0, "secret".into()));
    keys
}

fn describe_all(c: &mut redis::Connection, keys: &[(i64, String)]) -> Vec<String> {
    let d = keys.iter().map(|(db, k)| describe_key(c, *db, k)).collect();
    let _: () = redis::cmd("SELECT").arg(0).query(c).unwrap();
    d
}

fn status_field(c: &mut redis::Connection, field: &str) -> String {
    let text: String = redis::cmd("BACKUP").arg("STATUS").query(c).unwrap();
    text.lines().find_map(|l| l.strip_prefix(&format!("{field}:")).map(str::to_string)).unwrap_or_default()
}

/// BACKUP NOW, waiting until it has finished; returns its id.
fn backup_now(c: &mut redis::Connection) -> String {
    let done: u64 = status_field(c, "completed").parse().unwrap();
    let id: String = redis::cmd("BACKUP").arg("NOW").query(c).unwrap();
    wait_for("the backup to finish", || status_field(c, "phase") == "idle" && status_field(c, "last_id") == id);
    assert_eq!(status_field(c, "last_status"), "ok", "{}", status_field(c, "last_error"));
    assert_eq!(status_field(c, "completed").parse::<u64>().unwrap(), done + 1);
    id
}

fn listed_ids(c: &mut redis::Connection) -> Vec<String> {
    let list: Vec<std::collections::HashMap<String, redis::Value>> = redis::cmd("BACKUP").arg("LIST").query(c).unwrap();
    list.iter()
        .map(|m| match &m["id"] {
            redis::Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
            other => panic!("id {other:?}"),
        })
        .collect()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn local_backups_are_encrypted_kept_by_count_and_restore_every_key() {
    let dir = fresh_dir("local");
    let store = dir.join("store");
    let key = key_file(&dir, 0xab);
    let url = store.display().to_string();
    let args = ["--backup-url", &url, "--backup-key-file", &key, "--backup-retention-count", "2"];
    let a = Server::start_in(&dir.join("a"), &args);
    let mut c = a.redis();
    let keys = populate(&mut c);
    let first = backup_now(&mut c);
    let _: () = c.set("secret", "second").unwrap();
    let second = backup_now(&mut c);
    let at_second = describe_all(&mut c, &keys);
    let _: () = c.set("secret", "third").unwrap();
    let _: () = c.rpush("l:big", "pushed-after").unwrap();
    let third = backup_now(&mut c);
    let at_third = describe_all(&mut c, &keys);
    assert_eq!(listed_ids(&mut c), vec![second.clone(), third.clone()], "the oldest went by count");
    assert!(!store.join(&first).exists(), "retention deleted the first backup's files");

    // Encrypted at rest: neither the values nor the RDB structure show through.
    let data = std::fs::read(store.join(&third).join("data")).unwrap();
    assert!(data.starts_with(b"SHOALBK1"));
    assert!(!contains(&data, MARKER.as_bytes()) && !contains(&data, b"element-1") && !contains(&data, b"REDIS"));

    // A fresh node restores the latest at start-up.
    let b = Server::start_in(&dir.join("b"), &[&args[..], &["--restore-from", "latest"]].concat());
    assert_eq!(describe_all(&mut b.redis(), &keys), at_third);

    // A running node goes back to an earlier backup: all data replaced, and a restart keeps it.
    let _: () = c.set("added-after", "1").unwrap();
    let _: redis::Value = redis::cmd("BACKUP").arg("RESTORE").arg(&second).query(&mut c).unwrap();
    assert_eq!(describe_all(&mut c, &keys), at_second);
    assert!(!c.exists::<_, bool>("added-after").unwrap(), "restore replaces all data");
    let mut a = a;
    a.signal_and_wait(libc::SIGKILL);
    let a = Server::start_in(&dir.join("a"), &args);
    assert_eq!(describe_all(&mut a.redis(), &keys), at_second, "the restored data is the node's own");
    drop((a, b));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A backup carries the function libraries: BACKUP RESTORE puts back the ones it was taken
/// with (and they outlive a restart), and a fresh node restored from it has them.
#[test]
fn backups_carry_function_libraries() {
    let dir = fresh_dir("functions");
    let url = dir.join("store").display().to_string();
    let args = ["--backup-url", &url];
    let lib =
        |name: &str| format!("#!lua name={name}\nredis.register_function('{name}', function() return '{name}' end)");
    let fcall = |s: &Server, name: &str| redis::cmd("FCALL").arg(name).arg(0).query::<String>(&mut s.redis());
    let mut a = Server::start_in(&dir.join("a"), &args);
    let mut c = a.redis();
    let _: String = redis::cmd("FUNCTION").arg("LOAD").arg(lib("first")).query(&mut c).unwrap();
    let id = backup_now(&mut c);
    let _: () = redis::cmd("FUNCTION").arg("FLUSH").query(&mut c).unwrap();
    let _: String = redis::cmd("FUNCTION").arg("LOAD").arg(lib("second")).query(&mut c).unwrap();
    let _: redis::Value = redis::cmd("BACKUP").arg("RESTORE").arg(&id).query(&mut c).unwrap();
    assert_eq!(fcall(&a, "first").unwrap(), "first");
    assert!(fcall(&a, "second").is_err(), "the restored libraries replace the node's");
    a.signal_and_wait(libc::SIGKILL);
    let a = Server::start_in(&dir.join("a"), &args);
    assert_eq!(fcall(&a, "first").unwrap(), "first");

    let b = Server::start_in(&dir.join("b"), &[&args[..], &["--restore-from", &id]].concat());
    assert_eq!(fcall(&b, "first").unwrap(), "first");
    drop((a, b));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn retention_by_age_deletes_old_backups() {
    let dir = fresh_dir("age");
    let store = dir.join("store");
    // A backup from ten days ago, as an earlier node left it.
    let old = store.join("20261112T000000Z-0000");
    std::fs::create_dir_all(&old).unwrap();
    std::fs::write(old.join("data"), b"old").unwrap();
    let ten_days_ago = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
        - 10 * 86_400_000;
    let meta = format!(
        r#"{{"id":"20261112T000000Z-0000","created_ms":{ten_days_ago},"node_id":"x","keys":0,"rdb_bytes":3,"stored_bytes":3,"encrypted":false,"log_offset":0,"shoal_version":"0"}}"#
    );
    std::fs::write(old.join("meta.json"), meta).unwrap();
    let url = store.display().to_string();
    let s = Server::start_in(&dir.join("node"), &["--backup-url", &url, "--backup-retention-days", "7"]);
    let mut c = s.redis();
    assert_eq!(listed_ids(&mut c), vec!["20261112T000000Z-0000".to_string()]);
    let new = backup_now(&mut c);
    assert_eq!(listed_ids(&mut c), vec![new]);
    assert!(!old.join("meta.json").exists() && !old.join("data").exists());
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn backup_without_a_destination_is_an_error() {
    let s = Server::start();
    let r: redis::RedisResult<String> = redis::cmd("BACKUP").arg("NOW").query(&mut s.redis());
    assert!(r.unwrap_err().to_string().contains("--backup-url"));
}

/// moto's S3 server on a free port, stopped when dropped.
struct Moto {
    child: Child,
    port: u16,
}

impl Moto {
    fn start() -> Moto {
        let port = free_port();
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server (pip install 'moto[server]'; scripts/install-test-deps.sh does)");
        wait_for("moto_server to listen", || TcpStream::connect(("127.0.0.1", port)).is_ok());
        Moto { child, port }
    }

    /// Runs `code` with boto3 (installed with moto) and an S3 client `s3` on this server;
    /// returns what it prints.
    fn boto(&self, code: &str) -> Vec<u8> {
        let script = format!(
            "import boto3, sys\ns3 = boto3.client('s3', endpoint_url='http://127.0.0.1:{}', region_name='us-east-1', aws_access_key_id='test', aws_secret_access_key='test')\n{code}\n",
            self.port
        );
        let mut child =
            Command::new("python3").arg("-").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("python3");
        child.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "boto3 script failed: {code}");
        out.stdout
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn backups_round_trip_through_an_s3_compatible_server() {
    let moto = Moto::start();
    moto.boto("s3.create_bucket(Bucket='shoal-backups')");
    let dir = fresh_dir("s3");
    let key = key_file(&dir, 0x5c);
    let endpoint = format!("http://127.0.0.1:{}", moto.port);
    let env = [("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test")];
    let base = ["--backup-url", "s3://shoal-backups/nightly", "--backup-s3-endpoint", &endpoint];
    let args = [&base[..], &["--backup-key-file", &key, "--backup-retention-count", "1"]].concat();
    let a = Server::start_in_env(&dir.join("a"), &args, &env);
    let mut c = a.redis();
    let keys = populate(&mut c);
    let first = backup_now(&mut c);
    let _: () = c.set("secret", "newer").unwrap();
    let id = backup_now(&mut c);
    let before = describe_all(&mut c, &keys);
    assert_eq!(listed_ids(&mut c), vec![id.clone()], "retention deleted the older one from the bucket");
    let objects = moto
        .boto("print('\\n'.join(o['Key'] for o in s3.list_objects_v2(Bucket='shoal-backups').get('Contents', [])))");
    let objects = String::from_utf8(objects).unwrap();
    assert_eq!(
        objects.lines().collect::<Vec<_>>(),
        vec![format!("nightly/{id}/data"), format!("nightly/{id}/meta.json")]
    );
    assert!(!objects.contains(&first));

    // What the bucket holds is ciphertext.
    let data = moto.boto(&format!(
        "sys.stdout.buffer.write(s3.get_object(Bucket='shoal-backups', Key='nightly/{id}/data')['Body'].read())"
    ));
    assert!(data.starts_with(b"SHOALBK1") && !contains(&data, b"newer") && !contains(&data, b"REDIS"));

    let b = Server::start_in_env(&dir.join("b"), &[&args[..], &["--restore-from", &id]].concat(), &env);
    assert_eq!(describe_all(&mut b.redis(), &keys), before, "restored from S3 with every key equal");

    // Another key cannot read it: the start stops with the reason.
    let wrong = key_file(&dir, 0x11);
    let out = Command::new(shoal_tests::shoal_bin())
        .args(["--port", "0", "--bind", "127.0.0.1", "--save=", "--data-dir"])
        .arg(dir.join("c"))
        .args(base)
        .args(["--backup-key-file", &wrong, "--restore-from", "latest"])
        .envs(env)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("decryption failed"), "{stderr}");
    drop((a, b));
    let _ = std::fs::remove_dir_all(&dir);
}
