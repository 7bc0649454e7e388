#!/usr/bin/env bash
# Identity-resolution benchmarks (issue 4), on a throwaway cluster:
#   1. FEBRL dataset1 and dataset2: precision, recall and F1 of a model trained by EM without labels
#   2. comparisons per second: ecrm.jaro_winkler / damerau_levenshtein against fuzzystrmatch levenshtein()
#   3. dedupe of N synthetic profiles end to end (default 1,000,000 people, ~1.14M profiles), with the
#      backend's peak memory, temp files written, and precision/recall against the generator's truth
#   4. resolving one profile against them: p50/p95/p99 of ecrm.find_matches and of upsert_customer
#
#   bash test/bench/matching.sh [path/to/febrl]        (default ../shared/data/febrl when present)
#   ECRM_BENCH_PEOPLE=100000 bash test/bench/matching.sh   a smaller run
#
# Figures are wall-clock times on whatever else the machine is doing: run it on a quiet machine.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
cd "$ECRM_TOP"

FEBRL=${1:-$ECRM_TOP/../shared/data/febrl}
PEOPLE=${ECRM_BENCH_PEOPLE:-1000000}
PROBES=${ECRM_BENCH_PROBES:-1000}

ecrm_install_deps
ecrm_build_install
ecrm_cluster_start
trap ecrm_cluster_stop EXIT
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"

if [ -f "$FEBRL/dataset2.csv" ]; then
    psql -q -X -c 'CREATE DATABASE bench_febrl'
    psql -q -X -d bench_febrl -c 'CREATE EXTENSION ecrm'
    for d in dataset1 dataset2; do
        psql -X -d bench_febrl -v file="$FEBRL/$d.csv" -v name="$d" -f test/bench/matching_febrl.sql \
            | grep -v '^ drop_match_model\|^------------------$\|^ *$\|^(1 row)$'
    done
else
    echo "FEBRL data not found at $FEBRL: skipping the accuracy benchmark"
fi

psql -q -X -c 'CREATE DATABASE bench_sim'
psql -q -X -d bench_sim -c 'CREATE EXTENSION ecrm'
psql -X -d bench_sim -f test/bench/matching_similarity.sql

psql -q -X -c 'CREATE DATABASE bench_dedupe'
psql -q -X -d bench_dedupe -c 'CREATE EXTENSION ecrm'
echo
echo "== generating $PEOPLE people (test/bench/matching_gen.sql)"
start=$(date +%s.%N)
psql -X -q -d bench_dedupe -v n="$PEOPLE" -f test/bench/matching_gen.sql
echo "generated in $(echo "$(date +%s.%N) - $start" | bc) s"

echo
echo "== dedupe of every profile (ecrm.dedupe: features, blocking, comparison, scores, clusters, review queue)"
cat > /tmp/ecrm-bench-dedupe.$$.sql <<'EOF'
\pset tuples_only on
\pset format unaligned
\o /tmp/ecrm-bench-pid
SELECT pg_backend_pid();
\o
\pset tuples_only off
\pset format aligned
SELECT temp_bytes AS temp0 FROM pg_stat_database WHERE datname = current_database() \gset
SET client_min_messages = debug1;
SELECT * FROM ecrm.dedupe();
RESET client_min_messages;
SELECT pg_size_pretty(temp_bytes - :temp0) AS temp_files_written FROM pg_stat_database WHERE datname = current_database();
EOF
psql -X -d bench_dedupe -f /tmp/ecrm-bench-dedupe.$$.sql >/tmp/ecrm-bench-dedupe.$$.out 2>&1 &
client=$!
sleep 1
pid=$(tr -dc 0-9 </tmp/ecrm-bench-pid)
peak=0
while kill -0 "$client" 2>/dev/null; do
    hwm=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
    [ "${hwm:-0}" -gt "$peak" ] && peak=$hwm
    sleep 0.5
done
grep -v 'DEBUG:  \(relation\|building\|index\|rehash\)' /tmp/ecrm-bench-dedupe.$$.out | sed 's/^psql:[^ ]* //'
echo "peak resident memory of the backend: $((peak / 1024)) MB (VmHWM; includes the shared buffers it touched)"
rm -f /tmp/ecrm-bench-dedupe.$$.sql /tmp/ecrm-bench-dedupe.$$.out /tmp/ecrm-bench-pid

psql -X -d bench_dedupe <<'EOF'
\pset footer off
\echo
\echo == accuracy of the dedupe against the truth of the generator (pairs of profiles of one person)
CREATE TEMP TABLE truth AS
SELECT a.customer_id AS id_l, b.customer_id AS id_r FROM ecrm.customer_profile a
  JOIN ecrm.customer_profile b ON a.attributes ->> 'person' = b.attributes ->> 'person' AND a.customer_id < b.customer_id;
CREATE TEMP TABLE found AS
SELECT a.customer_id AS id_l, b.customer_id AS id_r FROM ecrm.dedupe_cluster a
  JOIN ecrm.dedupe_cluster b ON a.run_id = b.run_id AND a.cluster_id = b.cluster_id AND a.customer_id < b.customer_id;
SELECT (SELECT count(*) FROM truth) AS true_pairs, count(*) AS auto_merge_pairs, count(t.id_l) AS correct,
       round(count(t.id_l)::numeric / nullif(count(*), 0), 4) AS precision,
       round(count(t.id_l)::numeric / (SELECT count(*) FROM truth), 4) AS recall,
       (SELECT count(*) FROM ecrm.match_candidate c JOIN truth t ON t.id_l = c.customer_id AND t.id_r = c.other_id) AS true_pairs_in_review,
       (SELECT count(*) FROM ecrm.match_candidate) AS review_pairs
  FROM found f LEFT JOIN truth t USING (id_l, id_r);
EOF

psql -X -d bench_dedupe -v probes="$PROBES" -f test/bench/matching_resolve.sql
