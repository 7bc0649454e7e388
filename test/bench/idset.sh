#!/usr/bin/env bash
# idset benchmark on a throwaway cluster: bash test/bench/idset.sh [rounds] [seconds]
# (ECRM_PGROOT as for test/run.sh). Set algebra and sizes (test/bench/idset.sql), then one membership
# test per statement with pgbench against a 1,000,000-id stored set, compared with the plain-SQL lookup.
# Figures vary with the machine's load: every timing is repeated and printed as best and median; quote
# them from a quiet machine.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/per_statement.sh"
cd "$ECRM_TOP"
ROUNDS=${1:-5}
SECONDS_EACH=${2:-5}
ecrm_build_install
ecrm_cluster_start
trap ecrm_cluster_stop EXIT
psql -q -X -c 'CREATE EXTENSION ecrm'
psql -X -f test/bench/idset.sql
echo
echo "== Is id X in set 1 (1,000,000 ids among 0..9,999,999, stored uncompressed out of line: 1.2 MB)? One statement per test, random X =="
per_statement "$ROUNDS" "$SECONDS_EACH" 0 9999999 \
    'empty statement (SELECT :id), for scale' 'SELECT :id::bigint;' \
    'plain SQL: EXISTS in membership table (set_id, customer_id)' 'SELECT EXISTS (SELECT FROM public.bench_member WHERE set_id = 1 AND customer_id = :id);' \
    'idset: ids @> X (reads ~2 kB of the 1.2 MB)' 'SELECT ecrm.idset_contains(ids, :id::bigint) FROM public.bench_set WHERE set_id = 1;' \
    'the same test reading the whole set (as before slicing)' 'SELECT ecrm.idset_is_empty(ecrm.idset_remove(ids, -1 - :id)) FROM public.bench_set WHERE set_id = 1;'
