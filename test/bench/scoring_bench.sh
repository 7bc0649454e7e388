#!/usr/bin/env bash
# Lead scoring benchmarks on a throwaway cluster (see test/bench/README-scoring.md):
#   bash test/bench/scoring_bench.sh [path/to/bank-full-train.csv.gz]
# Prints the Bank Marketing comparison with scikit-learn and the speed figures of scoring_speed.sql.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
cd "$ECRM_TOP"
BANK=${1:-$ECRM_TOP/../shared/data/bank_marketing/bank-full-train.csv.gz}

ecrm_build_install
ecrm_cluster_start
trap ecrm_cluster_stop EXIT
psql -q -X -c 'CREATE DATABASE ecrm_bench'
export PGDATABASE=ecrm_bench
psql -q -X -c 'CREATE EXTENSION ecrm'
echo "== Bank Marketing: ecrm.logreg_train vs scikit-learn"
/usr/bin/python3 test/bench/scoring_bank.py "$BANK" || echo "(a target was missed)"
psql -X -f test/bench/scoring_speed.sql
