#!/usr/bin/env bash
# Lead scoring benchmarks on a throwaway cluster:
#   bash test/bench/scoring_bench.sh [path/to/bank-full-train.csv.gz]
# Prints the Bank Marketing comparison with scikit-learn, the speed figures of scoring_speed.sql,
# recording interactions with and without an active model (pgbench, scoring_record.pgbench), and the
# leads view (scoring_leads.sql).  BENCH_SECONDS (default 15) is the length of each pgbench run.
# The cluster gets shared_buffers = 2GB so the 5M interactions (about 1 GB with indexes) stay in memory.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
cd "$ECRM_TOP"
BANK=${1:-$ECRM_TOP/../shared/data/bank_marketing/bank-full-train.csv.gz}

export ECRM_PG_OPTIONS="${ECRM_PG_OPTIONS:-} -c shared_buffers=2GB"
SECONDS_EACH=${BENCH_SECONDS:-15}
ecrm_build_install
ecrm_cluster_start
trap ecrm_cluster_stop EXIT
psql -q -X -c 'CREATE DATABASE ecrm_bench'
export PGDATABASE=ecrm_bench
psql -q -X -c 'CREATE EXTENSION ecrm'
echo "== Bank Marketing: ecrm.logreg_train vs scikit-learn"
/usr/bin/python3 test/bench/scoring_bank.py "$BANK" || echo "(a target was missed)"
psql -X -f test/bench/scoring_speed.sql

echo "== 3b. recording one interaction: pgbench, 1 client, ${SECONDS_EACH} s per run"
PGBENCH="$(ecrm_bindir)/pgbench"
latency() { "$PGBENCH" -n -M prepared -c 1 -T "$SECONDS_EACH" -f test/bench/scoring_record.pgbench 2>&1 \
              | sed -n 's/^latency average = \([0-9.]*\) ms$/\1/p'; }
median() { /usr/bin/python3 -c 'import statistics, sys; print(f"{statistics.median(map(float, sys.argv[1:])):.3f}")' "$@"; }
ratio() { /usr/bin/python3 -c 'import sys; print(f"{float(sys.argv[1]) / float(sys.argv[2]):.2f}")' "$1" "$2"; }
RULES=$(psql -X -At -c "SELECT ecrm.lead_score_model_id()")
with=(); without=()
for round in 1 2 3; do
    with+=("$(latency)")
    psql -X -q -c "SELECT ecrm.retire_model($RULES)" >/dev/null
    without+=("$(latency)")
    psql -X -q -c "SELECT ecrm.activate_model($RULES)" -c "VACUUM ANALYZE ecrm.lead_score" >/dev/null
    echo "round $round: the rules model active ${with[-1]} ms, no active model ${without[-1]} ms"
done
echo "median: the rules model active $(median "${with[@]}") ms, no active model $(median "${without[@]}") ms," \
     "ratio $(ratio "$(median "${with[@]}")" "$(median "${without[@]}")")"

echo "== 3c. the same with a predictive model active too (trained on a 10% sample, a synthetic label)"
PREDICTIVE=$(psql -X -q -At <<'SQL'
SET client_min_messages = warning;
CREATE TABLE bench_train AS SELECT * FROM ecrm.lead_features_at(now() - interval '90 days') WHERE customer_id % 10 = 0;
UPDATE bench_train SET converted = abs(hashint8(customer_id)) % 4 = 0 OR sales_90d > 1;
SELECT ecrm.train_lead_model('conversion', 'bench_train', exclude => '{orders,revenue,days_since_last_order}');
SQL
)
both=(); rules=()
for round in 1 2; do
    psql -X -q -c "SELECT ecrm.activate_model($PREDICTIVE)" -c "VACUUM ANALYZE ecrm.lead_score" >/dev/null
    both+=("$(latency)")
    psql -X -q -c "SELECT ecrm.retire_model($PREDICTIVE)" -c "VACUUM ANALYZE ecrm.lead_score" >/dev/null
    rules+=("$(latency)")
    echo "round $round: both models active ${both[-1]} ms, the rules model only ${rules[-1]} ms"
done
echo "median: both models $(median "${both[@]}") ms, the rules model only $(median "${rules[@]}") ms," \
     "ratio to no active model $(ratio "$(median "${both[@]}")" "$(median "${without[@]}")")"
psql -X -q -c "SELECT ecrm.activate_model($PREDICTIVE)" >/dev/null   # the leads view shows both
psql -X -f test/bench/scoring_leads.sql
