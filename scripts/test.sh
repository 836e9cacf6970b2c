#!/usr/bin/env bash
# Install what the tests need and run them: lint, the suite on SQLite, then on PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

# --- system packages (a fresh machine has none of them) ---------------------------------
need=()
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need+=(postgresql)
[ -x /usr/bin/chromium ] || need+=(chromium)
# WeasyPrint renders PDFs with pango; fonts must be local.
ls /usr/lib/*/libpango-1.0.so.0 >/dev/null 2>&1 || need+=(libpango-1.0-0 libpangoft2-1.0-0 libpangocairo-1.0-0)
[ -d /usr/share/fonts/truetype/dejavu ] || need+=(fonts-dejavu-core)
ls /usr/lib/*/libgomp.so.1 >/dev/null 2>&1 || need+=(libgomp1)  # LightGBM
command -v openssl >/dev/null || need+=(openssl)  # the SMTP over TLS tests make a certificate
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null
fi

# --- Python environment -----------------------------------------------------------------
bash scripts/install.sh test
PY="$ROOT/.venv/bin"

echo "== lint (ruff) and types (mypy)"
"$PY/ruff" check .
"$PY/ruff" format --check .
"$PY/mypy"

echo "== tests on SQLite"
"$PY/pytest" -q -n 2 -p no:cacheprovider

# --- PostgreSQL: a throwaway cluster on its own port, run as the postgres user ----------
PG_BIN=$(dirname "$(ls /usr/lib/postgresql/*/bin/postgres | sort -V | tail -n 1)")
PGDATA=$(mktemp -d /tmp/encours-pg.XXXXXX)
PGPORT=${ENCOURS_TEST_PG_PORT:-55432}
chown postgres "$PGDATA"
runuser -u postgres -- "$PG_BIN/initdb" -D "$PGDATA" -A trust -U postgres >/dev/null
runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PGDATA" -l "$PGDATA/server.log" -w \
  -o "-p $PGPORT -k $PGDATA -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" start >/dev/null
cleanup() { runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PGDATA" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$PGDATA"; }
trap cleanup EXIT

echo "== tests on PostgreSQL (port $PGPORT)"
ENCOURS_TEST_DB_URL="postgresql+psycopg://postgres@127.0.0.1:$PGPORT/postgres" \
  "$PY/pytest" -q -n 2 -p no:cacheprovider
