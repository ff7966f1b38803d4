#!/usr/bin/env python3
"""Writes node/src/cmd/redis_meta.rs: every command's key specifications and command tips as
the reference redis-server (Debian's 7.0) reports them in COMMAND INFO, and what each
container command's HELP answers.

Key specs say which arguments are keys and how each is used (RO/RW/OW/RM, access, update,
insert, delete); ACL read/write key patterns (%R~, %W~) and COMMAND GETKEYSANDFLAGS read them.
Tips (request_policy:all_shards, nondeterministic_output, ...) tell cluster clients how to
route a command. Copying them from Redis keeps both exactly Redis's.

Usage: scripts/gen-redis-meta.py            (starts redis-server on a free port)
       scripts/gen-redis-meta.py --check    (exits 1 if the committed file is out of date)
"""
import os
import socket
import subprocess
import sys
import tempfile
import time

import redis

OUT = os.path.join(os.path.dirname(__file__), "..", "node", "src", "cmd", "redis_meta.rs")

FLAG_NAMES = {
    "RO": "RO", "RW": "RW", "OW": "OW", "RM": "RM", "access": "ACCESS", "update": "UPDATE",
    "insert": "INSERT", "delete": "DELETE", "not_key": "NOT_KEY", "incomplete": "INCOMPLETE",
    "variable_flags": "VARIABLE_FLAGS",
}


def s(x):
    return x.decode() if isinstance(x, bytes) else x


def rust_str(x):
    return '"' + s(x).replace("\\", "\\\\").replace('"', '\\"') + '"'


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def spec_text(spec):
    spec = {s(k): v for k, v in spec.items()}
    flags = " | ".join(FLAG_NAMES[s(f)] for f in spec["flags"]) or "0"
    bs = {s(k): v for k, v in spec["begin_search"].items()}
    bss = {s(k): v for k, v in bs["spec"].items()}
    if s(bs["type"]) == "index":
        begin = f"Index({bss['index']})"
    elif s(bs["type"]) == "keyword":
        begin = f"Keyword({rust_str(bss['keyword'])}, {bss['startfrom']})"
    else:
        begin = "Begin::Unknown"
    fk = {s(k): v for k, v in spec["find_keys"].items()}
    fks = {s(k): v for k, v in fk["spec"].items()}
    if s(fk["type"]) == "range":
        find = f"Range {{ lastkey: {fks['lastkey']}, keystep: {fks['keystep']}, limit: {fks['limit']} }}"
    elif s(fk["type"]) == "keynum":
        find = f"Keynum {{ keynumidx: {fks['keynumidx']}, firstkey: {fks['firstkey']}, keystep: {fks['keystep']} }}"
    else:
        find = "Find::Unknown"
    notes = rust_str(spec["notes"]) if "notes" in spec else '""'
    return f"KeySpec {{ flags: {flags}, begin: {begin}, find: {find}, notes: {notes} }}"


def generate(port):
    r = redis.Redis(port=port, protocol=3)
    r.set_response_callback("COMMAND", lambda x, **kw: x)
    version = s(r.info("server")["redis_version"])
    rows = []

    def walk(c):
        name, tips, specs, subs = s(c[0]), c[7], c[8], c[9]
        if specs or tips:
            rows.append((name, [spec_text(sp) for sp in specs], [rust_str(t) for t in tips]))
        for sub in subs:
            walk(sub)

    containers = []
    for c in r.execute_command("COMMAND"):
        walk(c)
        if c[9]:
            containers.append(s(c[0]))
    rows.sort()
    helps = []
    for name in sorted(containers):
        r.set_response_callback(name, lambda x, **kw: x)
        try:
            helps.append((name, [s(line) for line in r.execute_command(name, "HELP")]))
        except redis.ResponseError:
            pass  # CLUSTER HELP, with cluster support off

    lines = [
        f"//! Key specifications and command tips of Redis {version}, and its containers' HELP texts,",
        "//! written by `scripts/gen-redis-meta.py` from COMMAND INFO and HELP. Do not edit: re-run",
        "//! the script.",
        "",
        "#![allow(unused_imports)]",
        "",
        "use super::keyspec::flags::*;",
        "use super::keyspec::{Begin, Begin::Index, Begin::Keyword, Find, Find::Keynum, Find::Range, KeySpec};",
        "",
        "/// A command's (or `container|sub` subcommand's) key specs and tips.",
        "pub struct Meta {",
        "    pub name: &'static str,",
        "    pub key_specs: &'static [KeySpec],",
        "    pub tips: &'static [&'static str],",
        "}",
        "",
        f"pub const REDIS_VERSION: &str = {rust_str(version)};",
        "",
        "/// Sorted by name.",
        "#[rustfmt::skip]",
        "pub static COMMANDS: &[Meta] = &[",
    ]
    for name, specs, tips in rows:
        lines.append(f"    Meta {{ name: {rust_str(name)}, key_specs: &[{', '.join(specs)}], tips: &[{', '.join(tips)}] }},")
    lines.append("];")
    lines += [
        "",
        "/// What each container command's HELP answers, line by line, sorted by container.",
        "#[rustfmt::skip]",
        "pub static HELP: &[(&str, &[&str])] = &[",
    ]
    for name, text in helps:
        lines.append(f"    ({rust_str(name)}, &[")
        lines += [f"        {rust_str(line)}," for line in text]
        lines.append("    ]),")
    lines.append("];")
    return "\n".join(lines) + "\n"


def main():
    port = free_port()
    with tempfile.TemporaryDirectory() as d:
        p = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                              "--dir", d], stdout=subprocess.DEVNULL)
        try:
            for _ in range(100):
                try:
                    redis.Redis(port=port).ping()
                    break
                except redis.ConnectionError:
                    time.sleep(0.05)
            text = generate(port)
        finally:
            p.terminate()
            p.wait()
    if "--check" in sys.argv:
        with open(OUT) as f:
            if f.read() != text:
                print(f"{OUT} is out of date: run scripts/gen-redis-meta.py", file=sys.stderr)
                sys.exit(1)
        return
    with open(OUT, "w") as f:
        f.write(text)
    print(f"wrote {os.path.normpath(OUT)}")


if __name__ == "__main__":
    main()
