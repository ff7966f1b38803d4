//! Hashes, lists, sets and sorted sets through the `redis` crate: everyday use, the error
//! cases clients meet, encodings as OBJECT ENCODING reports them, and hash field expiry.
//! (Every command is also compared with redis-server by the differential tests in
//! clients.rs.)

use redis::{Commands, RedisResult, Value};
use shoal_tests::{wait_for, Server};

const WRONGTYPE: &str = "WRONGTYPE";

fn encoding(c: &mut redis::Connection, key: &str) -> String {
    redis::cmd("OBJECT").arg("ENCODING").arg(key).query(c).unwrap()
}

fn err_code<T: std::fmt::Debug>(r: RedisResult<T>) -> String {
    let e = r.expect_err("an error");
    e.code().map(str::to_string).unwrap_or_else(|| e.to_string())
}

#[test]
fn hashes() {
    let s = Server::start_with(&["--shards", "3"]);
    let mut c = s.redis();
    let added: i64 = c.hset_multiple("h", &[("a", "1"), ("b", "2")]).map(|()| 2).unwrap();
    assert_eq!(added, 2);
    assert_eq!(c.hget::<_, _, String>("h", "a").unwrap(), "1");
    assert_eq!(c.hincr::<_, _, _, i64>("h", "a", 41).unwrap(), 42);
    assert_eq!(c.hlen::<_, i64>("h").unwrap(), 2);
    assert_eq!(encoding(&mut c, "h"), "listpack");
    let big = "x".repeat(100);
    let _: () = c.hset("h", "big", &big).unwrap();
    assert_eq!(encoding(&mut c, "h"), "hashtable", "a long value converts the hash, as in Redis");
    assert_eq!(c.hdel::<_, _, i64>("h", &["a", "b", "big", "nope"]).unwrap(), 3);
    assert!(!c.exists::<_, bool>("h").unwrap(), "the emptied hash is deleted");
    let _: () = c.set("s", "v").unwrap();
    assert!(err_code(c.hget::<_, _, Option<String>>("s", "f")).starts_with(WRONGTYPE));
    let _: () = c.hset("h2", "n", "abc").unwrap();
    let e = c.hincr::<_, _, _, i64>("h2", "n", 1).unwrap_err();
    assert!(e.to_string().contains("hash value is not an integer"), "{e}");
}

#[test]
fn hash_fields_expire() {
    let s = Server::start();
    let mut c = s.redis();
    let _: () = c.hset_multiple("h", &[("keep", "1"), ("go", "2"), ("later", "3")]).unwrap();
    let r: Vec<i64> =
        redis::cmd("HPEXPIRE").arg("h").arg(100).arg("FIELDS").arg(2).arg("go").arg("nope").query(&mut c).unwrap();
    assert_eq!(r, vec![1, -2]);
    let r: Vec<i64> = redis::cmd("HEXPIRE")
        .arg("h")
        .arg(1000)
        .arg("NX")
        .arg("FIELDS")
        .arg(2)
        .arg("go")
        .arg("later")
        .query(&mut c)
        .unwrap();
    assert_eq!(r, vec![0, 1], "NX leaves a field that already has a TTL");
    let ttl: Vec<i64> =
        redis::cmd("HTTL").arg("h").arg("FIELDS").arg(3).arg("keep").arg("later").arg("x").query(&mut c).unwrap();
    assert_eq!(ttl[0], -1);
    assert!((999..=1000).contains(&ttl[1]));
    assert_eq!(ttl[2], -2);
    let r: Vec<i64> = redis::cmd("HPERSIST").arg("h").arg("FIELDS").arg(1).arg("later").query(&mut c).unwrap();
    assert_eq!(r, vec![1]);
    wait_for("the field to expire", || c.hlen::<_, i64>("h").unwrap() == 2);
    assert_eq!(c.hget::<_, _, Option<String>>("h", "go").unwrap(), None);
    // A time in the past deletes at once; the last field gone deletes the key.
    let r: Vec<i64> =
        redis::cmd("HEXPIREAT").arg("h").arg(1).arg("FIELDS").arg(2).arg("keep").arg("later").query(&mut c).unwrap();
    assert_eq!(r, vec![2, 2]);
    assert!(!c.exists::<_, bool>("h").unwrap());
    let e: RedisResult<Vec<i64>> = redis::cmd("HEXPIRE").arg("h").arg(10).arg("FIELDS").arg(2).arg("a").query(&mut c);
    assert!(e.unwrap_err().to_string().contains("The `numfields` parameter must match the number of arguments"));
    // HSET of a field clears its TTL.
    let _: () = c.hset("h", "f", "1").unwrap();
    let _: Vec<i64> = redis::cmd("HEXPIRE").arg("h").arg(100).arg("FIELDS").arg(1).arg("f").query(&mut c).unwrap();
    let _: () = c.hset("h", "f", "2").unwrap();
    let ttl: Vec<i64> = redis::cmd("HTTL").arg("h").arg("FIELDS").arg(1).arg("f").query(&mut c).unwrap();
    assert_eq!(ttl, vec![-1]);
}

#[test]
fn lists() {
    let s = Server::start();
    let mut c = s.redis();
    assert_eq!(c.rpush::<_, _, i64>("l", &["a", "b", "c"]).unwrap(), 3);
    assert_eq!(c.lrange::<_, Vec<String>>("l", -2, -1).unwrap(), vec!["b", "c"]);
    assert_eq!(c.lindex::<_, Option<String>>("l", -1).unwrap().as_deref(), Some("c"));
    assert_eq!(encoding(&mut c, "l"), "quicklist");
    let e = redis::cmd("LSET").arg("l").arg(10).arg("x").query::<()>(&mut c).unwrap_err();
    assert!(e.to_string().contains("index out of range"));
    assert_eq!(c.lpop::<_, Vec<String>>("l", std::num::NonZeroUsize::new(5)).unwrap(), vec!["a", "b", "c"]);
    assert!(!c.exists::<_, bool>("l").unwrap());
    let v: Value = redis::cmd("LPOP").arg("l").arg(2).query(&mut c).unwrap();
    assert_eq!(v, Value::Nil, "a missing list with a count is a null array");
}

#[test]
fn sets() {
    let s = Server::start_with(&["--shards", "3"]);
    let mut c = s.redis();
    assert_eq!(c.sadd::<_, _, i64>("a", &[1, 2, 3]).unwrap(), 3);
    assert_eq!(encoding(&mut c, "a"), "intset");
    assert_eq!(c.sadd::<_, _, i64>("a", "x").unwrap(), 1);
    assert_eq!(encoding(&mut c, "a"), "hashtable");
    assert_eq!(c.sadd::<_, _, i64>("b", &["2", "x", "y"]).unwrap(), 3);
    let mut inter: Vec<String> = c.sinter(&["a", "b"]).unwrap();
    inter.sort();
    assert_eq!(inter, vec!["2", "x"]);
    // Keys "a", "b" and "dst" live in different shards of three: the store is still atomic.
    assert_eq!(c.sunionstore::<_, _, i64>("dst", &["a", "b"]).unwrap(), 5);
    assert_eq!(c.scard::<_, i64>("dst").unwrap(), 5);
    let e = redis::cmd("SINTERCARD").arg(0).arg("a").query::<i64>(&mut c).unwrap_err();
    assert!(e.to_string().contains("numkeys should be greater than 0"));
}

#[test]
fn sorted_sets() {
    let s = Server::start();
    let mut c = s.redis();
    assert_eq!(c.zadd_multiple::<_, f64, _, i64>("z", &[(1.0, "a"), (2.0, "b"), (3.0, "c")]).unwrap(), 3);
    assert_eq!(c.zrank::<_, _, Option<i64>>("z", "c").unwrap(), Some(2));
    assert_eq!(
        c.zrangebyscore_withscores::<_, _, _, Vec<(String, f64)>>("z", "(1", "+inf").unwrap(),
        vec![("b".to_string(), 2.0), ("c".to_string(), 3.0)]
    );
    assert_eq!(c.zincr::<_, _, _, f64>("z", "a", 10.5).unwrap(), 11.5);
    assert_eq!(encoding(&mut c, "z"), "listpack");
    for i in 0..200 {
        let _: i64 = c.zadd("z", format!("m{i}"), i).unwrap();
    }
    assert_eq!(encoding(&mut c, "z"), "skiplist");
    assert_eq!(c.zrank::<_, _, Option<i64>>("z", "m199").unwrap(), Some(202));
    let e = redis::cmd("ZADD").arg("z").arg("nan").arg("x").query::<i64>(&mut c).unwrap_err();
    assert!(e.to_string().contains("not a valid float"));
    let e = redis::cmd("ZADD")
        .arg("z")
        .arg("INCR")
        .arg("+inf")
        .arg("p")
        .arg("-inf")
        .arg("q")
        .query::<i64>(&mut c)
        .unwrap_err();
    assert!(e.to_string().contains("INCR option supports a single increment-element pair"));
}
