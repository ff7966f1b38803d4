#!/usr/bin/env bash
# Installs what the black-box tests talk to Shoal with: redis-cli (Debian's redis-tools),
# memccapable and pymemcache for the Memcached gateway,
# redis-server for the side-by-side benchmarks, redis-py, moto's S3 server (with boto3) for
# the backup tests, and the job queues the job-queue tests run (BullMQ on Node.js, RQ,
# Sidekiq). Safe to run repeatedly.
set -euo pipefail

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

if ! command -v redis-cli >/dev/null || ! command -v redis-server >/dev/null || ! command -v redis-benchmark >/dev/null; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-tools redis-server >/dev/null
  # The package starts a system redis-server on 6379; the tests do not need it.
  $SUDO systemctl stop redis-server >/dev/null 2>&1 || $SUDO service redis-server stop >/dev/null 2>&1 || true
fi

# memcached (the reference for the Memcached gateway's benchmark) and libmemcached-tools
# (memccapable, memcslap) for the Memcached gateway's tests.
if ! command -v memccapable >/dev/null || ! command -v memcached >/dev/null; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq memcached libmemcached-tools >/dev/null
  $SUDO systemctl stop memcached >/dev/null 2>&1 || $SUDO service memcached stop >/dev/null 2>&1 || true
fi

if ! python3 -c "import pymemcache" >/dev/null 2>&1; then
  python3 -m pip install --quiet --disable-pip-version-check "pymemcache>=4"
fi

if ! python3 -c "import redis" >/dev/null 2>&1; then
  python3 -m pip install --quiet --disable-pip-version-check "redis>=5"
fi

if ! python3 -c "import rq" >/dev/null 2>&1; then
  python3 -m pip install --quiet --disable-pip-version-check "rq>=2"
fi

# Sidekiq (Debian's ruby-sidekiq, with Ruby and redis-rb) for the Sidekiq workload.
if ! ruby -e 'require "sidekiq"' >/dev/null 2>&1; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq ruby-sidekiq >/dev/null
fi

if ! command -v moto_server >/dev/null || ! python3 -c "import boto3, flask" >/dev/null 2>&1; then
  python3 -m pip install --quiet --disable-pip-version-check "moto[server]>=5"
fi

# Node.js client libraries (BullMQ, ioredis; memjs for the Memcached gateway) for the
# compatibility tests, at the
# versions tests/compat/package-lock.json pins.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nodejs npm >/dev/null
fi
COMPAT="$(dirname "$0")/../tests/compat"
if [ ! -d "$COMPAT/node_modules/bullmq" ] || [ ! -d "$COMPAT/node_modules/memjs" ] || [ "$COMPAT/package-lock.json" -nt "$COMPAT/node_modules/.package-lock.json" ]; then
  (cd "$COMPAT" && npm ci --no-audit --no-fund --loglevel=error)
fi
