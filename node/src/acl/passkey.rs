//! The generated passkey of the `default` user: made on first start of a public endpoint (or
//! with `--passkey auto`), kept in the data directory (owner-only), the same on every restart.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

pub const FILE_NAME: &str = "passkey";

/// The passkey in `data_dir`, made if there is none; true when it was just made.
pub fn load_or_create(data_dir: &Path) -> std::io::Result<(String, bool)> {
    let path = data_dir.join(FILE_NAME);
    if let Ok(text) = std::fs::read_to_string(&path) {
        let key = text.trim();
        if key.len() >= 32 {
            return Ok((key.to_string(), false));
        }
    }
    // 256 bits, hex: safe in a URI without escaping.
    let key: String = (0..32).map(|_| format!("{:02x}", rand::random::<u8>())).collect();
    std::fs::create_dir_all(data_dir)?;
    let tmp: PathBuf = data_dir.join(format!("{FILE_NAME}.tmp"));
    let mut f = std::fs::OpenOptions::new().create(true).truncate(true).write(true).mode(0o600).open(&tmp)?;
    f.write_all(format!("{key}\n").as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, &path)?;
    Ok((key, true))
}
