//! The sorted-set type: members ordered by (score, member bytes).
//!
//! Small sets live in a `Pack` of member, score pairs kept in order (Redis's `listpack`).
//! Large ones (`zset-max-listpack-entries` / `-value`) keep a hash table from member to score
//! plus an order index: sorted blocks of at most `BLOCK` entries with a Fenwick tree over the
//! block lengths, so rank, select-by-rank, insert and remove are all O(log n) plus a short
//! memmove, with contiguous memory for range scans. Redis uses a skiplist for the same job;
//! OBJECT ENCODING reports `skiplist` for this form.

use super::pack::Pack;
use super::Encodings;
use crate::shard::bytes::SmallBytes;
use crate::shard::dict::{Dict, Slot};
use std::cmp::Ordering;

/// Most entries in one block of the order index.
const BLOCK: usize = 128;

pub struct ZEntry {
    next: u32,
    pub member: SmallBytes,
    pub score: f64,
}

impl Slot for ZEntry {
    #[inline]
    fn key(&self) -> &[u8] {
        &self.member
    }
    #[inline]
    fn next(&self) -> u32 {
        self.next
    }
    #[inline]
    fn set_next(&mut self, next: u32) {
        self.next = next;
    }
    fn vacant(next: u32) -> ZEntry {
        ZEntry { next, member: SmallBytes::EMPTY, score: 0.0 }
    }
}

/// Orders (score, member) pairs. Scores are never NaN: commands reject NaN results.
#[inline]
pub fn cmp(a: (f64, &[u8]), b: (f64, &[u8])) -> Ordering {
    a.0.partial_cmp(&b.0).unwrap_or(Ordering::Equal).then_with(|| a.1.cmp(b.1))
}

/// The order index of a large sorted set.
#[derive(Clone, Default)]
pub struct OrderIndex {
    blocks: Vec<Vec<(f64, SmallBytes)>>,
    /// Each block's last entry, side by side: finding a block binary-searches this one array
    /// instead of touching every probed block's own allocation (a cache miss each).
    lasts: Vec<(f64, SmallBytes)>,
    /// Fenwick tree over block lengths (1-based).
    fenwick: Vec<usize>,
    len: usize,
}

impl OrderIndex {
    fn rebuild(&mut self) {
        let n = self.blocks.len();
        self.fenwick = vec![0; n + 1];
        for i in 1..=n {
            self.fenwick[i] += self.blocks[i - 1].len();
            let parent = i + (i & i.wrapping_neg());
            if parent <= n {
                self.fenwick[parent] += self.fenwick[i];
            }
        }
    }

    fn add(&mut self, block: usize, delta: isize) {
        let mut i = block + 1;
        while i < self.fenwick.len() {
            self.fenwick[i] = (self.fenwick[i] as isize + delta) as usize;
            i += i & i.wrapping_neg();
        }
    }

    /// Entries in blocks before `block`.
    fn prefix(&self, block: usize) -> usize {
        let mut i = block;
        let mut sum = 0;
        while i > 0 {
            sum += self.fenwick[i];
            i -= i & i.wrapping_neg();
        }
        sum
    }

    /// (block, index in block) of the entry at `rank` (< len).
    fn locate(&self, rank: usize) -> (usize, usize) {
        let n = self.blocks.len();
        let mut pos = 0;
        let mut rem = rank;
        let mut step = n.next_power_of_two();
        while step > 0 {
            if pos + step <= n && self.fenwick[pos + step] <= rem {
                pos += step;
                rem -= self.fenwick[pos];
            }
            step >>= 1;
        }
        (pos, rem)
    }

    /// Refreshes the cached last entry of block `b`.
    fn refresh_last(&mut self, b: usize) {
        self.lasts[b] = self.blocks[b].last().expect("blocks are never empty").clone();
    }

    /// The block that holds (or would hold) `key`.
    fn block_for(&self, key: (f64, &[u8])) -> usize {
        self.lasts.partition_point(|(s, m)| cmp((*s, m), key) == Ordering::Less)
    }

    /// Rank of the first entry for which `less` is false (entries are partitioned by it).
    pub fn partition_point(&self, less: impl Fn(f64, &[u8]) -> bool) -> usize {
        let b = self.lasts.partition_point(|(s, m)| less(*s, m));
        if b == self.blocks.len() {
            return self.len;
        }
        self.prefix(b) + self.blocks[b].partition_point(|(s, m)| less(*s, m))
    }

    pub fn get(&self, rank: usize) -> (&[u8], f64) {
        let (b, i) = self.locate(rank);
        let (s, m) = &self.blocks[b][i];
        (m, *s)
    }

    fn insert(&mut self, score: f64, member: SmallBytes) {
        if self.blocks.is_empty() {
            self.lasts.push((score, member.clone()));
            self.blocks.push(vec![(score, member)]);
            self.len = 1;
            self.rebuild();
            return;
        }
        let key = (score, member.as_slice());
        let mut b = self.block_for(key);
        if b == self.blocks.len() {
            b -= 1;
        }
        let blk = &mut self.blocks[b];
        let pos = blk.partition_point(|(s, m)| cmp((*s, m), key) == Ordering::Less);
        let at_end = pos == blk.len();
        blk.insert(pos, (score, member));
        self.len += 1;
        if blk.len() > BLOCK {
            let tail = blk.split_off(BLOCK / 2);
            self.blocks.insert(b + 1, tail);
            self.lasts.insert(b + 1, (0.0, SmallBytes::EMPTY));
            self.refresh_last(b);
            self.refresh_last(b + 1);
            self.rebuild();
        } else {
            if at_end {
                self.refresh_last(b);
            }
            self.add(b, 1);
        }
    }

    fn remove(&mut self, score: f64, member: &[u8]) -> bool {
        let key = (score, member);
        let b = self.block_for(key);
        let Some(blk) = self.blocks.get_mut(b) else { return false };
        let Ok(pos) = blk.binary_search_by(|(s, m)| cmp((*s, m), key)) else { return false };
        blk.remove(pos);
        let was_last = pos == blk.len();
        self.len -= 1;
        if blk.is_empty() {
            self.blocks.remove(b);
            self.lasts.remove(b);
            self.rebuild();
        } else {
            if was_last {
                self.refresh_last(b);
            }
            self.add(b, -1);
        }
        true
    }

    /// Visits ranks `from..to` in order, or in reverse order with `rev`.
    fn visit(&self, from: usize, to: usize, rev: bool, f: &mut dyn FnMut(&[u8], f64)) {
        if from >= to {
            return;
        }
        if !rev {
            let (mut b, mut i) = self.locate(from);
            for _ in from..to {
                let (s, m) = &self.blocks[b][i];
                f(m, *s);
                i += 1;
                if i == self.blocks[b].len() {
                    b += 1;
                    i = 0;
                }
            }
        } else {
            let (mut b, mut i) = self.locate(to - 1);
            for n in (from..to).rev() {
                let (s, m) = &self.blocks[b][i];
                f(m, *s);
                if n > from {
                    if i == 0 {
                        b -= 1;
                        i = self.blocks[b].len() - 1;
                    } else {
                        i -= 1;
                    }
                }
            }
        }
    }
}

pub struct ZTree {
    dict: Dict<ZEntry>,
    index: OrderIndex,
}

pub enum ZSet {
    /// member, score (8 bytes, little-endian f64), member, score, ... in order.
    Pack(Pack),
    Tree(Box<ZTree>),
}

impl Clone for ZSet {
    fn clone(&self) -> ZSet {
        match self {
            ZSet::Pack(p) => ZSet::Pack(p.clone()),
            ZSet::Tree(t) => {
                let mut dict = Dict::new(rand::random());
                t.dict.iter().for_each(|e| {
                    dict.insert(ZEntry { next: 0, member: e.member.clone(), score: e.score });
                });
                ZSet::Tree(Box::new(ZTree { dict, index: t.index.clone() }))
            }
        }
    }
}

impl std::fmt::Debug for ZSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ZSet({}, {} members)", self.encoding(), self.len())
    }
}

impl Default for ZSet {
    fn default() -> Self {
        ZSet::Pack(Pack::new())
    }
}

/// A score as a pack stores it: an integral score that fits (the common case: counters,
/// timestamps, ranks) as its decimal digits, anything else as the 8 bytes of the double.
/// Eight bytes always means a double, so integers of exactly 8 digits are stored as doubles.
fn encode_score(score: f64, buf: &mut itoa::Buffer) -> Either<'_> {
    let integral =
        score.fract() == 0.0 && score.abs() < (1u64 << 53) as f64 && !(score == 0.0 && score.is_sign_negative());
    if integral {
        let text = buf.format(score as i64);
        if text.len() != 8 {
            return Either::Text(text.as_bytes());
        }
    }
    Either::Raw(score.to_le_bytes())
}

enum Either<'a> {
    Text(&'a [u8]),
    Raw([u8; 8]),
}

impl Either<'_> {
    fn bytes(&self) -> &[u8] {
        match self {
            Either::Text(t) => t,
            Either::Raw(r) => r,
        }
    }
}

#[inline]
fn score_of(b: &[u8]) -> f64 {
    if b.len() == 8 {
        return f64::from_le_bytes(b.try_into().expect("8-byte score"));
    }
    shoal_proto::request::parse_i64(b).expect("an integral score") as f64
}

/// A read-only ordered view over either form, addressed by rank.
pub enum Ordered<'a> {
    Small(Vec<(&'a [u8], f64)>),
    Tree(&'a OrderIndex),
}

impl Ordered<'_> {
    pub fn len(&self) -> usize {
        match self {
            Ordered::Small(v) => v.len(),
            Ordered::Tree(t) => t.len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, rank: usize) -> (&[u8], f64) {
        match self {
            Ordered::Small(v) => v[rank],
            Ordered::Tree(t) => t.get(rank),
        }
    }

    /// Rank of the first entry for which `less` is false.
    pub fn partition_point(&self, less: impl Fn(f64, &[u8]) -> bool) -> usize {
        match self {
            Ordered::Small(v) => v.partition_point(|(m, s)| less(*s, m)),
            Ordered::Tree(t) => t.partition_point(less),
        }
    }

    /// Visits ranks `from..to`, in reverse with `rev`.
    pub fn visit(&self, from: usize, to: usize, rev: bool, mut f: impl FnMut(&[u8], f64)) {
        match self {
            Ordered::Small(v) => {
                let slice = &v[from.min(to)..to];
                if rev {
                    slice.iter().rev().for_each(|(m, s)| f(m, *s));
                } else {
                    slice.iter().for_each(|(m, s)| f(m, *s));
                }
            }
            Ordered::Tree(t) => t.visit(from, to, rev, &mut f),
        }
    }
}

impl ZSet {
    /// An empty set in the form Redis would pick for `n` members of at most `maxlen` bytes.
    pub fn with_hint(n: usize, maxlen: usize, enc: &Encodings) -> ZSet {
        if n > enc.zset_entries || maxlen > enc.zset_value {
            ZSet::Tree(Box::new(ZTree { dict: Dict::new(rand::random()), index: OrderIndex::default() }))
        } else {
            ZSet::default()
        }
    }

    pub fn len(&self) -> usize {
        match self {
            ZSet::Pack(p) => p.len() / 2,
            ZSet::Tree(t) => t.dict.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn encoding(&self) -> &'static str {
        match self {
            ZSet::Pack(_) => "listpack",
            ZSet::Tree(_) => "skiplist",
        }
    }

    pub fn ordered(&self) -> Ordered<'_> {
        self.ordered_while(|_| true)
    }

    /// As `ordered`, but a small set is decoded only while `keep` holds for its scores, in
    /// ascending order: a range up to a score needs nothing past it, and decoding the whole
    /// set for a range at its head (a rate limiter trimming old entries) is most of the work.
    pub fn ordered_while(&self, keep: impl Fn(f64) -> bool) -> Ordered<'_> {
        match self {
            ZSet::Pack(p) => {
                let mut v = Vec::with_capacity(p.len() / 2);
                let mut it = p.iter();
                while let (Some(m), Some(s)) = (it.next(), it.next()) {
                    let score = score_of(s);
                    if !keep(score) {
                        break;
                    }
                    v.push((m, score));
                }
                Ordered::Small(v)
            }
            ZSet::Tree(t) => Ordered::Tree(&t.index),
        }
    }

    pub fn score(&self, member: &[u8]) -> Option<f64> {
        match self {
            ZSet::Pack(p) => {
                let mut it = p.iter();
                while let (Some(m), Some(s)) = (it.next(), it.next()) {
                    if m == member {
                        return Some(score_of(s));
                    }
                }
                None
            }
            ZSet::Tree(t) => t.dict.find_no_step(member).map(|id| t.dict.entry(id).score),
        }
    }

    /// The 0-based rank of a member in ascending order.
    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        let score = self.score(member)?;
        let key = (score, member);
        Some(self.ordered().partition_point(|s, m| cmp((s, m), key) == Ordering::Less))
    }

    /// Looks a member up once and, if `decide` (given its current score) answers a new score,
    /// sets it. The hot path of ZADD and ZINCRBY on large sets: one hash lookup, not two.
    pub fn upsert(&mut self, member: &[u8], enc: &Encodings, decide: impl FnOnce(Option<f64>) -> Option<f64>) {
        if let ZSet::Tree(t) = self {
            match t.dict.find(member) {
                Some(id) => {
                    let e = t.dict.entry_mut(id);
                    let cur = e.score;
                    if let Some(new) = decide(Some(cur)) {
                        if new != cur {
                            e.score = new;
                            let m = e.member.clone();
                            t.index.remove(cur, &m);
                            t.index.insert(new, m);
                        }
                    }
                }
                None => {
                    if let Some(new) = decide(None) {
                        let m = SmallBytes::new(member);
                        t.dict.insert(ZEntry { next: 0, member: m.clone(), score: new });
                        t.index.insert(new, m);
                    }
                }
            }
            return;
        }
        if let Some(new) = decide(self.score(member)) {
            self.insert(member, new, enc);
        }
    }

    /// Sets a member's score, adding the member if absent.
    pub fn insert(&mut self, member: &[u8], score: f64, enc: &Encodings) {
        if let ZSet::Pack(p) = self {
            // Remove the old pair, then insert in order.
            let mut old = None;
            let mut it = p.elements();
            while let (Some(m), Some(s)) = (it.next(), it.next()) {
                if m.data == member {
                    old = Some(m.span.0..s.span.1);
                    break;
                }
            }
            let growing = old.is_none();
            if let Some(r) = old {
                p.remove(r, 2);
            }
            if member.len() > enc.zset_value || (growing && p.len() / 2 >= enc.zset_entries) {
                self.convert();
            } else {
                let key = (score, member);
                let mut pos = p.end();
                let mut it = p.elements();
                while let (Some(m), Some(s)) = (it.next(), it.next()) {
                    if cmp((score_of(s.data), m.data), key) == Ordering::Greater {
                        pos = m.span.0;
                        break;
                    }
                }
                let mut buf = itoa::Buffer::new();
                let enc = encode_score(score, &mut buf);
                p.splice(pos..pos, 0, &[member, enc.bytes()]);
                return;
            }
        }
        let ZSet::Tree(t) = self else { unreachable!("converted above") };
        match t.dict.find(member) {
            Some(id) => {
                let e = t.dict.entry_mut(id);
                let old = std::mem::replace(&mut e.score, score);
                let m = e.member.clone();
                if old != score {
                    t.index.remove(old, &m);
                    t.index.insert(score, m);
                }
            }
            None => {
                let m = SmallBytes::new(member);
                t.dict.insert(ZEntry { next: 0, member: m.clone(), score });
                t.index.insert(score, m);
            }
        }
    }

    /// Removes a member; true if it was there.
    pub fn remove(&mut self, member: &[u8]) -> bool {
        match self {
            ZSet::Pack(p) => {
                let mut it = p.elements();
                while let (Some(m), Some(s)) = (it.next(), it.next()) {
                    if m.data == member {
                        let r = m.span.0..s.span.1;
                        p.remove(r, 2);
                        return true;
                    }
                }
                false
            }
            ZSet::Tree(t) => match t.dict.remove(member) {
                Some(e) => {
                    t.index.remove(e.score, member);
                    true
                }
                None => false,
            },
        }
    }

    fn convert(&mut self) {
        let ZSet::Pack(p) = self else { return };
        let mut t = ZTree { dict: Dict::new(rand::random()), index: OrderIndex::default() };
        let mut it = p.iter();
        while let (Some(m), Some(s)) = (it.next(), it.next()) {
            let m = SmallBytes::new(m);
            let score = score_of(s);
            t.dict.insert(ZEntry { next: 0, member: m.clone(), score });
            t.index.insert(score, m);
        }
        drop(it);
        *self = ZSet::Tree(Box::new(t));
    }

    /// Members of ranks `from..to` (ascending ranks), owned, for removal by range.
    pub fn members_in(&self, from: usize, to: usize) -> Vec<Vec<u8>> {
        let mut v = Vec::with_capacity(to.saturating_sub(from));
        self.ordered().visit(from, to, false, |m, _| v.push(m.to_vec()));
        v
    }

    /// One ZSCAN step; a small set returns everything with cursor 0, as Redis does.
    pub fn scan(&self, cursor: u64, mut f: impl FnMut(&[u8], f64)) -> u64 {
        match self {
            ZSet::Pack(_) => {
                let o = self.ordered();
                o.visit(0, o.len(), false, f);
                0
            }
            ZSet::Tree(t) => t.dict.scan(cursor, |e| f(&e.member, e.score)),
        }
    }

    pub fn heap_size(&self) -> usize {
        match self {
            ZSet::Pack(p) => p.byte_size(),
            ZSet::Tree(t) => {
                let mut n = t.dict.overhead_bytes() + std::mem::size_of::<ZTree>();
                n += t.index.blocks.iter().map(|b| b.capacity() * 32).sum::<usize>();
                t.dict.iter().for_each(|e| n += 2 * e.member.heap_size());
                n
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn enc() -> Encodings {
        Encodings::default()
    }

    #[test]
    fn packed_scores_round_trip_exactly() {
        for score in [
            0.0,
            -0.0,
            1.0,
            -7.0,
            12345678.0,
            -1234567.0,
            0.5,
            1e300,
            f64::INFINITY,
            f64::NEG_INFINITY,
            9007199254740993.0,
        ] {
            let mut z = ZSet::default();
            z.insert(b"m", score, &enc());
            let got = z.score(b"m").unwrap();
            assert_eq!(got.to_bits(), score.to_bits(), "{score}");
        }
    }

    #[test]
    fn both_forms_agree_with_a_sorted_model_through_random_updates() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let small = Encodings { zset_entries: usize::MAX, ..enc() };
        let big = Encodings { zset_entries: 0, ..enc() };
        let mut a = ZSet::default();
        let mut b = ZSet::default();
        let mut model: std::collections::BTreeMap<Vec<u8>, f64> = Default::default();
        for step in 0..20_000 {
            let m = format!("m{}", rng.gen_range(0..600)).into_bytes();
            if rng.gen_bool(0.3) {
                let had = model.remove(&m).is_some();
                assert_eq!(a.remove(&m), had);
                assert_eq!(b.remove(&m), had);
            } else {
                let s = rng.gen_range(-50..50) as f64;
                a.insert(&m, s, &small);
                b.insert(&m, s, &big);
                model.insert(m, s);
            }
            if step % 997 == 0 || step == 19_999 {
                let mut sorted: Vec<(f64, Vec<u8>)> = model.iter().map(|(m, s)| (*s, m.clone())).collect();
                sorted.sort_by(|x, y| cmp((x.0, &x.1), (y.0, &y.1)));
                for z in [&a, &b] {
                    let o = z.ordered();
                    assert_eq!(o.len(), sorted.len());
                    let mut got = Vec::new();
                    o.visit(0, o.len(), false, |m, s| got.push((s, m.to_vec())));
                    assert_eq!(got, sorted);
                    let mut rev = Vec::new();
                    o.visit(0, o.len(), true, |m, s| rev.push((s, m.to_vec())));
                    rev.reverse();
                    assert_eq!(rev, sorted);
                    for (i, (s, m)) in sorted.iter().enumerate().step_by(37) {
                        assert_eq!(z.rank(m), Some(i));
                        assert_eq!(o.get(i), (m.as_slice(), *s));
                    }
                }
            }
        }
        assert!(matches!(b, ZSet::Tree(_)));
        assert!(matches!(a, ZSet::Pack(_)));
    }
}
