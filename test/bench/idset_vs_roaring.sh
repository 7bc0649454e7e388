#!/usr/bin/env bash
# idset against pg_roaringbitmap, side by side: bash test/bench/idset_vs_roaring.sh [rounds] [plain_sql_rounds]
# (ECRM_PGROOT as for test/run.sh). Builds ../shared/deps/pg_roaringbitmap (its README: untar, make, make
# install, here into $ECRM_PGROOT) when it can; then union, difference, intersection (built) and intersection
# size of two 1M-id sets, sparse and dense, and of two 1.6M-id periodic sets (which pglz compresses 80x),
# each stored with its type's DEFAULT storage (idset: external since 0.1.x; roaringbitmap: external), timed
# interleaved in the same run (test/bench/idset_vs_roaring.sql). Without pg_roaringbitmap only the plain-SQL
# comparisons run. Then the periodic pair once more with idset stored compressed (STORAGE EXTENDED, 0.1.0's
# default), to show what a decompression pass costs. The load average is printed before and after: quote
# figures with it.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
cd "$ECRM_TOP"
ROUNDS=${1:-21}
PLAIN_ROUNDS=${2:-3}
ecrm_build_install
PRB_SRC=${PRB_SRC:-$ECRM_TOP/../shared/deps/pg_roaringbitmap/pg_roaringbitmap-src.tar.xz}
[ -f "$PRB_SRC" ] || PRB_SRC=/work/shared/deps/pg_roaringbitmap/pg_roaringbitmap-src.tar.xz
have_rb=0
if [ -f "$PRB_SRC" ]; then
    prb=$(mktemp -d)
    ecrm_log "building pg_roaringbitmap from $PRB_SRC"
    if tar -C "$prb" -xJf "$PRB_SRC" \
        && make -s -C "$prb/pg_roaringbitmap" PG_CONFIG="$(ecrm_sys_bindir)/pg_config" >"$prb/build.log" 2>&1 \
        && if [ -n "${ECRM_PGROOT:-}" ]; then
               make -s -C "$prb/pg_roaringbitmap" install DESTDIR="$ECRM_PGROOT" PG_CONFIG="$(ecrm_sys_bindir)/pg_config"
           else
               ecrm_sudo make -s -C "$prb/pg_roaringbitmap" install PG_CONFIG="$(ecrm_sys_bindir)/pg_config"
           fi >>"$prb/build.log" 2>&1; then
        have_rb=1
        rm -rf "$prb"
    else
        ecrm_log "pg_roaringbitmap did not build (see $prb/build.log): plain-SQL comparisons only"
    fi
else
    ecrm_log "no pg_roaringbitmap source at $PRB_SRC: plain-SQL comparisons only"
fi
ecrm_cluster_start
trap ecrm_cluster_stop EXIT
psql -q -X -c 'CREATE EXTENSION ecrm'
if [ "$have_rb" = 1 ] && ! psql -q -X -c 'CREATE EXTENSION roaringbitmap' 2>/dev/null; then
    ecrm_log "CREATE EXTENSION roaringbitmap failed: plain-SQL comparisons only"
    have_rb=0
fi
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) cores); rounds $ROUNDS, plain SQL $PLAIN_ROUNDS"
psql -X -v rounds="$ROUNDS" -v plain_rounds="$PLAIN_ROUNDS" -v have_rb="$have_rb" -f test/bench/idset_vs_roaring.sql
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
