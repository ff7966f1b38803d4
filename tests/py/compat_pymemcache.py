"""pymemcache against Shoal's Memcached gateway: storage, CAS conflicts, counters, noreply,
limits, and the same keys read and written through RESP (redis-py).

Usage: compat_pymemcache.py <memcached port> <resp port>
"""
import sys

import redis
from pymemcache.client.base import Client
from pymemcache.exceptions import MemcacheClientError, MemcacheIllegalInputError, MemcacheServerError

mc_port, resp_port = int(sys.argv[1]), int(sys.argv[2])
mc = Client(("127.0.0.1", mc_port), default_noreply=False)
r = redis.Redis(port=resp_port)
mc.flush_all()

# Storage and retrieval, flags kept with the item.
assert mc.set("k", b"v1", expire=0, flags=7)
assert mc.get("k") == b"v1"
assert mc._fetch_cmd(b"get", [b"k"], False) == {b"k": b"v1"}
assert mc.add("k", b"other") is False
assert mc.add("new", b"n") is True
assert mc.replace("missing", b"x") is False
assert mc.replace("k", b"v2") is True
assert mc.append("k", b"+a") and mc.prepend("k", b"p+")
assert mc.get("k") == b"p+v2+a"
assert mc.get_many(["k", "new", "absent"]) == {"k": b"p+v2+a", "new": b"n"}

# noreply: nothing comes back, and the write happened.
assert mc.set("quiet", b"q", noreply=True) is True
assert mc.delete("new", noreply=True) is True
assert mc.get("quiet") == b"q" and mc.get("new") is None

# CAS: the value read with gets stores once; the second writer with the same token loses.
value, token = mc.gets("k")
assert value == b"p+v2+a" and token
assert mc.cas("k", b"first", token) is True
assert mc.cas("k", b"second", token) is False  # EXISTS
assert mc.get("k") == b"first"
assert mc.cas("nope", b"x", token) is None  # NOT_FOUND
# A write through RESP changes the item: a CAS token read before it no longer matches.
_, token = mc.gets("k")
r.set("k", "from-resp")
assert mc.cas("k", b"late", token) is False
assert mc.get("k") == b"from-resp"

# Counters.
mc.set("n", b"10")
assert mc.incr("n", 5) == 15 and mc.decr("n", 100) == 0
assert mc.incr("absent-counter", 1) is None
mc.set("text", b"abc")
try:
    mc.incr("text", 1)
    raise AssertionError("incr on a non-number must fail")
except MemcacheClientError as e:
    assert b"non-numeric" in str(e).encode(), e
assert r.incr("n") == 1 and mc.get("n") == b"1"

# Expiry: touch, and negative exptime expiring at once.
mc.set("ttl", b"t", expire=100)
assert r.ttl("ttl") in (99, 100)
assert mc.touch("ttl", 1000) is True and r.ttl("ttl") > 900
assert mc.touch("absent", 10) is False
mc.set("gone", b"g", expire=-1)
assert mc.get("gone") is None

# Limits: keys over 250 bytes are refused by the client; by the server when sent raw (see the
# Rust tests); values over 1 MB get SERVER_ERROR and the connection stays usable.
try:
    mc.set("x" * 251, b"v")
    raise AssertionError("an over-long key must be refused")
except MemcacheIllegalInputError:
    pass
try:
    mc.set("big", b"x" * (1024 * 1024 + 1))
    raise AssertionError("a too-large value must be refused")
except MemcacheServerError as e:
    assert "too large" in str(e), e
assert mc.set("after", b"still-works") and mc.get("after") == b"still-works"

# Cross-protocol: RESP sees Memcached's strings and the other way round.
mc.set("shared", b"hello")
assert r.get("shared") == b"hello" and r.type("shared") == b"string"
r.set("from-redis", "world")
assert mc.get("from-redis") == b"world"
r.rpush("a-list", "x")
assert mc.get("a-list") is None  # not a Memcached item
assert mc.delete("shared") is True and r.exists("shared") == 0

stats = mc.stats()
assert stats[b"cmd_get"] > 0 and b"curr_items" in stats, stats
# Memcached's own hit and miss counters (RESP reads do not count in them).
assert stats[b"cas_badval"] == 2 and stats[b"cas_hits"] == 1 and stats[b"cas_misses"] == 1, stats
assert stats[b"incr_misses"] == 1 and stats[b"decr_hits"] == 1 and stats[b"touch_misses"] == 1, stats
assert stats[b"delete_hits"] >= 2 and stats[b"get_misses"] >= 3, stats
print("pymemcache: ok")
