//! Key specifications: which arguments of a request are keys, and how the command uses each
//! (read, overwrite, insert, delete). Redis 7's model, evaluated as Redis evaluates it, so ACL
//! read/write key patterns and COMMAND GETKEYSANDFLAGS answer exactly as Redis does.

use super::table::CommandSpec;
use shoal_proto::Request;

/// Key-spec flags, with Redis's names and order (COMMAND INFO prints them in this order).
pub mod flags {
    /// Read only.
    pub const RO: u16 = 1 << 0;
    /// Read and write.
    pub const RW: u16 = 1 << 1;
    /// Overwrite: the old value is not read.
    pub const OW: u16 = 1 << 2;
    /// Remove.
    pub const RM: u16 = 1 << 3;
    /// The value is read, returned or used (needs read permission).
    pub const ACCESS: u16 = 1 << 4;
    /// The value is changed (needs write permission), as are the next two.
    pub const UPDATE: u16 = 1 << 5;
    pub const INSERT: u16 = 1 << 6;
    pub const DELETE: u16 = 1 << 7;
    /// Not a key, though it hashes like one (a SHARD channel).
    pub const NOT_KEY: u16 = 1 << 8;
    /// The spec may miss keys; a command-specific finder knows them.
    pub const INCOMPLETE: u16 = 1 << 9;
    /// The flags depend on other arguments; a command-specific finder gives them.
    pub const VARIABLE_FLAGS: u16 = 1 << 10;

    pub const NAMES: [(u16, &str); 11] = [
        (RO, "RO"),
        (RW, "RW"),
        (OW, "OW"),
        (RM, "RM"),
        (ACCESS, "access"),
        (UPDATE, "update"),
        (INSERT, "insert"),
        (DELETE, "delete"),
        (NOT_KEY, "not_key"),
        (INCOMPLETE, "incomplete"),
        (VARIABLE_FLAGS, "variable_flags"),
    ];

    /// Whether a key with these flags needs read permission.
    #[inline]
    pub fn reads(f: u16) -> bool {
        f & ACCESS != 0
    }

    /// Whether a key with these flags needs write permission.
    #[inline]
    pub fn writes(f: u16) -> bool {
        f & (UPDATE | INSERT | DELETE) != 0
    }
}

/// Where the search for a spec's first key starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Begin {
    /// At this argument.
    Index(i32),
    /// After this keyword, searched from `startfrom` (counting from the end when negative).
    Keyword(&'static str, i32),
    Unknown,
}

/// How many keys follow the first one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Find {
    /// Up to `lastkey` (relative to the first key; negative counts from the end), every
    /// `keystep`; with `limit`, only the first 1/limit of what remains.
    Range {
        lastkey: i32,
        keystep: i32,
        limit: i32,
    },
    /// A count at `keynumidx` (relative to the first key), the keys from `firstkey` after it.
    Keynum {
        keynumidx: i32,
        firstkey: i32,
        keystep: i32,
    },
    Unknown,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeySpec {
    pub flags: u16,
    pub begin: Begin,
    pub find: Find,
    pub notes: &'static str,
}

impl KeySpec {
    /// The one spec a command without Redis's specs gets from its first/last/step range.
    pub fn from_range(first: i32, last: i32, step: i32, write: bool) -> KeySpec {
        let flags = if write { flags::RW | flags::ACCESS | flags::UPDATE } else { flags::RO | flags::ACCESS };
        let lastkey = if last < 0 { last } else { last - first };
        KeySpec { flags, begin: Begin::Index(first), find: Find::Range { lastkey, keystep: step, limit: 0 }, notes: "" }
    }

    /// Appends the keys this spec finds in `args`; None when the request does not fit the
    /// spec (a bad count, keys past the end), which makes the whole request keyless.
    fn find_keys(&self, req: &Request, out: &mut Vec<KeyRef>) -> Option<()> {
        let argc = req.len() as i64;
        let mut first: i64 = match self.begin {
            Begin::Index(i) => i as i64,
            Begin::Keyword(word, from) => {
                let from = from as i64;
                let is_word = |&i: &i64| req.arg(i as usize).eq_ignore_ascii_case(word.as_bytes());
                // Redis's bounds: forward to the next-to-last argument, backward to the second.
                let found =
                    if from > 0 { (from..argc - 1).find(is_word) } else { (2..=argc + from).rev().find(is_word) };
                // A keyword that is absent means this spec has no keys here.
                match found {
                    Some(i) => i + 1,
                    None => return Some(()),
                }
            }
            Begin::Unknown => return None,
        };
        let (last, step) = match self.find {
            Find::Range { lastkey, keystep, limit } => {
                let last = if lastkey >= 0 {
                    first + lastkey as i64
                } else if limit == 0 {
                    argc + lastkey as i64
                } else {
                    first + (argc - first) / limit as i64 + lastkey as i64
                };
                (last, keystep as i64)
            }
            Find::Keynum { keynumidx, firstkey, keystep } => {
                let at = first + keynumidx as i64;
                if at >= argc {
                    return None;
                }
                let n = shoal_proto::request::parse_i64(req.arg(at as usize)).filter(|&n| n >= 0)?;
                first += firstkey as i64;
                (first + n - 1, keystep as i64)
            }
            Find::Unknown => return None,
        };
        if last >= argc || last < first || first >= argc || step <= 0 {
            return None;
        }
        let mut i = first;
        while i <= last {
            out.push(KeyRef { pos: i as usize, flags: self.flags });
            i += step;
        }
        if self.flags & flags::INCOMPLETE != 0 {
            return None;
        }
        Some(())
    }
}

/// One key argument of a request and how the command uses it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyRef {
    pub pos: usize,
    pub flags: u16,
}

/// The keys of `req` with their flags, as Redis's `getKeysFromCommandWithSpecs` finds them:
/// from the key specs when they are complete and their flags fixed, else from the command's own
/// finder. Shard channels (`NOT_KEY`) are left out.
///
/// Every key the request is routed by is in the answer, even where Redis's specs miss it
/// (`PFMERGE dest` with no sources fails its second spec, and Redis then checks no key at
/// all): such a key gets read-and-write flags, so an ACL check never lets a key through.
pub fn keys_and_flags(spec: &CommandSpec, req: &Request) -> Vec<KeyRef> {
    let (mut out, channels) = match from_specs(spec, req) {
        Some(found) => found,
        None => {
            (spec.keys_of(req).map(|pos| KeyRef { pos, flags: finder_flags(spec, req, pos) }).collect(), Vec::new())
        }
    };
    for pos in spec.keys_of(req) {
        if !out.iter().chain(&channels).any(|k| k.pos == pos) {
            out.push(KeyRef { pos, flags: READ_WRITE });
        }
    }
    out
}

const READ_WRITE: u16 = flags::RW | flags::ACCESS | flags::UPDATE;

/// What the key specs alone find: the keys, and the shard channels. None when the specs cannot
/// answer: their flags vary, a spec is incomplete or unknown, or one does not fit the request
/// (which voids them all, as in Redis).
fn from_specs(spec: &CommandSpec, req: &Request) -> Option<(Vec<KeyRef>, Vec<KeyRef>)> {
    if spec.key_specs.iter().any(|s| s.flags & flags::VARIABLE_FLAGS != 0) {
        return None;
    }
    let (mut keys, mut channels) = (Vec::new(), Vec::new());
    for ks in &spec.key_specs {
        let found = if ks.flags & flags::NOT_KEY != 0 { &mut channels } else { &mut keys };
        ks.find_keys(req, found)?;
    }
    Some((keys, channels))
}

/// The flags of the key at `pos` as Redis's command-specific finders give them, for the
/// commands whose specs cannot: SET's and BITFIELD's depend on their arguments, SORT's
/// BY/GET/STORE keys are found by parsing. Any other finder's key counts as read and written.
fn finder_flags(spec: &CommandSpec, req: &Request, pos: usize) -> u16 {
    use flags::*;
    match spec.full_name.as_str() {
        // SET ... GET returns the old value.
        "set" if req.args().skip(3).any(|a| a.eq_ignore_ascii_case(b"get")) => READ_WRITE,
        "set" => OW | UPDATE,
        // BITFIELD with only GET (and OVERFLOW) reads; anything else, a syntax error included,
        // counts as a write.
        "bitfield" => {
            let argc = req.len();
            let mut i = 2;
            while i < argc {
                let rest = argc - i - 1;
                let a = req.arg(i);
                if a.eq_ignore_ascii_case(b"get") && rest >= 2 {
                    i += 3;
                } else if a.eq_ignore_ascii_case(b"overflow") && rest >= 1 {
                    i += 2;
                } else {
                    return READ_WRITE;
                }
            }
            RO | ACCESS
        }
        // The sorted key is read; a STORE destination is overwritten.
        "sort" | "sort_ro" if pos == 1 => RO | ACCESS,
        "sort" => OW | UPDATE,
        _ => READ_WRITE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::table::table;

    fn req(line: &str) -> Request {
        Request::from_args(line.split_whitespace().map(|a| bytes::Bytes::copy_from_slice(a.as_bytes())))
    }

    fn keys(line: &str) -> Vec<(String, Vec<&'static str>)> {
        let r = req(line);
        let spec = table().resolve(&r).expect("command");
        keys_and_flags(spec, &r)
            .into_iter()
            .map(|k| {
                let names = flags::NAMES.iter().filter(|(f, _)| k.flags & f != 0).map(|(_, n)| *n).collect();
                (String::from_utf8_lossy(r.arg(k.pos)).into_owned(), names)
            })
            .collect()
    }

    #[test]
    fn sources_are_read_and_the_destination_overwritten() {
        assert_eq!(
            keys("sunionstore d a b"),
            vec![
                ("d".into(), vec!["OW", "update"]),
                ("a".into(), vec!["RO", "access"]),
                ("b".into(), vec!["RO", "access"])
            ]
        );
        assert_eq!(
            keys("zunionstore d 2 a b weights 1 2"),
            vec![
                ("d".into(), vec!["OW", "update"]),
                ("a".into(), vec!["RO", "access"]),
                ("b".into(), vec!["RO", "access"])
            ]
        );
    }

    #[test]
    fn keywords_and_limits_find_their_keys() {
        let names = |l: &str| keys(l).into_iter().map(|(k, _)| k).collect::<Vec<_>>();
        assert_eq!(names("xread count 2 streams s1 s2 0 0"), ["s1", "s2"]);
        assert_eq!(names("sort k by w:* store dst"), ["k", "dst"]);
        assert_eq!(names("georadius k 0 0 1 km store dst"), ["k", "dst"]);
        assert_eq!(names("mset a 1 b 2"), ["a", "b"]);
        assert!(names("zunionstore d 3 a b").is_empty(), "a count past the end finds no keys");
        assert!(names("zunionstore d x a b").is_empty());
    }

    #[test]
    fn set_and_bitfield_flags_follow_their_arguments() {
        assert_eq!(keys("set k v"), vec![("k".into(), vec!["OW", "update"])]);
        assert_eq!(keys("set k v get"), vec![("k".into(), vec!["RW", "access", "update"])]);
        assert_eq!(keys("bitfield k get u8 0 overflow sat"), vec![("k".into(), vec!["RO", "access"])]);
        assert_eq!(keys("bitfield k get u8 0 incrby u8 0 1"), vec![("k".into(), vec!["RW", "access", "update"])]);
    }

    /// Redis's key specs (which give the flags ACL checks) and the routing positions (which
    /// pick a shard) name the same arguments, so no key falls back to read-and-write flags.
    #[test]
    fn key_specs_and_routing_find_the_same_keys() {
        let movable = [
            "sort k by w:* get g:* store dst",
            "sort_ro k by w:*",
            "zunionstore d 2 a b weights 1 2",
            "zinterstore d 1 a",
            "zdiffstore d 2 a b",
            "zunion 2 a b withscores",
            "zinter 2 a b",
            "zdiff 2 a b",
            "zintercard 2 a b limit 1",
            "sintercard 2 a b",
            "lmpop 2 a b left count 1",
            "blmpop 0 2 a b left",
            "zmpop 2 a b min",
            "bzmpop 0 2 a b max",
            "xread count 2 streams s1 s2 0 0",
            "xreadgroup group g c count 1 streams s1 s2 > >",
            "georadius k 0 0 1 km store dst",
            "georadius k 0 0 1 km storedist dst",
            "georadiusbymember k m 1 km store dst",
            "geosearchstore d s frommember m byradius 1 km",
        ];
        let mut checked = 0;
        for spec in table().all_specs() {
            let channels_only = spec.key_specs.iter().all(|k| k.flags & flags::NOT_KEY != 0);
            if spec.keys_fn.is_some() || spec.first_key <= 0 || channels_only {
                continue;
            }
            let min = spec.arity.unsigned_abs() as usize;
            let extra = if spec.arity < 0 { 0..5 } else { 0..1 };
            for n in extra {
                let mut line = spec.full_name.replace('|', " ");
                let named = line.split(' ').count();
                for i in named..min + n {
                    line.push_str(&format!(" a{i}"));
                }
                check_same(&line);
                checked += 1;
            }
        }
        for line in movable {
            check_same(line);
        }
        assert!(checked > 200, "checked {checked} requests");
    }

    fn check_same(line: &str) {
        let r = req(line);
        let spec = table().resolve(&r).expect("command");
        let mut routed: Vec<usize> = spec.keys_of(&r).collect();
        routed.sort_unstable();
        let found = keys_and_flags(spec, &r);
        assert_eq!(found.len(), routed.len(), "{line}: every routed key is checked once");
        // Redis's finders give these their flags.
        if matches!(spec.full_name.as_str(), "set" | "bitfield" | "sort" | "sort_ro") {
            return;
        }
        let mut specified: Vec<usize> =
            from_specs(spec, &r).map(|f| f.0).unwrap_or_default().iter().map(|k| k.pos).collect();
        specified.sort_unstable();
        // Redis's specs miss a lone destination: its second spec (the sources) does not fit.
        let known = line == "pfmerge a1";
        assert!(known || routed == specified, "{line}: routing {routed:?} and key specs {specified:?} disagree");
    }
}
