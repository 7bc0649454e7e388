#!/usr/bin/env bash
# Kernels against their contrib peers, one run, interleaved and repeated (see test/bench/kernels.sql):
#   ecrm.pseudonym (HMAC-SHA256) vs md5 and unkeyed sha256; damerau_levenshtein vs fuzzystrmatch
#   levenshtein; damerau_levenshtein(a, b, 2) vs levenshtein_less_equal(a, b, 2) and vs the unbounded form.
#
#   bash test/bench/kernels.sh [ROWS [ROUNDS]]        (defaults 1,000,000 and 7)
#
# Starts its own throwaway cluster (test/lib.sh; ECRM_PGROOT honoured), prints the load average before and
# after: the machine may be shared, so quote the ratios (steadier than the times) with the load.
set -euo pipefail
ROWS=${1:-1000000}
ROUNDS=${2:-7}
. "$(dirname "$0")/../lib.sh"
cd "$ECRM_TOP"
ecrm_build_install
ecrm_cluster_start
trap ecrm_cluster_stop EXIT
q() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }
q -c 'CREATE DATABASE bench'
export PGDATABASE=bench
q -c 'CREATE EXTENSION ecrm'
q -c "LOAD 'ecrm'" -c "ALTER SYSTEM SET ecrm.pseudonym_key = 'benchmark-key-0123456789abcdef'" -c "SELECT pg_reload_conf()" >/dev/null
echo "== $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== bash test/bench/kernels.sh $ROWS $ROUNDS"
q -v rows="$ROWS" -v rounds="$ROUNDS" -f test/bench/kernels.sql
echo "== load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
