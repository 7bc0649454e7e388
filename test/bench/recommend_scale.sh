#!/usr/bin/env bash
# Synthetic scale run of the recommendation kernels: time and peak memory of an item-item build and of ALS
# training on a large rating matrix, within a stated memory bound (maintenance_work_mem).
#
#   bash test/bench/recommend_scale.sh [customers] [products] [interactions] [als_factors] [als_iterations]
#   (defaults 1000000 100000 20000000 64 15; ECRM_PGROOT honoured; needs ~3 GB of disk and ~2.5 GB of RAM)
#
# The data: each customer belongs to one of 100 taste groups; a product is drawn from a Zipf-like popularity
# (u^3) shifted by the group, so popular products are shared and groups have their own neighbourhoods.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
CUSTOMERS=${1:-1000000}
PRODUCTS=${2:-100000}
INTERACTIONS=${3:-20000000}
FACTORS=${4:-64}
ITERATIONS=${5:-15}
MEM=${ECRM_BENCH_MEM:-2GB}
cd "$ECRM_TOP"
ecrm_build_install
ecrm_cluster_start
trap ecrm_cluster_stop EXIT
psql -X -q -c 'CREATE DATABASE ecrm_scale'
export PGDATABASE=ecrm_scale
psql -X -q -c 'CREATE EXTENSION ecrm'

ecrm_log "generating $INTERACTIONS interactions of $CUSTOMERS customers on $PRODUCTS products"
SECONDS=0
psql -X -q -v ON_ERROR_STOP=1 <<SQL
CREATE UNLOGGED TABLE scale_ratings (customer_id bigint, product_id bigint, weight double precision);
INSERT INTO scale_ratings
SELECT c, 1 + (floor($PRODUCTS * power(random(), 3))::bigint + (c % 100) * 997) % $PRODUCTS, 1
  FROM (SELECT 1 + floor(random() * $CUSTOMERS)::bigint AS c FROM generate_series(1, $INTERACTIONS)) g;
ANALYZE scale_ratings;
SQL
echo "generated in ${SECONDS}s"

# Run one statement in a backend whose anonymous memory (RssAnon) we sample, and print time and peaks.
measure() {
    local label=$1 sql=$2 pidfile out peak=0 rss pid
    pidfile=$(mktemp) out=$(mktemp)
    psql -X -q -t -A -v ON_ERROR_STOP=1 >"$out" 2>&1 <<SQL &
SET maintenance_work_mem = '$MEM';
SET ecrm.progress_interval = 30;
\o $pidfile
SELECT pg_backend_pid();
\o
SELECT pg_sleep(0.5);
\timing on
$sql
\timing off
SELECT 'kernel', customers, products, ratings, round(peak_bytes / 1048576.0), round(seconds::numeric, 1) FROM ecrm._rec_last_build();
SQL
    local job=$!
    while [ ! -s "$pidfile" ]; do sleep 0.1; done
    pid=$(tr -d ' \n' <"$pidfile")
    while kill -0 "$job" 2>/dev/null; do
        rss=$(awk '/^RssAnon:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
        [ -n "$rss" ] && [ "$rss" -gt "$peak" ] && peak=$rss
        sleep 0.2
    done
    wait "$job" || { cat "$out"; exit 1; }
    echo "== $label"
    grep -E 'NOTICE|Time:' "$out" | sed 's/^/   /'
    awk -F'|' '/^kernel/ {printf "   kernel: %s customers, %s products, %s ratings; accounted peak %s MB\n", $2, $3, $4, $5}' "$out"
    echo "   backend peak anonymous memory (RssAnon, sampled every 0.2 s): $((peak / 1024)) MB"
    rm -f "$pidfile" "$out"
}

measure "item-item build: top-30 neighbours of every product (ecrm.item_knn), written as one row per product" "
CREATE UNLOGGED TABLE scale_neighbors AS
SELECT product_id, array_agg(neighbor_id ORDER BY rank) AS neighbor_ids, array_agg(similarity::real ORDER BY rank) AS similarities
  FROM ecrm.item_knn('SELECT customer_id, product_id, weight FROM scale_ratings', 30, 0, 0.4, 0.5)
 GROUP BY product_id;"
psql -X -q -t -A -c "SELECT 'neighbour rows: ' || count(*) || ', neighbours: ' || sum(cardinality(neighbor_ids)) FROM scale_neighbors"

measure "ALS: $FACTORS factors, $ITERATIONS iterations (conjugate gradient, 3 steps), factors written to a table" "
CREATE UNLOGGED TABLE scale_factors AS
SELECT * FROM ecrm.als_train('SELECT customer_id, product_id, weight FROM scale_ratings', $FACTORS, $ITERATIONS, 10, 2);"
psql -X -q -t -A -c "SELECT 'factor rows: ' || count(*) FROM scale_factors"
echo "memory bound: maintenance_work_mem = $MEM (the kernels refuse to exceed it: SQLSTATE 54000)"
