#!/usr/bin/env bash
# Make sure the PostgreSQL server the tests use is up (127.0.0.1:5432, database `test`), starting a
# local Debian cluster if it is installed but stopped. Prints what it did; fails with a clear message.
set -u
url="${TICKETBOT_TEST_PG_URL:-postgresql+asyncpg://postgres@127.0.0.1:5432/test}"
host=127.0.0.1 port=5432
ready() { pg_isready -q -h "$host" -p "$port" 2>/dev/null; }
if ! command -v pg_isready >/dev/null 2>&1; then
  echo "ensure-postgres: pg_isready not found; assuming the server at $url is reachable" >&2
  exit 0
fi
if ! ready; then
  echo "ensure-postgres: PostgreSQL is down; starting it" >&2
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    for version in $(ls /etc/postgresql); do
      pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>&1 || true
    done
  fi
  for _ in $(seq 1 60); do ready && break; sleep 0.5; done
fi
if ! ready; then
  echo "ensure-postgres: PostgreSQL is not reachable at $host:$port; start it or set TICKETBOT_TEST_PG_URL" >&2
  exit 1
fi
if command -v psql >/dev/null 2>&1 && [ -z "${TICKETBOT_TEST_PG_URL:-}" ]; then
  if ! psql -h "$host" -p "$port" -U postgres -d test -Atqc 'select 1' >/dev/null 2>&1; then
    psql -h "$host" -p "$port" -U postgres -d postgres -qc 'create database test' >/dev/null 2>&1 || true
  fi
fi
echo "ensure-postgres: PostgreSQL is up at $host:$port" >&2
