//! Geo commands over sorted sets of geohash scores: GEOADD GEOPOS GEODIST GEOHASH GEOSEARCH
//! GEOSEARCHSTORE GEORADIUS GEORADIUSBYMEMBER (and the _RO forms), with Redis 7.0's
//! argument handling, errors, precision and reply shapes.
//!
//! Searches test every member of the set against the exact shape (Redis first narrows the
//! candidates to the geohash cells around the shape, then applies the same exact test), so
//! results are the same points; unsorted results come in score order.

use super::args::{self, is};
use super::exec::{Exec, NOT_FLOAT, SYNTAX};
use super::zsets;
use crate::shard::types::zset::ZSet;
use crate::shard::value::{Kind, Value};
use crate::util::float::human_double;
use crate::util::geohash;
use bytes::{Bytes, BytesMut};
use shoal_proto::{reply, Protocol, Request};

/// Metres per unit, or an error reply.
fn unit(ctx: &mut Exec<'_, '_>, a: &[u8]) -> Option<f64> {
    let m = if is(a, "M") {
        1.0
    } else if is(a, "KM") {
        1000.0
    } else if is(a, "FT") {
        0.3048
    } else if is(a, "MI") {
        1609.34
    } else {
        ctx.err("ERR unsupported unit provided. please use M, KM, FT, MI");
        return None;
    };
    Some(m)
}

/// A longitude, latitude pair (Redis's `extractLongLatOrReply`).
fn lon_lat(ctx: &mut Exec<'_, '_>, lon: &[u8], lat: &[u8]) -> Option<(f64, f64)> {
    let (Some(x), Some(y)) = (args::double(lon), args::double(lat)) else {
        ctx.err(NOT_FLOAT);
        return None;
    };
    if !geohash::valid(x, y) {
        ctx.err(&format!("ERR invalid longitude,latitude pair {x:.6},{y:.6}"));
        return None;
    }
    Some((x, y))
}

fn write_coord(out: &mut BytesMut, proto: Protocol, v: f64) {
    let text = human_double(v);
    if proto.is_resp3() {
        out.extend_from_slice(b",");
        out.extend_from_slice(text.as_bytes());
        out.extend_from_slice(b"\r\n");
    } else {
        reply::bulk(out, text.as_bytes());
    }
}

fn write_distance(out: &mut BytesMut, d: f64) {
    reply::bulk(out, format!("{d:.4}").as_bytes());
}

pub fn geoadd(ctx: &mut Exec<'_, '_>, req: &Request) {
    let mut at = 2;
    let (mut nx, mut xx) = (false, false);
    while at < req.len() {
        let a = req.arg(at);
        if is(a, "NX") {
            nx = true;
        } else if is(a, "XX") {
            xx = true;
        } else if !is(a, "CH") {
            break;
        }
        at += 1;
    }
    if !(req.len() - at).is_multiple_of(3) || (xx && nx) {
        return ctx.err(SYNTAX);
    }
    let mut args: Vec<Bytes> = vec![Bytes::from_static(b"ZADD")];
    args.extend((1..at).map(|i| req.arg_bytes(i)));
    for i in (at..req.len()).step_by(3) {
        let Some((lon, lat)) = lon_lat(ctx, req.arg(i), req.arg(i + 1)) else { return };
        args.push(Bytes::from(geohash::encode(lon, lat).to_string()));
        args.push(req.arg_bytes(i + 2));
    }
    zsets::zadd(ctx, &Request::from_args(args.iter()));
}

/// The zset at `key` for a geo read, or None (missing) / Err (WRONGTYPE, replied).
fn geo_set(ctx: &mut Exec<'_, '_>, key: &[u8]) -> Result<Option<crate::cmd::exec::Loc>, ()> {
    ctx.read_typed(key, Kind::ZSet).map_err(|_| ())
}

fn zset_of<'c>(ctx: &'c Exec<'_, '_>, loc: crate::cmd::exec::Loc) -> &'c ZSet {
    match ctx.value(loc) {
        Value::ZSet(z) => z,
        _ => unreachable!("type checked"),
    }
}

pub fn geopos(ctx: &mut Exec<'_, '_>, req: &Request) {
    let Ok(found) = geo_set(ctx, req.arg(1)) else { return };
    let proto = ctx.proto;
    let scores: Vec<Option<f64>> =
        (2..req.len()).map(|i| found.and_then(|loc| zset_of(ctx, loc).score(req.arg(i)))).collect();
    reply::array_len(ctx.out, scores.len());
    for s in scores {
        match s {
            Some(score) => {
                let (lon, lat) = geohash::decode(score as u64);
                reply::array_len(ctx.out, 2);
                write_coord(ctx.out, proto, lon);
                write_coord(ctx.out, proto, lat);
            }
            None => reply::null_array(ctx.out, proto),
        }
    }
}

pub fn geodist(ctx: &mut Exec<'_, '_>, req: &Request) {
    let to_meter = match req.len() {
        5 => match unit(ctx, req.arg(4)) {
            Some(u) => u,
            None => return,
        },
        4 => 1.0,
        _ => return ctx.err(SYNTAX),
    };
    let Ok(found) = geo_set(ctx, req.arg(1)) else { return };
    let Some(loc) = found else { return reply::null(ctx.out, ctx.proto) };
    let z = zset_of(ctx, loc);
    let (Some(a), Some(b)) = (z.score(req.arg(2)), z.score(req.arg(3))) else {
        return reply::null(ctx.out, ctx.proto);
    };
    let (x1, y1) = geohash::decode(a as u64);
    let (x2, y2) = geohash::decode(b as u64);
    write_distance(ctx.out, geohash::distance(x1, y1, x2, y2) / to_meter);
}

pub fn geohash_cmd(ctx: &mut Exec<'_, '_>, req: &Request) {
    let Ok(found) = geo_set(ctx, req.arg(1)) else { return };
    let hashes: Vec<Option<String>> = (2..req.len())
        .map(|i| found.and_then(|loc| zset_of(ctx, loc).score(req.arg(i))).map(|s| geohash::to_string(s as u64)))
        .collect();
    reply::array_len(ctx.out, hashes.len());
    for h in hashes {
        match h {
            Some(h) => reply::bulk(ctx.out, h.as_bytes()),
            None => reply::null(ctx.out, ctx.proto),
        }
    }
}

#[derive(Clone, Copy)]
enum Shape {
    Radius(f64),
    Box(f64, f64),
}

/// Which command is parsing (Redis's flags).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Form {
    Radius { by_member: bool, store_ok: bool },
    Search { store: bool },
}

struct Point {
    member: Vec<u8>,
    score: f64,
    dist: f64,
    lon: f64,
    lat: f64,
}

/// Redis's `georadiusGeneric`.
fn search(ctx: &mut Exec<'_, '_>, req: &Request, form: Form) {
    let src_at = if matches!(form, Form::Search { store: true }) { 2 } else { 1 };
    let Ok(found) = geo_set(ctx, req.arg(src_at)) else { return };
    let mut center: Option<(f64, f64)> = None;
    let mut shape: Option<Shape> = None;
    let mut conversion = 1.0;
    let base = match form {
        Form::Radius { by_member, .. } => {
            let base = if by_member { 5 } else { 6 };
            if !by_member {
                let Some(c) = lon_lat(ctx, req.arg(2), req.arg(3)) else { return };
                center = Some(c);
            } else if let Some(loc) = found {
                match zset_of(ctx, loc).score(req.arg(2)) {
                    Some(s) => center = Some(geohash::decode(s as u64)),
                    None => return ctx.err("ERR could not decode requested zset member"),
                }
            }
            if !by_member || found.is_some() {
                let Some(r) = args::double(req.arg(base - 2)) else { return ctx.err("ERR need numeric radius") };
                if r < 0.0 {
                    return ctx.err("ERR radius cannot be negative");
                }
                let Some(u) = unit(ctx, req.arg(base - 1)) else { return };
                conversion = u;
                shape = Some(Shape::Radius(r * u));
            }
            base
        }
        Form::Search { store } => {
            if store {
                3
            } else {
                2
            }
        }
    };
    let store_key = match form {
        Form::Search { store: true } => Some(req.arg(1)),
        _ => None,
    };
    let mut store_key = store_key;
    let (mut withdist, mut withhash, mut withcoord, mut any) = (false, false, false, false);
    let (mut storedist, mut frommember, mut fromloc, mut byradius, mut bybox) = (false, false, false, false, false);
    let mut sort: Option<bool> = None;
    let mut count: i64 = 0;
    let search = matches!(form, Form::Search { .. });
    let store_ok = matches!(form, Form::Radius { store_ok: true, .. });
    let remaining = req.len() - base;
    let mut i = 0;
    while i < remaining {
        let a = req.arg(base + i);
        let arg = |k: usize| req.arg(base + i + k);
        if is(a, "WITHDIST") {
            withdist = true;
        } else if is(a, "WITHHASH") {
            withhash = true;
        } else if is(a, "WITHCOORD") {
            withcoord = true;
        } else if is(a, "ANY") {
            any = true;
        } else if is(a, "ASC") {
            sort = Some(true);
        } else if is(a, "DESC") {
            sort = Some(false);
        } else if is(a, "COUNT") && i + 1 < remaining {
            let Some(c) = args::int(arg(1)) else { return ctx.err(super::exec::NOT_INTEGER) };
            if c <= 0 {
                return ctx.err("ERR COUNT must be > 0");
            }
            count = c;
            i += 1;
        } else if (is(a, "STORE") || is(a, "STOREDIST")) && i + 1 < remaining && store_ok && !search {
            store_key = Some(arg(1));
            storedist = is(a, "STOREDIST");
            i += 1;
        } else if is(a, "STOREDIST") && matches!(form, Form::Search { store: true }) {
            storedist = true;
        } else if is(a, "FROMMEMBER") && i + 1 < remaining && search && !fromloc {
            if let Some(loc) = found {
                match zset_of(ctx, loc).score(arg(1)) {
                    Some(s) => center = Some(geohash::decode(s as u64)),
                    None => return ctx.err("ERR could not decode requested zset member"),
                }
            }
            frommember = true;
            i += 1;
        } else if is(a, "FROMLONLAT") && i + 2 < remaining && search && !frommember {
            let Some(c) = lon_lat(ctx, arg(1), arg(2)) else { return };
            center = Some(c);
            fromloc = true;
            i += 2;
        } else if is(a, "BYRADIUS") && i + 2 < remaining && search && !bybox {
            let Some(r) = args::double(arg(1)) else { return ctx.err("ERR need numeric radius") };
            if r < 0.0 {
                return ctx.err("ERR radius cannot be negative");
            }
            let Some(u) = unit(ctx, arg(2)) else { return };
            conversion = u;
            shape = Some(Shape::Radius(r * u));
            byradius = true;
            i += 2;
        } else if is(a, "BYBOX") && i + 3 < remaining && search && !byradius {
            let Some(w) = args::double(arg(1)) else { return ctx.err("ERR need numeric width") };
            let Some(h) = args::double(arg(2)) else { return ctx.err("ERR need numeric height") };
            if w < 0.0 || h < 0.0 {
                return ctx.err("ERR height or width cannot be negative");
            }
            let Some(u) = unit(ctx, arg(3)) else { return };
            conversion = u;
            shape = Some(Shape::Box(w * u, h * u));
            bybox = true;
            i += 3;
        } else {
            return ctx.err(SYNTAX);
        }
        i += 1;
    }
    let name = String::from_utf8_lossy(req.arg(0)).into_owned();
    if store_key.is_some() && (withdist || withhash || withcoord) {
        let who =
            if matches!(form, Form::Search { store: true }) { "GEOSEARCHSTORE" } else { "STORE option in GEORADIUS" };
        return ctx.err(&format!("ERR {who} is not compatible with WITHDIST, WITHHASH and WITHCOORD options"));
    }
    if search && !(frommember || fromloc) {
        return ctx.err(&format!("ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for {name}"));
    }
    if search && !(byradius || bybox) {
        return ctx.err(&format!("ERR exactly one of BYRADIUS and BYBOX can be specified for {name}"));
    }
    if any && count == 0 {
        return ctx.err("ERR the ANY argument requires COUNT argument");
    }
    let Some(loc) = found else {
        if let Some(dst) = store_key {
            if ctx.lookup(dst).is_some() {
                ctx.delete(dst);
                ctx.emit(dst, || crate::argv!["DEL", dst]);
            }
            return reply::integer(ctx.out, 0);
        }
        return reply::array_len(ctx.out, 0);
    };
    if count != 0 && sort.is_none() && !any {
        sort = Some(true);
    }
    let (cx, cy) = center.expect("set by the parse above");
    let shape = shape.expect("set by the parse above");
    let mut points: Vec<Point> = Vec::new();
    {
        let o = zset_of(ctx, loc).ordered();
        o.visit(0, o.len(), false, |m, score| {
            if any && points.len() as i64 >= count {
                return;
            }
            let (x, y) = geohash::decode(score as u64);
            let dist = match shape {
                Shape::Radius(r) => {
                    let d = geohash::distance(cx, cy, x, y);
                    if d > r {
                        return;
                    }
                    d
                }
                Shape::Box(w, h) => {
                    if geohash::lat_distance(y, cy) > h / 2.0 || geohash::distance(x, y, cx, y) > w / 2.0 {
                        return;
                    }
                    geohash::distance(cx, cy, x, y)
                }
            };
            points.push(Point { member: m.to_vec(), score, dist, lon: x, lat: y });
        });
    }
    if let Some(asc) = sort {
        points.sort_by(|a, b| {
            let c = a.dist.partial_cmp(&b.dist).unwrap_or(std::cmp::Ordering::Equal);
            if asc {
                c
            } else {
                c.reverse()
            }
        });
    }
    if count > 0 && points.len() as i64 > count {
        points.truncate(count as usize);
    }
    for p in points.iter_mut() {
        p.dist /= conversion;
    }
    if let Some(dst) = store_key {
        let items: Vec<(Vec<u8>, f64)> =
            points.iter().map(|p| (p.member.clone(), if storedist { p.dist } else { p.score })).collect();
        zsets::store_scored(ctx, dst, &items);
        return reply::integer(ctx.out, items.len() as i64);
    }
    let proto = ctx.proto;
    let extra = withdist as usize + withhash as usize + withcoord as usize;
    reply::array_len(ctx.out, points.len());
    for p in &points {
        if extra > 0 {
            reply::array_len(ctx.out, extra + 1);
        }
        reply::bulk(ctx.out, &p.member);
        if withdist {
            write_distance(ctx.out, p.dist);
        }
        if withhash {
            reply::integer(ctx.out, p.score as i64);
        }
        if withcoord {
            reply::array_len(ctx.out, 2);
            write_coord(ctx.out, proto, p.lon);
            write_coord(ctx.out, proto, p.lat);
        }
    }
}

pub fn georadius(ctx: &mut Exec<'_, '_>, req: &Request) {
    search(ctx, req, Form::Radius { by_member: false, store_ok: true })
}
pub fn georadius_ro(ctx: &mut Exec<'_, '_>, req: &Request) {
    search(ctx, req, Form::Radius { by_member: false, store_ok: false })
}
pub fn georadiusbymember(ctx: &mut Exec<'_, '_>, req: &Request) {
    search(ctx, req, Form::Radius { by_member: true, store_ok: true })
}
pub fn georadiusbymember_ro(ctx: &mut Exec<'_, '_>, req: &Request) {
    search(ctx, req, Form::Radius { by_member: true, store_ok: false })
}
pub fn geosearch(ctx: &mut Exec<'_, '_>, req: &Request) {
    search(ctx, req, Form::Search { store: false })
}
pub fn geosearchstore(ctx: &mut Exec<'_, '_>, req: &Request) {
    search(ctx, req, Form::Search { store: true })
}

/// GEORADIUS ... STORE's keys: the source and the STORE/STOREDIST destination.
pub fn radius_keys(req: &Request) -> Vec<usize> {
    let mut k = vec![1];
    for i in 2..req.len().saturating_sub(1) {
        if is(req.arg(i), "STORE") || is(req.arg(i), "STOREDIST") {
            k.push(i + 1);
        }
    }
    k
}
