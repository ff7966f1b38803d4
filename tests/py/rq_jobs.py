"""Job functions for compat_rq.py; RQ workers import them by name."""
import os

import redis


_CONN = None


def _conn():
    global _CONN
    if _CONN is None:
        _CONN = redis.Redis(port=int(os.environ["SHOAL_RQ_PORT"]))
    return _CONN


def add(a, b):
    return a + b


def flaky(name, failures):
    """Fails its first `failures` attempts (counted in the server), then succeeds."""
    attempt = _conn().incr(f"rq-test:attempts:{name}")
    if attempt <= failures:
        raise RuntimeError(f"planned failure {attempt} of {name}")
    return attempt


def always_fails(name):
    _conn().incr(f"rq-test:attempts:{name}")
    raise ValueError(f"{name} always fails")
