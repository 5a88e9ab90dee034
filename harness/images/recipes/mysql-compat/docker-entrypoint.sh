#!/bin/bash
# Entrypoint of stageproof's mysql-compat image: the environment contract of the official
# mysql:8.4 image, implemented on Debian's MariaDB.
#
# On first start (no /var/lib/mysql/mysql yet) it creates the system tables, the root account
# (MYSQL_ROOT_PASSWORD, MYSQL_ALLOW_EMPTY_PASSWORD or MYSQL_RANDOM_ROOT_PASSWORD, reachable from
# MYSQL_ROOT_HOST, default '%'), MYSQL_DATABASE, MYSQL_USER/MYSQL_PASSWORD with every privilege on
# that database, runs /docker-entrypoint-initdb.d/*.sh|*.sql|*.sql.gz, then serves. Every
# MYSQL_* variable may instead be read from a file named by MYSQL_*_FILE (Docker/k8s secrets).
set -Eeuo pipefail

DATADIR=/var/lib/mysql
SOCKET=/run/mysqld/mysqld.sock
INITDB=/docker-entrypoint-initdb.d

log() { printf '%s [entrypoint] %s\n' "$(date -u +%FT%TZ)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# file_env VAR: VAR from $VAR, or from the file named by $VAR_FILE (not both).
file_env() {
    local var=$1 file_var="${1}_FILE"
    if [[ -n ${!var:-} && -n ${!file_var:-} ]]; then
        die "both $var and $file_var are set; use one"
    fi
    if [[ -n ${!file_var:-} ]]; then
        export "$var"="$(<"${!file_var}")"
    fi
    unset "$file_var"
}

# sql_string TEXT: TEXT as a single-quoted SQL literal.
sql_string() {
    local s=${1//\\/\\\\}
    printf "'%s'" "${s//\'/\'\'}"
}

# sql_ident NAME: NAME as a backquoted SQL identifier.
sql_ident() {
    printf '`%s`' "${1//\`/\`\`}"
}

# Map the official image's command names onto MariaDB's; options alone go to the server.
server_command() {
    if [[ $# -eq 0 || ${1:0:1} == "-" ]]; then
        set -- mariadbd "$@"
    fi
    case $1 in
        mysqld | mariadbd) shift; set -- mariadbd "$@" ;;
    esac
    printf '%s\0' "$@"
}

check_environment() {
    for var in MYSQL_ROOT_PASSWORD MYSQL_ALLOW_EMPTY_PASSWORD MYSQL_RANDOM_ROOT_PASSWORD \
        MYSQL_ROOT_HOST MYSQL_DATABASE MYSQL_USER MYSQL_PASSWORD; do
        file_env "$var"
    done
    if [[ -z ${MYSQL_ROOT_PASSWORD:-} && -z ${MYSQL_ALLOW_EMPTY_PASSWORD:-} && -z ${MYSQL_RANDOM_ROOT_PASSWORD:-} ]]; then
        die "database is uninitialized and no root password option is set:
    set one of MYSQL_ROOT_PASSWORD, MYSQL_ALLOW_EMPTY_PASSWORD or MYSQL_RANDOM_ROOT_PASSWORD"
    fi
    if [[ ${MYSQL_USER:-} == root ]]; then
        die "MYSQL_USER=root is not allowed: root is configured by MYSQL_ROOT_PASSWORD"
    fi
    if [[ -n ${MYSQL_USER:-} && -z ${MYSQL_PASSWORD:-} ]]; then
        die "MYSQL_USER is set but MYSQL_PASSWORD is not"
    fi
}

start_temporary_server() {
    "$@" --skip-networking --socket="$SOCKET" --datadir="$DATADIR" &
    TEMP_PID=$!
    for _ in $(seq 1 300); do
        if mariadb --protocol=socket --socket="$SOCKET" -uroot -e 'SELECT 1' >/dev/null 2>&1; then
            return
        fi
        kill -0 "$TEMP_PID" 2>/dev/null || die "the temporary server exited during initialisation"
        sleep 0.1
    done
    die "the temporary server did not answer within 30s"
}

stop_temporary_server() {
    kill -TERM "$TEMP_PID"
    wait "$TEMP_PID" || die "the temporary server did not shut down cleanly"
}

# client [ARGS...]: the mariadb client on the temporary server, as root, before root has a password.
client() {
    mariadb --protocol=socket --socket="$SOCKET" -uroot "$@"
}

accounts_sql() {
    local root_pw root_host=${MYSQL_ROOT_HOST:-%}
    if [[ -n ${MYSQL_RANDOM_ROOT_PASSWORD:-} ]]; then
        MYSQL_ROOT_PASSWORD=$(tr -dc 'A-Za-z0-9' </dev/urandom | head -c 32)
        log "GENERATED ROOT PASSWORD: $MYSQL_ROOT_PASSWORD"
    fi
    root_pw=$(sql_string "${MYSQL_ROOT_PASSWORD:-}")
    cat <<-EOSQL
	DELETE FROM mysql.global_priv WHERE User = '' OR (User = 'root' AND Host NOT IN ('localhost'));
	DELETE FROM mysql.proxies_priv WHERE Host NOT IN ('localhost');
	FLUSH PRIVILEGES;
	ALTER USER 'root'@'localhost' IDENTIFIED BY ${root_pw};
	EOSQL
    if [[ $root_host != localhost ]]; then
        cat <<-EOSQL
		CREATE USER 'root'@$(sql_string "$root_host") IDENTIFIED BY ${root_pw};
		GRANT ALL ON *.* TO 'root'@$(sql_string "$root_host") WITH GRANT OPTION;
		EOSQL
    fi
    if [[ -n ${MYSQL_DATABASE:-} ]]; then
        echo "CREATE DATABASE IF NOT EXISTS $(sql_ident "$MYSQL_DATABASE");"
    fi
    if [[ -n ${MYSQL_USER:-} ]]; then
        echo "CREATE USER $(sql_string "$MYSQL_USER")@'%' IDENTIFIED BY $(sql_string "$MYSQL_PASSWORD");"
        if [[ -n ${MYSQL_DATABASE:-} ]]; then
            echo "GRANT ALL ON $(sql_ident "$MYSQL_DATABASE").* TO $(sql_string "$MYSQL_USER")@'%';"
        fi
    fi
    echo "FLUSH PRIVILEGES;"
}

run_init_scripts() {
    local db_args=()
    [[ -n ${MYSQL_DATABASE:-} ]] && db_args=("$MYSQL_DATABASE")
    local script
    shopt -s nullglob
    for script in "$INITDB"/*; do
        case $script in
            *.sh) log "running $script"; if [[ -x $script ]]; then "$script"; else . "$script"; fi ;;
            *.sql) log "running $script"; client --password="$MYSQL_ROOT_PASSWORD" "${db_args[@]}" <"$script" ;;
            *.sql.gz) log "running $script"; gunzip -c "$script" | client --password="$MYSQL_ROOT_PASSWORD" "${db_args[@]}" ;;
            *.sql.xz) log "running $script"; xz -dc "$script" | client --password="$MYSQL_ROOT_PASSWORD" "${db_args[@]}" ;;
            *) log "ignoring $script" ;;
        esac
    done
}

initialise() {
    check_environment
    log "initialising the database in $DATADIR"
    mariadb-install-db --datadir="$DATADIR" --auth-root-authentication-method=normal \
        --skip-test-db --skip-name-resolve --rpm >/dev/null
    start_temporary_server "$@"
    accounts_sql | client
    run_init_scripts
    stop_temporary_server
    log "initialisation done; starting the server"
}

main() {
    local cmd=()
    mapfile -d '' cmd < <(server_command "$@")
    if [[ ${cmd[0]} != mariadbd ]]; then
        exec "${cmd[@]}"
    fi
    if [[ $(id -u) -eq 0 ]]; then
        # Like the official image: fix ownership of a fresh volume, then drop to the mysql user.
        chown -R mysql:mysql "$DATADIR" /run/mysqld
        exec setpriv --reuid=mysql --regid=mysql --init-groups "$0" "${cmd[@]}"
    fi
    if [[ ! -d $DATADIR/mysql ]]; then
        initialise "${cmd[@]}"
    fi
    exec "${cmd[@]}"
}

main "$@"
