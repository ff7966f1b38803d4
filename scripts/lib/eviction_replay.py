"""Replays a Zipf key trace as a cache would see it: GET, and SET on a miss.

Usage: eviction_replay.py PORT KEYS REQUESTS VALUE_SIZE SEED

Prints one CSV line: hits,gets,max_used_memory,maxmemory,evicted_keys. Hits are counted after
a warm-up of one tenth of the trace, so the cold start does not weigh on the ratio. The trace
is generated from SEED, so every server sees the same requests in the same order.
"""

import bisect
import random
import sys

import redis

ZIPF_S = 0.99
BATCH = 500


def zipf_cdf(n, s):
    total, cdf = 0.0, []
    for k in range(1, n + 1):
        total += 1.0 / k**s
        cdf.append(total)
    return [c / total for c in cdf]


def main():
    port, keys, requests, value_size, seed = (int(a) for a in sys.argv[1:6])
    cdf = zipf_cdf(keys, ZIPF_S)
    rng = random.Random(seed)
    # Ranks are shuffled over key names so popularity is not ordered like the hash slots.
    names = list(range(keys))
    rng.shuffle(names)
    value = b"v" * value_size
    r = redis.Redis(port=port)
    maxmemory = int(r.config_get("maxmemory")["maxmemory"])
    warmup = requests // 10
    hits = gets = max_used = 0
    done = 0
    while done < requests:
        n = min(BATCH, requests - done)
        batch = [b"key:%d" % names[bisect.bisect_left(cdf, rng.random())] for _ in range(n)]
        p = r.pipeline(transaction=False)
        for k in batch:
            p.get(k)
        got = p.execute()
        p = r.pipeline(transaction=False)
        for i, (k, v) in enumerate(zip(batch, got)):
            if done + i >= warmup:
                gets += 1
                hits += v is not None
            if v is None:
                p.set(k, value)
        p.execute()
        done += n
        if done % (BATCH * 20) == 0 or done == requests:
            max_used = max(max_used, int(r.info("memory")["used_memory"]))
    # The peak covers the moments between samples (Shoal refreshes it every 5 ms).
    max_used = max(max_used, int(r.info("memory")["used_memory_peak"]))
    evicted = int(r.info("stats")["evicted_keys"])
    print(f"{hits},{gets},{max_used},{maxmemory},{evicted}")


if __name__ == "__main__":
    main()
