//! Decoders for the compact blobs inside Redis's RDB values: listpacks (hashes, sorted sets,
//! list nodes, Redis 7.2 sets), ziplists (what Redis before 7.0 wrote) and intsets. Every length is checked against the blob, so a
//! corrupt payload is an error, never a panic or an oversized allocation.

/// A listpack element: bytes or an integer.
#[derive(Debug, PartialEq, Eq)]
pub enum Elem {
    Bytes(Vec<u8>),
    Int(i64),
}

impl Elem {
    pub fn into_bytes(self) -> Vec<u8> {
        match self {
            Elem::Bytes(b) => b,
            Elem::Int(n) => n.to_string().into_bytes(),
        }
    }
}

/// The elements of a listpack; `None` when it is malformed.
pub fn listpack(lp: &[u8]) -> Option<Vec<Elem>> {
    if lp.len() < 7 || u32::from_le_bytes(lp[..4].try_into().ok()?) as usize != lp.len() {
        return None;
    }
    let mut out = Vec::new();
    let mut p = 6;
    loop {
        let b = *lp.get(p)?;
        if b == 0xFF {
            return (p == lp.len() - 1).then_some(out);
        }
        let take = |from: usize, n: usize| lp.get(from..from + n);
        let (elem, enc_len) = if b & 0x80 == 0 {
            (Elem::Int((b & 0x7f) as i64), 1)
        } else if b & 0xC0 == 0x80 {
            let n = (b & 0x3f) as usize;
            (Elem::Bytes(take(p + 1, n)?.to_vec()), 1 + n)
        } else if b & 0xE0 == 0xC0 {
            let v = (((b & 0x1f) as u16) << 8) | *lp.get(p + 1)? as u16;
            // 13-bit two's complement.
            let v = ((v << 3) as i16 >> 3) as i64;
            (Elem::Int(v), 2)
        } else if b & 0xF0 == 0xE0 {
            let n = (((b & 0x0f) as usize) << 8) | *lp.get(p + 1)? as usize;
            (Elem::Bytes(take(p + 2, n)?.to_vec()), 2 + n)
        } else {
            match b {
                0xF0 => {
                    let n = u32::from_le_bytes(take(p + 1, 4)?.try_into().ok()?) as usize;
                    (Elem::Bytes(take(p + 5, n)?.to_vec()), 5 + n)
                }
                0xF1 => (Elem::Int(i16::from_le_bytes(take(p + 1, 2)?.try_into().ok()?) as i64), 3),
                0xF2 => {
                    let t = take(p + 1, 3)?;
                    let v = (((t[2] as i32) << 24 | (t[1] as i32) << 16 | (t[0] as i32) << 8) >> 8) as i64;
                    (Elem::Int(v), 4)
                }
                0xF3 => (Elem::Int(i32::from_le_bytes(take(p + 1, 4)?.try_into().ok()?) as i64), 5),
                0xF4 => (Elem::Int(i64::from_le_bytes(take(p + 1, 8)?.try_into().ok()?)), 9),
                _ => return None,
            }
        };
        let backlen = match enc_len {
            0..=127 => 1,
            128..=16383 => 2,
            16384..=2097151 => 3,
            2097152..=268435455 => 4,
            _ => 5,
        };
        p += enc_len + backlen;
        out.push(elem);
    }
}

/// The elements of a ziplist; `None` when it is malformed.
pub fn ziplist(zl: &[u8]) -> Option<Vec<Elem>> {
    if zl.len() < 11 || u32::from_le_bytes(zl[..4].try_into().ok()?) as usize != zl.len() {
        return None;
    }
    let mut out = Vec::new();
    let mut p = 10;
    loop {
        if *zl.get(p)? == 0xFF {
            return (p == zl.len() - 1).then_some(out);
        }
        // The previous entry's length: one byte, or 0xFE and four.
        p += if zl[p] == 0xFE { 5 } else { 1 };
        let b = *zl.get(p)?;
        let take = |from: usize, n: usize| zl.get(from..from.checked_add(n)?);
        let (elem, len) = match b >> 6 {
            0 => {
                let n = (b & 0x3f) as usize;
                (Elem::Bytes(take(p + 1, n)?.to_vec()), 1 + n)
            }
            1 => {
                let n = (((b & 0x3f) as usize) << 8) | *zl.get(p + 1)? as usize;
                (Elem::Bytes(take(p + 2, n)?.to_vec()), 2 + n)
            }
            2 => {
                let n = u32::from_be_bytes(take(p + 1, 4)?.try_into().ok()?) as usize;
                (Elem::Bytes(take(p + 5, n)?.to_vec()), 5 + n)
            }
            _ => match b {
                0xC0 => (Elem::Int(i16::from_le_bytes(take(p + 1, 2)?.try_into().ok()?) as i64), 3),
                0xD0 => (Elem::Int(i32::from_le_bytes(take(p + 1, 4)?.try_into().ok()?) as i64), 5),
                0xE0 => (Elem::Int(i64::from_le_bytes(take(p + 1, 8)?.try_into().ok()?)), 9),
                0xF0 => {
                    let t = take(p + 1, 3)?;
                    let v = (((t[2] as i32) << 24 | (t[1] as i32) << 16 | (t[0] as i32) << 8) >> 8) as i64;
                    (Elem::Int(v), 4)
                }
                0xFE => (Elem::Int(*zl.get(p + 1)? as i8 as i64), 2),
                0xF1..=0xFD => (Elem::Int((b & 0x0f) as i64 - 1), 1),
                _ => return None,
            },
        };
        p += len;
        out.push(elem);
    }
}

/// The integers of an intset; `None` when it is malformed.
pub fn intset(blob: &[u8]) -> Option<Vec<i64>> {
    let width = u32::from_le_bytes(blob.get(..4)?.try_into().ok()?) as usize;
    let n = u32::from_le_bytes(blob.get(4..8)?.try_into().ok()?) as usize;
    if !matches!(width, 2 | 4 | 8) || blob.len() != 8 + width * n {
        return None;
    }
    Some(
        blob[8..]
            .chunks_exact(width)
            .map(|c| match width {
                2 => i16::from_le_bytes(c.try_into().expect("2 bytes")) as i64,
                4 => i32::from_le_bytes(c.try_into().expect("4 bytes")) as i64,
                _ => i64::from_le_bytes(c.try_into().expect("8 bytes")),
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_redis_listpack_encodings() {
        // Built by hand from the listpack spec: "a", 5, -3 (13-bit), 1000 (13-bit), "xyz", end.
        let mut lp = vec![0, 0, 0, 0, 5, 0];
        lp.extend_from_slice(&[0x81, b'a', 2]);
        lp.extend_from_slice(&[0x05, 1]);
        let neg: u16 = (-3i16 as u16) & 0x1fff;
        lp.extend_from_slice(&[0xC0 | (neg >> 8) as u8, neg as u8, 2]);
        lp.extend_from_slice(&[0xC0 | (1000u16 >> 8) as u8, (1000u16 & 0xff) as u8, 2]);
        lp.extend_from_slice(&[0x83, b'x', b'y', b'z', 4]);
        lp.push(0xFF);
        let n = lp.len() as u32;
        lp[..4].copy_from_slice(&n.to_le_bytes());
        assert_eq!(
            listpack(&lp).unwrap(),
            vec![
                Elem::Bytes(b"a".to_vec()),
                Elem::Int(5),
                Elem::Int(-3),
                Elem::Int(1000),
                Elem::Bytes(b"xyz".to_vec())
            ]
        );
        assert_eq!(listpack(&lp[..lp.len() - 1]), None, "a truncated listpack is refused");
        let mut is = vec![2, 0, 0, 0, 3, 0, 0, 0];
        for v in [1i16, 7, -2] {
            is.extend_from_slice(&v.to_le_bytes());
        }
        assert_eq!(intset(&is).unwrap(), vec![1, 7, -2]);
    }

    #[test]
    fn decodes_ziplist_encodings() {
        // Header (bytes, tail, count), then "ab", 7 (4-bit immediate), 300 (int16), -5 (int8).
        let mut zl = vec![0u8; 10];
        zl.extend_from_slice(&[0, 0x02, b'a', b'b']);
        zl.extend_from_slice(&[4, 0xF8]);
        zl.extend_from_slice(&[2, 0xC0]);
        zl.extend_from_slice(&300i16.to_le_bytes());
        zl.extend_from_slice(&[4, 0xFE, (-5i8) as u8]);
        zl.push(0xFF);
        let n = zl.len() as u32;
        zl[..4].copy_from_slice(&n.to_le_bytes());
        assert_eq!(
            ziplist(&zl).unwrap(),
            vec![Elem::Bytes(b"ab".to_vec()), Elem::Int(7), Elem::Int(300), Elem::Int(-5)]
        );
        assert_eq!(ziplist(&zl[..zl.len() - 1]), None);
    }
}
