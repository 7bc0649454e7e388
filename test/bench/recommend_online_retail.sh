#!/usr/bin/env bash
# Recommendation benchmark on real orders: quality against popularity and a Python/scipy item-kNN on one temporal
# split, build and serving speed against their targets and the plain-SQL way.
#
#   bash test/bench/recommend_online_retail.sh [path/to/online_retail_2010-12_to_2011-08.csv.gz]
#
# Starts a throwaway cluster (ECRM_PGROOT honoured), loads the file through ecrm's bulk loader, runs
# recommend_online_retail.py.  Needs python3-psycopg2, python3-numpy and python3-scipy.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
CSV=${1:-$ECRM_TOP/../shared/data/online_retail/online_retail_2010-12_to_2011-08.csv.gz}
[ -f "$CSV" ] || { echo "no such file: $CSV (pass the path of the Online Retail csv.gz)" >&2; exit 2; }
CSV=$(realpath "$CSV")
cd "$ECRM_TOP"
ecrm_build_install
ecrm_cluster_start
trap ecrm_cluster_stop EXIT
psql -X -q -c 'CREATE DATABASE ecrm_bench'
export PGDATABASE=ecrm_bench
psql -X -q -c 'CREATE EXTENSION ecrm'
ecrm_log "loading $CSV"
psql -X -q -v csv="$CSV" -f test/bench/recommend_load_online_retail.sql >/dev/null
/usr/bin/python3 test/bench/recommend_online_retail.py "$CSV"
