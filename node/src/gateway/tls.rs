//! TLS for client connections (rustls with aws-lc-rs, TLS 1.2 and 1.3): the certificate and key from files,
//! reloadable while the node runs (CONFIG SET tls-cert-file), client certificates checked
//! against a CA when mutual TLS is on, and a self-signed certificate for trials.

use parking_lot::{Mutex, RwLock};
use pki_types::pem::PemObject;
use pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_rustls::rustls::{self, server::WebPkiClientVerifier, RootCertStore, ServerConfig};
use tokio_rustls::TlsAcceptor;
use tracing::info;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("TLS certificate {path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("TLS: {0}")]
    Config(String),
}

/// `tls-auth-clients`: whether clients must present a certificate signed by the CA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthClients {
    No,
    Optional,
    Yes,
}

impl AuthClients {
    pub fn parse(s: &str) -> Option<AuthClients> {
        match s.to_ascii_lowercase().as_str() {
            "no" => Some(AuthClients::No),
            "optional" => Some(AuthClients::Optional),
            "yes" => Some(AuthClients::Yes),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            AuthClients::No => "no",
            AuthClients::Optional => "optional",
            AuthClients::Yes => "yes",
        }
    }
}

/// The files TLS is built from.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// CA for client certificates (mutual TLS); none: clients are not asked for one.
    pub ca: Option<PathBuf>,
    pub auth_clients: AuthClients,
}

pub struct Tls {
    acceptor: RwLock<TlsAcceptor>,
    files: Mutex<TlsFiles>,
}

impl Tls {
    pub fn new(files: TlsFiles) -> Result<Tls, TlsError> {
        let config = build(&files)?;
        Ok(Tls { acceptor: RwLock::new(TlsAcceptor::from(config)), files: Mutex::new(files) })
    }

    /// The acceptor for a new connection (connections keep the one they started with).
    pub fn acceptor(&self) -> TlsAcceptor {
        self.acceptor.read().clone()
    }

    pub fn files(&self) -> TlsFiles {
        self.files.lock().clone()
    }

    /// Rebuilds from changed files (CONFIG SET tls-*). Nothing changes unless the new files
    /// load, so a typo cannot take TLS down.
    pub fn reload(&self, change: impl FnOnce(&mut TlsFiles)) -> Result<(), TlsError> {
        let mut files = self.files.lock();
        let mut next = files.clone();
        change(&mut next);
        let config = build(&next)?;
        *self.acceptor.write() = TlsAcceptor::from(config);
        info!(cert = %next.cert.display(), "TLS certificate loaded");
        *files = next;
        Ok(())
    }
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bad = |message: String| TlsError::File { path: path.to_path_buf(), message };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| bad(e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("no certificate in the file".into()));
    }
    Ok(certs)
}

fn build(files: &TlsFiles) -> Result<Arc<ServerConfig>, TlsError> {
    let certs = read_certs(&files.cert)?;
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| TlsError::File { path: files.key.clone(), message: e.to_string() })?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let builder = match (&files.ca, files.auth_clients) {
        (Some(ca), auth) if auth != AuthClients::No => {
            let mut roots = RootCertStore::empty();
            for c in read_certs(ca)? {
                roots.add(c).map_err(|e| TlsError::File { path: ca.clone(), message: e.to_string() })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if auth == AuthClients::Optional { verifier.allow_unauthenticated() } else { verifier };
            builder.with_client_cert_verifier(verifier.build().map_err(|e| TlsError::Config(e.to_string()))?)
        }
        _ => builder.with_no_client_auth(),
    };
    let config = builder.with_single_cert(certs, key).map_err(|e| TlsError::Config(e.to_string()))?;
    Ok(Arc::new(config))
}

/// `--tls-self-signed`: a certificate for localhost and the loopback addresses, made once and
/// kept in `<data dir>/tls/`; returns (certificate, key) paths.
pub fn self_signed(data_dir: &Path) -> Result<(PathBuf, PathBuf), TlsError> {
    let dir = data_dir.join("tls");
    let (cert, key) = (dir.join("self-signed.crt"), dir.join("self-signed.key"));
    if cert.exists() && key.exists() {
        return Ok((cert, key));
    }
    let bad = |message: String| TlsError::File { path: dir.clone(), message };
    let names = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
    let made = rcgen::generate_simple_self_signed(names).map_err(|e| bad(e.to_string()))?;
    std::fs::create_dir_all(&dir).map_err(|e| bad(e.to_string()))?;
    std::fs::write(&cert, made.cert.pem()).map_err(|e| bad(e.to_string()))?;
    write_private(&key, made.signing_key.serialize_pem().as_bytes()).map_err(|e| bad(e.to_string()))?;
    info!(cert = %cert.display(), "generated a self-signed TLS certificate; clients trust it with --cacert");
    Ok((cert, key))
}

/// Writes a secret readable by the owner only.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().create(true).truncate(true).write(true).mode(0o600).open(path)?;
    f.write_all(bytes)
}
