# test/lib.sh — shared by test/run.sh, test/demo.sh and the benchmarks (source it, do not run it).
#
# ecrm_install_deps     apt-get install what is missing (as root or with sudo)
# ecrm_build_install    build and install ecrm (into $ECRM_PGROOT when set)
# ecrm_cluster_start    start a throwaway cluster on a private socket; exports PGHOST, PGPORT, PGUSER
# ecrm_cluster_stop     stop it and remove its directory (unless ECRM_KEEP=1)
#
# ECRM_PGROOT=/some/dir uses a private copy of PostgreSQL under that directory (made on first use),
# so several builds can be installed and tested side by side without touching the system's.

ECRM_PG_MAJOR=${ECRM_PG_MAJOR:-15}
ECRM_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ECRM_APT_PACKAGES="make gcc libc6-dev postgresql-$ECRM_PG_MAJOR postgresql-server-dev-$ECRM_PG_MAJOR
  postgresql-contrib postgresql-$ECRM_PG_MAJOR-pgtap libtap-parser-sourcehandler-pgtap-perl libroaring-dev
  python3-psycopg2 gzip libssl-dev"

ecrm_log() { printf '== %s\n' "$*" >&2; }

ecrm_sudo() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

ecrm_install_deps() {
    local missing="" p
    for p in $ECRM_APT_PACKAGES; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
    done
    if [ -n "$missing" ]; then
        ecrm_log "installing:$missing"
        ecrm_sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
        # All of them, not only the missing ones: installing the headers alone could leave an older server
        # behind them (a setting flag such as GUC_ALLOW_IN_PARALLEL exists only from 15.20 on).
        # shellcheck disable=SC2086
        ecrm_sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $ECRM_APT_PACKAGES >&2
    fi
}

ecrm_sys_bindir() { echo "/usr/lib/postgresql/$ECRM_PG_MAJOR/bin"; }

# The bin directory of the server we test: the private root's copy, or the system's.
ecrm_bindir() {
    if [ -n "${ECRM_PGROOT:-}" ]; then
        echo "$ECRM_PGROOT/usr/lib/postgresql/$ECRM_PG_MAJOR/bin"
    else
        ecrm_sys_bindir
    fi
}

ecrm_private_root() {
    [ -n "${ECRM_PGROOT:-}" ] || return 0
    if [ ! -x "$ECRM_PGROOT/usr/lib/postgresql/$ECRM_PG_MAJOR/bin/postgres" ]; then
        ecrm_log "making a private PostgreSQL copy in $ECRM_PGROOT"
        mkdir -p "$ECRM_PGROOT/usr/lib/postgresql" "$ECRM_PGROOT/usr/share/postgresql"
        cp -a "/usr/lib/postgresql/$ECRM_PG_MAJOR" "$ECRM_PGROOT/usr/lib/postgresql/"
        cp -a "/usr/share/postgresql/$ECRM_PG_MAJOR" "$ECRM_PGROOT/usr/share/postgresql/"
        chmod -R a+rX "$ECRM_PGROOT"
    fi
}

ecrm_build_install() {
    ecrm_private_root
    ecrm_log "building ecrm"
    make -C "$ECRM_TOP" -s -j2 PG_CONFIG="$(ecrm_sys_bindir)/pg_config" >&2
    if [ -n "${ECRM_PGROOT:-}" ]; then
        make -C "$ECRM_TOP" -s install PG_CONFIG="$(ecrm_sys_bindir)/pg_config" DESTDIR="$ECRM_PGROOT" >&2
    else
        ecrm_sudo make -C "$ECRM_TOP" -s install PG_CONFIG="$(ecrm_sys_bindir)/pg_config" >&2
    fi
}

# Run a command as the cluster's owner.
ecrm_as_owner() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

ecrm_cluster_start() {
    local bindir extra
    bindir=$(ecrm_bindir)
    ECRM_CLUSTER_DIR=$(mktemp -d "${TMPDIR:-/tmp}/ecrm-pg.XXXXXX")
    chmod 755 "$ECRM_CLUSTER_DIR"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$ECRM_CLUSTER_DIR"
    ecrm_as_owner "$bindir/initdb" -D "$ECRM_CLUSTER_DIR/data" -U postgres -A trust \
        --encoding=UTF8 --locale=C.UTF-8 >"$ECRM_CLUSTER_DIR/initdb.log" 2>&1 \
        || { cat "$ECRM_CLUSTER_DIR/initdb.log" >&2; return 1; }
    extra=${ECRM_PG_OPTIONS:-}
    ecrm_as_owner "$bindir/pg_ctl" -D "$ECRM_CLUSTER_DIR/data" -l "$ECRM_CLUSTER_DIR/server.log" -w \
        -o "-k $ECRM_CLUSTER_DIR -p 5432 -c listen_addresses='' -c fsync=off -c synchronous_commit=off \
            -c full_page_writes=off -c max_wal_size=4GB -c shared_buffers=512MB -c work_mem=64MB \
            -c maintenance_work_mem=512MB -c max_parallel_workers_per_gather=2 \
            -c log_min_error_statement=panic $extra" start >/dev/null \
        || { cat "$ECRM_CLUSTER_DIR/server.log" >&2; return 1; }
    export PGHOST=$ECRM_CLUSTER_DIR PGPORT=5432 PGUSER=postgres PGDATABASE=postgres
    ecrm_log "cluster running: psql -h $PGHOST -p $PGPORT -U $PGUSER"
}

ecrm_cluster_stop() {
    [ -n "${ECRM_CLUSTER_DIR:-}" ] || return 0
    if [ "${ECRM_KEEP:-0}" = 1 ]; then
        ecrm_log "cluster kept: psql -h $ECRM_CLUSTER_DIR -p 5432 -U postgres"
        ecrm_log "stop it with: $(ecrm_bindir)/pg_ctl -D $ECRM_CLUSTER_DIR/data stop"
        return 0
    fi
    ecrm_as_owner "$(ecrm_bindir)/pg_ctl" -D "$ECRM_CLUSTER_DIR/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$ECRM_CLUSTER_DIR"
    ECRM_CLUSTER_DIR=
}
