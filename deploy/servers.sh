#!/usr/bin/env bash
# A private PostgreSQL cluster and redis-server for elmweb, kept in one folder and bound to
# 127.0.0.1 only, so nothing system-wide is configured or started. Used by the Makefile:
# `make run-scaled` (folder var/scaled, kept) and `make test-scaled` (a throw-away folder).
#
#   deploy/servers.sh up    DIR PG_PORT REDIS_PORT  # create on first use, start (no-op if running)
#   deploy/servers.sh env   DIR PG_PORT REDIS_PORT  # print the `export` lines of the three URLs
#   deploy/servers.sh down  DIR                     # stop both; the data stays in DIR
#   deploy/servers.sh purge DIR                     # stop both and delete DIR
#
# DIR/password (mode 0600, made on first use) is the password of both: PostgreSQL's superuser
# `elmweb` (database `elmweb`) and Redis's `requirepass`. PostgreSQL refuses to run as root:
# as root, its commands run as the `postgres` user that Debian's package creates. The binaries
# are Debian's (`make install-servers`): /usr/lib/postgresql/<version>/bin and redis-server.
set -euo pipefail

log() { printf 'servers: %s\n' "$*" >&2; }
die() { printf 'servers: error: %s\n' "$*" >&2; exit 1; }

usage() {
    sed -n '6,9p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

[ $# -ge 2 ] || usage
action=$1
dir=$(realpath -m "$2")
pg_port=${3:-}
redis_port=${4:-}
if [ "$action" = up ] || [ "$action" = env ]; then
    [[ $pg_port =~ ^[0-9]+$ && $redis_port =~ ^[0-9]+$ ]] || die "$action needs DIR PG_PORT REDIS_PORT"
fi

pg_dir=$dir/postgres   # data/ (the cluster) and server.log; a link when root's DIR is out of reach
[ -L "$pg_dir" ] && pg_dir=$(readlink -f "$pg_dir")
redis_dir=$dir/redis   # redis.conf, redis.pid, redis.log, the append-only file
password_file=$dir/password

# --- PostgreSQL ---------------------------------------------------------------------------
as_pg=()
if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 \
        || die "no user 'postgres' to run PostgreSQL as (it refuses root): run \`make install-servers\`"
    as_pg=(runuser -u postgres --)
fi

pg_bin() {
    # The binaries of the cluster's own major version once it exists, else the newest installed.
    local bin
    if [ -f "$pg_dir/data/PG_VERSION" ]; then
        bin=/usr/lib/postgresql/$(cat "$pg_dir/data/PG_VERSION")/bin
    else
        bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    fi
    [ -n "$bin" ] && [ -x "$bin/pg_ctl" ] \
        || die "PostgreSQL is not installed: run \`make install-servers\` (apt-get install postgresql)"
    printf '%s\n' "$bin"
}

pg() { (cd / && "${as_pg[@]}" "$@"); }  # from / : the postgres user may not reach the caller's folder

pg_ctl() { pg "$(pg_bin)/pg_ctl" -D "$pg_dir/data" "$@"; }

pg_running() { [ -f "$pg_dir/data/PG_VERSION" ] && pg_ctl status >/dev/null 2>&1; }

# A client program of PostgreSQL (psql, createdb) as its superuser, over TCP.
pg_client() { PGPASSWORD=$(cat "$password_file") "$(pg_bin)/$1" -h 127.0.0.1 -p "$pg_port" -U elmweb "${@:2}"; }

pg_prepare_dir() {
    # As root, PostgreSQL runs as `postgres`, which must reach the folder: if some parent of DIR
    # is closed to it (a checkout under /root), the cluster lives in /var/tmp behind a link.
    [ -e "$pg_dir" ] && return
    mkdir -p "$pg_dir"
    [ ${#as_pg[@]} -eq 0 ] && return
    chown postgres: "$pg_dir"
    if ! pg test -w "$pg_dir"; then
        rmdir "$pg_dir"
        local outside
        outside=$(mktemp -d /var/tmp/elmweb-postgres.XXXXXX)
        chown postgres: "$outside"
        ln -s "$outside" "$pg_dir"
        log "user postgres cannot reach $dir; the cluster is in $outside (linked from $pg_dir)"
        pg_dir=$outside
    fi
}

pg_init() {
    [ -f "$pg_dir/data/PG_VERSION" ] && return
    pg_prepare_dir
    local bin pwfile
    bin=$(pg_bin)
    pwfile=$pg_dir/pwfile
    install -m 600 "$password_file" "$pwfile"
    [ ${#as_pg[@]} -eq 0 ] || chown postgres: "$pwfile"
    log "creating a PostgreSQL $(basename "$(dirname "$bin")") cluster in $pg_dir/data"
    if ! pg "$bin/initdb" -D "$pg_dir/data" -U elmweb --pwfile="$pwfile" --auth-host=scram-sha-256 \
        --auth-local=peer --encoding=UTF8 --locale=C >"$pg_dir/initdb.log" 2>&1; then
        rm -f "$pwfile"
        die "initdb failed (output in $pg_dir/initdb.log): $(tail -n 3 "$pg_dir/initdb.log")"
    fi
    rm -f "$pwfile"
    # TCP on the loopback only and no Unix socket, so nothing is shared with a system PostgreSQL;
    # the port is given at each start (-p).
    cat >>"$pg_dir/data/postgresql.conf" <<'EOF'

# elmweb (deploy/servers.sh)
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
EOF
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

pg_up() {
    pg_init
    if ! pg_running; then
        port_in_use "$pg_port" && die "port $pg_port is in use: stop what uses it, or choose another: PG_PORT=..."
        if ! pg_ctl -l "$pg_dir/server.log" -w -t 60 -o "-p $pg_port" start >/dev/null; then
            die "PostgreSQL did not start; the end of $pg_dir/server.log: $(tail -n 5 "$pg_dir/server.log")"
        fi
        log "PostgreSQL is up on 127.0.0.1:$pg_port (log: $pg_dir/server.log)"
    fi
    local exists
    exists=$(pg_client psql -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'elmweb'") \
        || die "cannot connect to PostgreSQL on 127.0.0.1:$pg_port; if the cluster in $pg_dir runs on" \
            "another port, stop it first: deploy/servers.sh down $dir"
    if [ "$exists" != 1 ]; then
        pg_client createdb elmweb
        log "created the database elmweb"
    fi
}

pg_down() {
    pg_running || return 0
    pg_ctl -m fast -w -t 60 stop >/dev/null
    log "PostgreSQL stopped"
}

# --- Redis --------------------------------------------------------------------------------
redis_pid() { [ -f "$redis_dir/redis.pid" ] && cat "$redis_dir/redis.pid"; }

redis_running() { local pid; pid=$(redis_pid) && kill -0 "$pid" 2>/dev/null; }

redis_up() {
    redis_running && return
    command -v redis-server >/dev/null \
        || die "redis-server is not installed: run \`make install-servers\` (apt-get install redis-server)"
    port_in_use "$redis_port" && die "port $redis_port is in use: stop what uses it, or choose another: REDIS_PORT=..."
    mkdir -p "$redis_dir"
    # Loopback only, a password, no Unix socket; the append-only file keeps queued tasks across
    # a restart of Redis (the database, not the broker, is the truth for runs all the same).
    (umask 077 && cat >"$redis_dir/redis.conf" <<EOF
# elmweb (deploy/servers.sh): rewritten at each start
bind 127.0.0.1
port $redis_port
protected-mode yes
requirepass $(cat "$password_file")
daemonize yes
pidfile "$redis_dir/redis.pid"
logfile "$redis_dir/redis.log"
dir "$redis_dir"
save ""
appendonly yes
EOF
    )
    redis-server "$redis_dir/redis.conf" || die "redis-server did not start: see $redis_dir/redis.log"
    local tries pong
    for tries in $(seq 50); do
        pong=$(REDISCLI_AUTH=$(cat "$password_file") redis-cli -h 127.0.0.1 -p "$redis_port" ping 2>/dev/null || true)
        if [ "$pong" = PONG ]; then
            log "Redis is up on 127.0.0.1:$redis_port (log: $redis_dir/redis.log)"
            return
        fi
        sleep 0.2
    done
    die "Redis did not answer on 127.0.0.1:$redis_port after $tries tries; see $redis_dir/redis.log"
}

redis_down() {
    local pid
    redis_running || return 0
    pid=$(redis_pid)
    kill "$pid"  # SIGTERM: Redis flushes its append-only file and exits
    for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || { log "Redis stopped"; return 0; }
        sleep 0.1
    done
    die "Redis (pid $pid) did not stop in 10 s; stop it with \`kill -9 $pid\`"
}

# --- Actions ------------------------------------------------------------------------------
case $action in
up)
    mkdir -p "$dir"
    # 24 characters of URL-safe base64: the same password goes into URLs unescaped.
    [ -s "$password_file" ] || (umask 077 && head -c 18 /dev/urandom | base64 | tr '+/' '-_' >"$password_file")
    pg_up
    redis_up
    ;;
env)
    [ -s "$password_file" ] || die "no servers in $dir yet: run deploy/servers.sh up $dir $pg_port $redis_port"
    password=$(cat "$password_file")
    printf 'export DATABASE_URL=%q\n' "postgres://elmweb:$password@127.0.0.1:$pg_port/elmweb"
    printf 'export CELERY_BROKER_URL=%q\n' "redis://:$password@127.0.0.1:$redis_port/0"
    printf 'export REDIS_URL=%q\n' "redis://:$password@127.0.0.1:$redis_port/1"
    ;;
down)
    status=0
    pg_down || status=$?
    redis_down || status=$?
    exit $status
    ;;
purge)
    status=0
    pg_down || status=$?
    redis_down || status=$?
    [ -L "$dir/postgres" ] && rm -rf "$pg_dir"
    rm -rf "$dir"
    exit $status
    ;;
*)
    usage
    ;;
esac
