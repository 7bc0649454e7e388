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

echo "== 3b. recording one interaction: pgbench, 1 client, ${SECONDS_EACH} s per run, the rules model active vs no active model"
PGBENCH="$(ecrm_bindir)/pgbench"
latency() { "$PGBENCH" -n -M prepared -c 1 -T "$SECONDS_EACH" -f test/bench/scoring_record.pgbench 2>&1 \
              | sed -n 's/^latency average = \([0-9.]*\) ms$/\1/p'; }
MODEL=$(psql -X -At -c "SELECT ecrm.lead_score_model_id()")
with=(); without=()
for round in 1 2 3; do
    with+=("$(latency)")
    psql -X -q -c "SELECT ecrm.retire_model($MODEL)" >/dev/null
    without+=("$(latency)")
    psql -X -q -c "SELECT ecrm.activate_model($MODEL)" -c "VACUUM ANALYZE ecrm.lead_score" >/dev/null
    echo "round $round: with an active model ${with[-1]} ms, without ${without[-1]} ms"
done
/usr/bin/python3 - "${with[*]}" "${without[*]}" <<'PY'
import statistics, sys
w = [float(x) for x in sys.argv[1].split()]
o = [float(x) for x in sys.argv[2].split()]
print(f"median latency: with an active model {statistics.median(w):.3f} ms, without {statistics.median(o):.3f} ms, "
      f"ratio {statistics.median(w) / statistics.median(o):.2f}")
PY
psql -X -f test/bench/scoring_leads.sql
