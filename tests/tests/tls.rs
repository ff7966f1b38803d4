//! TLS on --tls-port: redis-cli --tls and redis-py with a self-signed certificate, mutual TLS
//! (a client certificate from the CA accepted, none or a stranger's refused), and a new
//! certificate loaded with CONFIG SET while the node runs.

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};
use shoal_tests::{free_port, fresh_dir, Server};
use std::path::{Path, PathBuf};
use std::process::Command;

/// redis-cli over TLS to `port` with extra flags; (succeeded, stdout + stderr).
fn cli(port: u16, flags: &[&str], cmd: &[&str]) -> (bool, String) {
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "--tls"])
        .args(flags)
        .args(cmd)
        .output()
        .expect("redis-cli");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success() && !text.contains("rror"), text.trim().to_string())
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

/// A CA, and a certificate it signed for `names` (client or server use); PEM files in `dir`.
struct Pki {
    ca: CertifiedIssuer<'static, KeyPair>,
    dir: PathBuf,
}

impl Pki {
    fn new(dir: &Path, name: &str) -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        write(dir, &format!("{name}.crt"), &ca.pem());
        Pki { ca, dir: dir.to_path_buf() }
    }

    fn ca_file(&self, name: &str) -> String {
        self.dir.join(format!("{name}.crt")).display().to_string()
    }

    /// (certificate file, key file).
    fn issue(&self, file: &str, names: &[&str], client: bool) -> (String, String) {
        let mut params = CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        params.extended_key_usages =
            vec![if client { ExtendedKeyUsagePurpose::ClientAuth } else { ExtendedKeyUsagePurpose::ServerAuth }];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.ca).unwrap();
        (
            write(&self.dir, &format!("{file}.crt"), &cert.pem()),
            write(&self.dir, &format!("{file}.key"), &key.serialize_pem()),
        )
    }
}

#[test]
fn self_signed_tls_serves_redis_cli_and_redis_py() {
    let tls_port = free_port();
    let s = Server::start_with(&["--tls-port", &tls_port.to_string(), "--tls-self-signed"]);
    let ca = s.dir.join("tls/self-signed.crt").display().to_string();
    assert_eq!(cli(tls_port, &["--cacert", &ca], &["SET", "over-tls", "1"]), (true, "OK".into()));
    // The same data as the plain port.
    let v: String = redis::cmd("GET").arg("over-tls").query(&mut s.redis()).unwrap();
    assert_eq!(v, "1");
    // Without trusting the certificate, the client refuses the server.
    assert!(!cli(tls_port, &[], &["PING"]).0);
    let py = Command::new("python3")
        .args(["-c", &format!(
            "import redis; r = redis.Redis.from_url('rediss://127.0.0.1:{tls_port}', ssl_ca_certs='{ca}'); print(r.get('over-tls').decode())"
        )])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&py.stdout).trim(), "1", "{}", String::from_utf8_lossy(&py.stderr));
}

#[test]
fn mutual_tls_accepts_the_cas_clients_only_and_certificates_reload_live() {
    let dir = fresh_dir("mtls");
    let pki = Pki::new(&dir, "ca");
    let (server_crt, server_key) = pki.issue("server", &["localhost", "127.0.0.1"], false);
    let (client_crt, client_key) = pki.issue("client", &["app"], true);
    let stranger = Pki::new(&dir, "stranger-ca");
    let (rogue_crt, rogue_key) = stranger.issue("rogue", &["app"], true);
    let tls_port = free_port();
    let ca = pki.ca_file("ca");
    let args = [
        "--tls-port",
        &tls_port.to_string(),
        "--tls-cert-file",
        &server_crt,
        "--tls-key-file",
        &server_key,
        "--tls-ca-cert-file",
        &ca,
    ];
    let s = Server::start_with(&args);
    let with_cert = ["--cacert", &ca, "--cert", &client_crt, "--key", &client_key];
    assert_eq!(cli(tls_port, &with_cert, &["PING"]), (true, "PONG".into()));
    assert!(!cli(tls_port, &["--cacert", &ca], &["PING"]).0, "no client certificate: refused");
    let rogue = ["--cacert", &ca, "--cert", &rogue_crt, "--key", &rogue_key];
    assert!(!cli(tls_port, &rogue, &["PING"]).0, "a certificate from another CA: refused");

    // A new server certificate from another CA, loaded live: new connections see it.
    let next = Pki::new(&dir, "next-ca");
    let (next_crt, next_key) = next.issue("next-server", &["localhost", "127.0.0.1"], false);
    let mut c = s.redis();
    // A mismatched pair is refused and the old certificate stays.
    let bad: redis::RedisResult<()> = redis::cmd("CONFIG").arg("SET").arg("tls-cert-file").arg(&next_crt).query(&mut c);
    assert!(bad.is_err());
    assert_eq!(cli(tls_port, &with_cert, &["PING"]), (true, "PONG".into()));
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("tls-cert-file")
        .arg(&next_crt)
        .arg("tls-key-file")
        .arg(&next_key)
        .query(&mut c)
        .unwrap();
    let next_ca = next.ca_file("next-ca");
    let trusting_next = ["--cacert", &next_ca, "--cert", &client_crt, "--key", &client_key];
    assert_eq!(cli(tls_port, &trusting_next, &["PING"]), (true, "PONG".into()));
    assert!(!cli(tls_port, &with_cert, &["PING"]).0, "the old certificate is no longer served");
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_tls_port_without_certificates_refuses_to_start() {
    let dir = fresh_dir("nocert");
    let out = Command::new(shoal_tests::shoal_bin())
        .args(["--port", "0", "--bind", "127.0.0.1", "--save=", "--tls-port", &free_port().to_string(), "--data-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("--tls-cert-file"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}
