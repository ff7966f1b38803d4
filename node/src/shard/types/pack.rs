//! `Pack`: a sequence of byte strings in one allocation, the analogue of Redis's listpack.
//! Small hashes, sets, sorted sets and lists live in a pack: a 5-field hash costs one
//! allocation of about its payload instead of a table, a slab and a bucket array.
//!
//! Layout: the total byte length and the element count (4 bytes each, little-endian), then
//! each element as a LEB128 length followed by its bytes. Operations are linear, which is
//! what listpack costs too; callers convert to a table past a size threshold
//! (`*-max-listpack-entries`).
//!
//! A pack is one thin pointer (its length lives in its header), so the collection enums that
//! hold one stay two words and a key's value stays 24 bytes.

use std::ops::Range;
use std::ptr::NonNull;

const HEADER: usize = 8;

pub struct Pack(NonNull<u8>);

// SAFETY: a Pack owns its allocation exclusively, like a Box<[u8]>.
unsafe impl Send for Pack {}
// SAFETY: shared access is read-only.
unsafe impl Sync for Pack {}

impl Drop for Pack {
    fn drop(&mut self) {
        let len = self.byte_size();
        // SAFETY: the pointer came from `Box::<[u8]>::into_raw` of a slice of exactly `len`
        // bytes (the length recorded in the header when it was made), and is dropped once.
        unsafe { drop(Box::from_raw(std::ptr::slice_from_raw_parts_mut(self.0.as_ptr(), len))) }
    }
}

impl Clone for Pack {
    fn clone(&self) -> Pack {
        Pack::from_vec(self.bytes().to_vec())
    }
}

impl PartialEq for Pack {
    fn eq(&self, other: &Pack) -> bool {
        self.bytes() == other.bytes()
    }
}
impl Eq for Pack {}

impl Default for Pack {
    fn default() -> Self {
        Pack::new()
    }
}

impl std::fmt::Debug for Pack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter().map(String::from_utf8_lossy)).finish()
    }
}

/// One element of a pack and where it sits.
#[derive(Clone, Copy, Debug)]
pub struct At<'a> {
    /// Byte range of the whole element (length prefix included).
    pub span: (usize, usize),
    pub data: &'a [u8],
}

impl At<'_> {
    pub fn range(&self) -> Range<usize> {
        self.span.0..self.span.1
    }
}

impl Pack {
    pub fn new() -> Pack {
        let mut v = vec![0u8; HEADER];
        v[..4].copy_from_slice(&(HEADER as u32).to_le_bytes());
        Pack::from_vec(v)
    }

    /// Takes a complete pack image (header included, total length already written).
    fn from_vec(v: Vec<u8>) -> Pack {
        assert!(v.len() <= u32::MAX as usize, "pack larger than 4 GiB");
        debug_assert_eq!(u32::from_le_bytes(v[..4].try_into().expect("header")) as usize, v.len());
        let raw = Box::into_raw(v.into_boxed_slice()) as *mut u8;
        Pack(NonNull::new(raw).expect("boxed slices are non-null"))
    }

    /// The whole image, header included.
    #[inline]
    fn bytes(&self) -> &[u8] {
        // SAFETY: the allocation holds at least the header, whose first word is its length.
        unsafe {
            let len = u32::from_le_bytes(*(self.0.as_ptr() as *const [u8; 4])) as usize;
            std::slice::from_raw_parts(self.0.as_ptr(), len)
        }
    }

    #[inline]
    pub fn len(&self) -> usize {
        u32::from_le_bytes(self.bytes()[4..HEADER].try_into().expect("header")) as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of the whole pack (for size thresholds and memory accounting).
    pub fn byte_size(&self) -> usize {
        self.bytes().len()
    }

    /// Offset of the first element.
    pub fn start(&self) -> usize {
        HEADER
    }

    /// Offset just past the last element.
    pub fn end(&self) -> usize {
        self.bytes().len()
    }

    /// The element starting at byte `pos` (which must be an element boundary before `end`).
    #[inline]
    pub fn at(&self, pos: usize) -> At<'_> {
        let b = self.bytes();
        let (len, n) = read_varint(&b[pos..]);
        let start = pos + n;
        At { span: (pos, start + len), data: &b[start..start + len] }
    }

    pub fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.elements().map(|a| a.data)
    }

    /// Every element with its position.
    pub fn elements(&self) -> Elements<'_> {
        Elements { pack: self, pos: HEADER }
    }

    /// The element at index `i`.
    pub fn get(&self, i: usize) -> Option<At<'_>> {
        self.elements().nth(i)
    }

    /// Replaces the bytes `range` (whole elements, `removed` of them) with `insert`.
    pub fn splice(&mut self, range: Range<usize>, removed: usize, insert: &[&[u8]]) {
        let mut added = 0;
        for e in insert {
            added += varint_len(e.len()) + e.len();
        }
        let old = self.bytes();
        let mut v = Vec::with_capacity(old.len() - range.len() + added);
        v.extend_from_slice(&old[..range.start]);
        for e in insert {
            write_varint(&mut v, e.len());
            v.extend_from_slice(e);
        }
        v.extend_from_slice(&old[range.end..]);
        let count = self.len() + insert.len() - removed;
        let total = v.len() as u32;
        v[..4].copy_from_slice(&total.to_le_bytes());
        v[4..HEADER].copy_from_slice(&(count as u32).to_le_bytes());
        *self = Pack::from_vec(v);
    }

    pub fn push_back(&mut self, items: &[&[u8]]) {
        let end = self.end();
        self.splice(end..end, 0, items);
    }

    pub fn push_front(&mut self, items: &[&[u8]]) {
        self.splice(HEADER..HEADER, 0, items);
    }

    /// Removes the elements in byte `range` (`count` of them).
    pub fn remove(&mut self, range: Range<usize>, count: usize) {
        self.splice(range, count, &[]);
    }
}

pub struct Elements<'a> {
    pack: &'a Pack,
    pos: usize,
}

impl<'a> Iterator for Elements<'a> {
    type Item = At<'a>;

    #[inline]
    fn next(&mut self) -> Option<At<'a>> {
        if self.pos >= self.pack.end() {
            return None;
        }
        let at = self.pack.at(self.pos);
        self.pos = at.span.1;
        Some(at)
    }
}

#[inline]
fn read_varint(b: &[u8]) -> (usize, usize) {
    let mut v = 0usize;
    let mut shift = 0;
    for (i, &byte) in b.iter().enumerate() {
        v |= ((byte & 0x7f) as usize) << shift;
        if byte & 0x80 == 0 {
            return (v, i + 1);
        }
        shift += 7;
    }
    unreachable!("packs are only written by write_varint")
}

fn varint_len(mut n: usize) -> usize {
    let mut len = 1;
    while n >= 0x80 {
        n >>= 7;
        len += 1;
    }
    len
}

fn write_varint(out: &mut Vec<u8>, mut n: usize) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_splice_and_iterate() {
        let mut p = Pack::new();
        p.push_back(&[b"a", b"bb"]);
        p.push_front(&[b"z"]);
        let big = vec![7u8; 300];
        p.push_back(&[&big]);
        assert_eq!(p.len(), 4);
        let items: Vec<&[u8]> = p.iter().collect();
        assert_eq!(items, vec![&b"z"[..], b"a", b"bb", &big[..]]);
        let second = p.get(1).expect("present");
        p.splice(second.range(), 1, &[b"x", b"y"]);
        let items: Vec<&[u8]> = p.iter().collect();
        assert_eq!(items, vec![&b"z"[..], b"x", b"y", b"bb", &big[..]]);
        let last = p.get(4).expect("present");
        p.remove(last.range(), 1);
        assert_eq!(p.len(), 4);
        assert_eq!(p.end(), p.get(3).expect("present").span.1);
    }
}
