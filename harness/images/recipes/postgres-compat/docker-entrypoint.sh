#!/bin/bash
# Entrypoint of stageproof's postgres-compat image: the environment contract of the official
# postgres image, implemented on Debian's PostgreSQL 15.
#
# On first start (no $PGDATA/PG_VERSION yet) it runs initdb with POSTGRES_USER (default postgres)
# as superuser and POSTGRES_PASSWORD (required unless POSTGRES_HOST_AUTH_METHOD=trust), lets
# every remote host in with a password (scram-sha-256, or md5 when password_encryption=md5),
# creates POSTGRES_DB (default: the user's name), runs /docker-entrypoint-initdb.d/*.sh|*.sql|
# *.sql.gz|*.sql.xz|*.sql.zst in name order on a socket-only temporary server, then serves.
# POSTGRES_PASSWORD, POSTGRES_USER, POSTGRES_DB and POSTGRES_INITDB_ARGS may instead be read from
# a file named by the same variable with _FILE appended (Docker/Kubernetes secrets).
set -Eeuo pipefail

export PGDATA=${PGDATA:-/var/lib/postgresql/data}
INITDB=/docker-entrypoint-initdb.d
SOCKET_DIR=/var/run/postgresql

log() { printf '%s [entrypoint] %s\n' "$(date -u +%FT%TZ)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# file_env VAR [DEFAULT]: VAR from $VAR, or from the file named by $VAR_FILE (not both), else DEFAULT.
file_env() {
    local var=$1 file_var="${1}_FILE" default=${2:-}
    if [[ -n ${!var:-} && -n ${!file_var:-} ]]; then
        die "both $var and $file_var are set; use one"
    fi
    if [[ -n ${!file_var:-} ]]; then
        export "$var"="$(<"${!file_var}")"
    elif [[ -z ${!var:-} ]]; then
        export "$var"="$default"
    fi
    unset "$file_var"
}

# wants_no_server ARGS...: true for `postgres --version`, `-C name`, `--help`, ...: nothing to set up.
wants_no_server() {
    local arg
    for arg in "$@"; do
        case $arg in
            -'?' | --help | --describe-config | -V | --version | -C | -C*) return 0 ;;
        esac
    done
    return 1
}

check_environment() {
    file_env POSTGRES_PASSWORD
    file_env POSTGRES_USER postgres
    file_env POSTGRES_DB "$POSTGRES_USER"
    file_env POSTGRES_INITDB_ARGS
    if [[ -z $POSTGRES_PASSWORD && ${POSTGRES_HOST_AUTH_METHOD:-} != trust ]]; then
        die "the database is uninitialized and the superuser password is not set:
    set POSTGRES_PASSWORD (or POSTGRES_PASSWORD_FILE) to a non-empty value, or
    POSTGRES_HOST_AUTH_METHOD=trust to let every host in without a password (never in production)"
    fi
}

# with_passwd_entry CMD...: run CMD where the current uid has a passwd entry (initdb needs one):
# a uid unknown to /etc/passwd (`docker run --user 4321`, a k8s runAsUser) gets a made-up
# `postgres` entry through nss_wrapper, for this command only.
with_passwd_entry() {
    if getent passwd "$(id -u)" >/dev/null; then
        "$@"
        return
    fi
    local wrapper dir
    wrapper=$(find /usr/lib -name libnss_wrapper.so -print -quit)
    [[ -n $wrapper ]] || die "uid $(id -u) has no passwd entry and libnss_wrapper.so is missing"
    dir=$(mktemp -d)
    printf 'postgres:x:%s:%s:PostgreSQL:%s:/bin/false\n' "$(id -u)" "$(id -g)" "$PGDATA" >"$dir/passwd"
    printf 'postgres:x:%s:\n' "$(id -g)" >"$dir/group"
    LD_PRELOAD=$wrapper NSS_WRAPPER_PASSWD=$dir/passwd NSS_WRAPPER_GROUP=$dir/group "$@"
    rm -rf "$dir"
}

run_initdb() {
    local args=() pwfile=""
    # Split like a shell would (quotes respected), without evaluating anything.
    [[ -n $POSTGRES_INITDB_ARGS ]] && mapfile -t args < <(xargs printf '%s\n' <<<"$POSTGRES_INITDB_ARGS")
    [[ -n ${POSTGRES_INITDB_WALDIR:-} ]] && args+=("--waldir=$POSTGRES_INITDB_WALDIR")
    if [[ -n $POSTGRES_PASSWORD ]]; then
        pwfile=$(mktemp)
        printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
        args+=("--pwfile=$pwfile")
    fi
    with_passwd_entry initdb --username="$POSTGRES_USER" "${args[@]}" >&2
    [[ -n $pwfile ]] && rm -f "$pwfile"
    return 0
}

# allow_remote_hosts ARGS...: every host may connect, with the password method the server's
# password_encryption (which ARGS may set with -c) stores passwords for.
allow_remote_hosts() {
    local method=${POSTGRES_HOST_AUTH_METHOD:-}
    if [[ -z $method ]]; then
        method=$(postgres -C password_encryption "$@")
    fi
    [[ $method == trust ]] && log "WARNING: POSTGRES_HOST_AUTH_METHOD=trust: every host connects without a password"
    printf '\nhost all all all %s\n' "$method" >>"$PGDATA/pg_hba.conf"
}

start_temporary_server() {
    local options
    options=$(printf '%q ' "$@" -c listen_addresses= -c "unix_socket_directories=$SOCKET_DIR" -p 5432)
    pg_ctl -D "$PGDATA" -o "$options" -w -t 120 start >&2 || die "the temporary server did not start"
}

stop_temporary_server() {
    pg_ctl -D "$PGDATA" -m fast -w -t 120 stop >&2 || die "the temporary server did not shut down cleanly"
}

# docker_process_sql [PSQL ARGS...]: psql on the temporary server as POSTGRES_USER in POSTGRES_DB
# (named as in the official image: sourced *.sh init scripts may call it).
docker_process_sql() {
    psql -v ON_ERROR_STOP=1 --no-psqlrc --no-password --host="$SOCKET_DIR" --port=5432 \
        --username="$POSTGRES_USER" --dbname="$POSTGRES_DB" "$@"
}

create_database() {
    [[ $POSTGRES_DB == postgres ]] && return
    local exists
    exists=$(docker_process_sql --dbname=postgres -tA -v db="$POSTGRES_DB" <<<"SELECT 1 FROM pg_database WHERE datname = :'db';")
    if [[ -z $exists ]]; then
        docker_process_sql --dbname=postgres -v db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";' >&2
    fi
}

run_init_scripts() {
    local script
    shopt -s nullglob
    for script in "$INITDB"/*; do
        case $script in
            *.sh)
                log "running $script"
                if [[ -x $script ]]; then "$script"; else . "$script"; fi ;;
            *.sql) log "running $script"; docker_process_sql -f "$script" >&2 ;;
            *.sql.gz) log "running $script"; gunzip -c "$script" | docker_process_sql >&2 ;;
            *.sql.xz) log "running $script"; xz -dc "$script" | docker_process_sql >&2 ;;
            *.sql.zst) log "running $script"; zstd -dc "$script" | docker_process_sql >&2 ;;
            *) log "ignoring $script" ;;
        esac
    done
    shopt -u nullglob
}

initialise() {
    check_environment
    log "initialising the database in $PGDATA"
    run_initdb
    allow_remote_hosts "$@"
    export PGPASSWORD=${PGPASSWORD:-$POSTGRES_PASSWORD}
    start_temporary_server "$@"
    create_database
    run_init_scripts
    stop_temporary_server
    unset PGPASSWORD
    log "initialisation done; starting the server"
}

# serve CMD...: run the server as a child and forward signals, so that a plain SIGTERM (which
# postgres reads as "smart": wait for every client to leave) is a fast shutdown, as SIGINT is.
serve() {
    "$@" &
    local pid=$!
    trap 'kill -INT "$pid" 2>/dev/null || true' TERM INT
    trap 'kill -QUIT "$pid" 2>/dev/null || true' QUIT
    trap 'kill -HUP "$pid" 2>/dev/null || true' HUP
    while kill -0 "$pid" 2>/dev/null; do
        wait "$pid" || true
    done
    wait "$pid"
}

# prepare_directories: the data and socket folders, owned by postgres (run as root only).
prepare_directories() {
    mkdir -p "$PGDATA" "$SOCKET_DIR"
    chmod 3777 "$SOCKET_DIR"
    find "$PGDATA" \! -user postgres -exec chown postgres:postgres {} +
    chmod 700 "$PGDATA"
    if [[ -n ${POSTGRES_INITDB_WALDIR:-} ]]; then
        mkdir -p "$POSTGRES_INITDB_WALDIR"
        find "$POSTGRES_INITDB_WALDIR" \! -user postgres -exec chown postgres:postgres {} +
        chmod 700 "$POSTGRES_INITDB_WALDIR"
    fi
}

main() {
    if [[ $# -eq 0 || ${1:0:1} == "-" ]]; then
        set -- postgres "$@"
    fi
    if [[ $1 != postgres ]] || wants_no_server "${@:2}"; then
        exec "$@"
    fi
    if [[ $(id -u) -eq 0 ]]; then
        # Like the official image: fix ownership of a fresh volume, then drop to the postgres user.
        prepare_directories
        exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
    fi
    # Any other uid: the data folder must be its own (or creatable by it), as with the official image.
    mkdir -p "$PGDATA"
    chmod 700 "$PGDATA" 2>/dev/null || true
    if [[ ! -s $PGDATA/PG_VERSION ]]; then
        initialise "${@:2}"
    fi
    serve "$@"
}

main "$@"
