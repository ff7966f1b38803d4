//! Backup encryption at rest: AES-256-GCM over 1 MiB chunks, so files of any size stream
//! through in bounded memory.
//!
//! File: magic `SHOALBK1`, a 7-byte random nonce prefix, then chunks, each a little-endian u32
//! ciphertext length and the ciphertext (with its 16-byte tag). A chunk's nonce is the prefix,
//! its index (u32, big-endian) and a byte that is 1 only for the last chunk, and the header is
//! its associated data: chunks cannot be reordered, dropped, cut off at the end, or moved to
//! another file without the decryption failing.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use std::io::{Read, Write};

pub const MAGIC: &[u8; 8] = b"SHOALBK1";
const CHUNK: usize = 1 << 20;
const HEADER: usize = 15;

#[derive(Debug, thiserror::Error)]
pub enum CryptError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("not an encrypted Shoal backup (bad magic)")]
    Magic,
    #[error("decryption failed at chunk {0}: wrong key, or the backup is damaged")]
    Auth(u32),
    #[error("the backup key must be 32 bytes: 64 hex digits")]
    Key,
}

/// A 256-bit key from its text form (64 hex digits, whitespace around ignored).
pub fn parse_key(text: &str) -> Result<[u8; 32], CryptError> {
    let t = text.trim();
    if t.len() != 64 {
        return Err(CryptError::Key);
    }
    let mut key = [0u8; 32];
    for (i, k) in key.iter_mut().enumerate() {
        *k = u8::from_str_radix(&t[2 * i..2 * i + 2], 16).map_err(|_| CryptError::Key)?;
    }
    Ok(key)
}

fn nonce(prefix: &[u8], index: u32, last: bool) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[..7].copy_from_slice(prefix);
    n[7..11].copy_from_slice(&index.to_be_bytes());
    n[11] = last as u8;
    n
}

/// Reads `r` to the end, filling `buf` as far as it goes; the number of bytes read.
fn fill(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Encrypts all of `r` into `w`; returns the bytes written.
pub fn encrypt(key: &[u8; 32], mut r: impl Read, mut w: impl Write) -> Result<u64, CryptError> {
    let cipher = Aes256Gcm::new_from_slice(key).map_err(|_| CryptError::Key)?;
    let mut header = [0u8; HEADER];
    header[..8].copy_from_slice(MAGIC);
    rand::Rng::fill(&mut rand::thread_rng(), &mut header[8..]);
    w.write_all(&header)?;
    let mut written = HEADER as u64;
    // One chunk read ahead: the last chunk must be known as the last when it is sealed.
    let mut cur = vec![0u8; CHUNK];
    let mut next = vec![0u8; CHUNK];
    let mut cur_len = fill(&mut r, &mut cur)?;
    let mut index = 0u32;
    loop {
        let next_len = if cur_len == CHUNK { fill(&mut r, &mut next)? } else { 0 };
        let last = next_len == 0;
        let n = nonce(&header[8..], index, last);
        let sealed = cipher
            .encrypt(Nonce::from_slice(&n), Payload { msg: &cur[..cur_len], aad: &header })
            .map_err(|_| CryptError::Auth(index))?;
        w.write_all(&(sealed.len() as u32).to_le_bytes())?;
        w.write_all(&sealed)?;
        written += 4 + sealed.len() as u64;
        if last {
            break;
        }
        std::mem::swap(&mut cur, &mut next);
        cur_len = next_len;
        index += 1;
    }
    w.flush()?;
    Ok(written)
}

/// Decrypts what `encrypt` wrote from `r` into `w`; returns the plaintext bytes.
pub fn decrypt(key: &[u8; 32], mut r: impl Read, mut w: impl Write) -> Result<u64, CryptError> {
    let cipher = Aes256Gcm::new_from_slice(key).map_err(|_| CryptError::Key)?;
    let mut header = [0u8; HEADER];
    if fill(&mut r, &mut header)? < HEADER || &header[..8] != MAGIC {
        return Err(CryptError::Magic);
    }
    let mut plain = 0u64;
    let mut index = 0u32;
    let mut len = [0u8; 4];
    let mut have = fill(&mut r, &mut len)?;
    loop {
        if have < 4 {
            // The last chunk says it is the last: a file that ends without one was cut.
            return Err(CryptError::Auth(index));
        }
        let n = u32::from_le_bytes(len) as usize;
        if n > CHUNK + 16 {
            return Err(CryptError::Auth(index));
        }
        let mut sealed = vec![0u8; n];
        if fill(&mut r, &mut sealed)? < n {
            return Err(CryptError::Auth(index));
        }
        have = fill(&mut r, &mut len)?;
        let last = have == 0;
        let nn = nonce(&header[8..], index, last);
        let opened = cipher
            .decrypt(Nonce::from_slice(&nn), Payload { msg: &sealed, aad: &header })
            .map_err(|_| CryptError::Auth(index))?;
        w.write_all(&opened)?;
        plain += opened.len() as u64;
        if last {
            break;
        }
        index += 1;
    }
    w.flush()?;
    Ok(plain)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(len: usize) {
        let key = [7u8; 32];
        let data: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
        let mut enc = Vec::new();
        encrypt(&key, &data[..], &mut enc).unwrap();
        let mut dec = Vec::new();
        decrypt(&key, &enc[..], &mut dec).unwrap();
        assert_eq!(dec, data, "length {len}");
    }

    #[test]
    fn any_length_round_trips() {
        for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK] {
            round_trip(len);
        }
    }

    #[test]
    fn wrong_keys_cuts_and_flips_are_refused() {
        let key = [7u8; 32];
        let data = vec![1u8; 2 * CHUNK + 10];
        let mut enc = Vec::new();
        encrypt(&key, &data[..], &mut enc).unwrap();
        assert!(matches!(decrypt(&[8u8; 32], &enc[..], Vec::new()), Err(CryptError::Auth(0))));
        // Cut after the first chunk: that chunk was not sealed as the last.
        let first = HEADER + 4 + CHUNK + 16;
        assert!(matches!(decrypt(&key, &enc[..first], Vec::new()), Err(CryptError::Auth(0))));
        let mut flipped = enc.clone();
        flipped[first + 100] ^= 1;
        assert!(matches!(decrypt(&key, &flipped[..], Vec::new()), Err(CryptError::Auth(1))));
        assert!(matches!(decrypt(&key, &b"REDIS0010"[..], Vec::new()), Err(CryptError::Magic)));
        assert_eq!(parse_key(&"ab".repeat(32)).unwrap(), [0xab; 32]);
        assert!(parse_key("abc").is_err());
    }
}
