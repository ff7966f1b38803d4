"""redis-py against a running Shoal node: plain, pipelined, RESP3 and cluster clients.

Usage: python3 compat_redis_py.py PORT. Exits non-zero on the first mismatch.
"""
import sys

import redis
from redis.cluster import RedisCluster

port = int(sys.argv[1])

r = redis.Redis(port=port, decode_responses=True)
assert r.ping() is True
assert r.set("py:a", "1") is True
assert r.get("py:a") == "1"
assert r.incr("py:a") == 2
assert r.set("py:nx", "x", nx=True) is True
assert r.set("py:nx", "y", nx=True) is None
assert r.set("py:ex", "v", ex=100) is True
assert 99 <= r.ttl("py:ex") <= 100
assert r.mset({"py:m1": "1", "py:m2": "2"}) is True
assert r.mget(["py:m1", "py:m2", "py:none"]) == ["1", "2", None]
assert r.incrbyfloat("py:f", 0.5) == 0.5
assert r.exists("py:m1", "py:m2") == 2
assert r.delete("py:m1") == 1
assert r.type("py:a") == "string"
assert r.getrange("py:ex", 0, 0) == "v"
assert sorted(r.keys("py:m*")) == ["py:m2"]
assert set(r.scan_iter("py:*")) >= {"py:a", "py:ex", "py:m2"}
assert r.dbsize() >= 4
info = r.info()
assert info["redis_version"] == "7.0.15"
assert r.info("keyspace")["db0"]["keys"] >= 4
assert r.config_get("maxmemory") == {"maxmemory": "0"}
assert r.client_setname("pyclient") is True
assert r.client_getname() == "pyclient"
assert any(c["name"] == "pyclient" for c in r.client_list())
try:
    r.execute_command("NOSUCHCOMMAND")
    raise AssertionError("unknown command accepted")
except redis.ResponseError as e:
    assert str(e).startswith("unknown command 'NOSUCHCOMMAND'"), str(e)

pipe = r.pipeline(transaction=False)
for i in range(1000):
    pipe.set(f"py:p{i}", i)
    pipe.get(f"py:p{i}")
out = pipe.execute()
assert out[1::2] == [str(i) for i in range(1000)]

r3 = redis.Redis(port=port, protocol=3, decode_responses=True)
assert r3.set("py:r3", "v") is True
assert r3.get("py:r3") == "v"
assert r3.config_get("port") == {"port": str(port)}

rc = RedisCluster(host="127.0.0.1", port=port, decode_responses=True)
for i in range(200):
    rc.set(f"pyc:{i}", i)
assert [rc.get(f"pyc:{i}") for i in range(200)] == [str(i) for i in range(200)]
assert rc.mset_nonatomic({"{t}a": "1", "{t}b": "2"}) == [True]
assert rc.mget_nonatomic(["{t}a", "{t}b"]) == ["1", "2"]
assert rc.cluster_keyslot("foo") == 12182
print("redis-py ok")
