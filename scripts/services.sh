#!/bin/sh
# Start the services the tests and benchmarks use, idempotently (safe to run twice).
#   PostgreSQL 15 (Debian cluster "main"), with role and database loopjam_test.
# Prints the database URL on stdout (the last line); messages go to stderr.
# Usage: scripts/services.sh            -> postgresql://loopjam_test:loopjam_test@127.0.0.1:5432/loopjam_test
set -eu

PG_VERSION=${PG_VERSION:-15}
PG_CLUSTER=${PG_CLUSTER:-main}
ROLE=loopjam_test
DB=loopjam_test

if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    echo "services.sh: PostgreSQL is not installed (apt-get install postgresql)" >&2
    exit 1
fi

status=$(pg_lsclusters --no-header 2>/dev/null | awk -v v="$PG_VERSION" -v c="$PG_CLUSTER" '$1==v && $2==c {print $4}')
if [ -z "$status" ]; then
    echo "services.sh: creating PostgreSQL cluster $PG_VERSION/$PG_CLUSTER" >&2
    pg_createcluster "$PG_VERSION" "$PG_CLUSTER" >&2
    status=down
fi
if [ "$status" != "online" ]; then
    pg_ctlcluster "$PG_VERSION" "$PG_CLUSTER" start >&2 || {
        # A concurrent start may have won the race: accept it if the cluster is now up.
        pg_lsclusters --no-header | awk -v v="$PG_VERSION" -v c="$PG_CLUSTER" '$1==v && $2==c {print $4}' | grep -q online
    }
fi
PORT=$(pg_lsclusters --no-header | awk -v v="$PG_VERSION" -v c="$PG_CLUSTER" '$1==v && $2==c {print $3}')

psql_admin() {
    if [ "$(id -u)" = 0 ]; then
        su postgres -c "psql -p $PORT -v ON_ERROR_STOP=1 -qAt $*"
    else
        psql -p "$PORT" -v ON_ERROR_STOP=1 -qAt "$@"
    fi
}

# Wait for the server to accept connections (start returns before it is always ready).
i=0
until psql_admin "-c 'SELECT 1'" >/dev/null 2>&1; do
    i=$((i + 1))
    if [ "$i" -gt 50 ]; then
        echo "services.sh: PostgreSQL did not come up on port $PORT" >&2
        exit 1
    fi
    sleep 0.2
done

if [ "$(psql_admin "-c \"SELECT 1 FROM pg_roles WHERE rolname='$ROLE'\"")" != 1 ]; then
    psql_admin "-c \"CREATE ROLE $ROLE LOGIN PASSWORD '$ROLE'\"" >&2 || true
fi
if [ "$(psql_admin "-c \"SELECT 1 FROM pg_database WHERE datname='$DB'\"")" != 1 ]; then
    psql_admin "-c \"CREATE DATABASE $DB OWNER $ROLE\"" >&2 || true
fi

echo "postgresql://$ROLE:$ROLE@127.0.0.1:$PORT/$DB"
