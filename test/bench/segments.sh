#!/usr/bin/env bash
# Segment benchmark on a throwaway cluster: bash test/bench/segments.sh [rounds] [seconds]
# (ECRM_PGROOT as for test/run.sh). 1,000,000 customers: refresh of rule segments and a real-time order
# (test/bench/segments.sql), then one membership test per statement with pgbench: ecrm.in_segment against
# the plain-SQL lookup in an indexed membership table. Figures vary with the machine's load: every timing
# is repeated and printed as best and median; quote them from a quiet machine.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/per_statement.sh"
cd "$ECRM_TOP"
ROUNDS=${1:-5}
SECONDS_EACH=${2:-5}
ecrm_build_install
ecrm_cluster_start
trap ecrm_cluster_stop EXIT
psql -X -f test/bench/segments.sql
echo
psql -X -At -c "SELECT '== Is customer X in segment gb (' || ecrm.idset_cardinality(members) || ' of 1,000,000 customers, stored set '
                       || pg_size_pretty(pg_column_size(members)::bigint) || ')? One statement per test, random X =='
                  FROM ecrm.segment WHERE name = 'gb'"
per_statement "$ROUNDS" "$SECONDS_EACH" 1 1000000 \
    'empty statement (SELECT :id), for scale' 'SELECT :id::bigint;' \
    'plain SQL: EXISTS in membership table (segment, customer_id)' "SELECT EXISTS (SELECT FROM public.plain_membership WHERE segment = 'gb' AND customer_id = :id);" \
    "ecrm.in_segment(X, 'gb') (name, merge and delta lookups)" "SELECT ecrm.in_segment(:id, 'gb');" \
    'idset: members @> X on the stored set (the kernel alone)' "SELECT ecrm.idset_contains(members, :id::bigint) FROM ecrm.segment WHERE name = 'gb';"
