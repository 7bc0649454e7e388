#!/usr/bin/env bash
# One command from a fresh Debian/Ubuntu machine (as root or with sudo): install what is missing, build and
# install ecrm, start a throwaway cluster, load the demo shop and print a tour of what ecrm does.
#
#   bash test/demo.sh                    3,000 customers, seed 42
#   ECRM_DEMO_CUSTOMERS=20000 ECRM_DEMO_SEED=7 bash test/demo.sh
#   ECRM_KEEP=1 bash test/demo.sh        keep the cluster running and print how to connect
#   ECRM_DEMO_ONLINE_RETAIL=../shared/data/online_retail/online_retail_2010-12_to_2011-08.csv.gz bash test/demo.sh
#                                        also load that real shop (UCI Online Retail) into database ecrm_retail
#                                        and show the customer views on it
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$ECRM_TOP"

CUSTOMERS=${ECRM_DEMO_CUSTOMERS:-3000}
SEED=${ECRM_DEMO_SEED:-42}

ecrm_install_deps
ecrm_build_install
ecrm_cluster_start
trap ecrm_cluster_stop EXIT

psql -q -X -v ON_ERROR_STOP=1 -c 'CREATE DATABASE ecrm_demo'
export PGDATABASE=ecrm_demo
psql -q -X -v ON_ERROR_STOP=1 -c 'CREATE EXTENSION ecrm'
ecrm_log "generating the demo shop ($CUSTOMERS customers, seed $SEED)"
psql -X -v ON_ERROR_STOP=1 -c "SELECT * FROM ecrm.generate_demo_data($CUSTOMERS, $SEED)"
for f in test/tour/*.sql; do
    psql -X -v ON_ERROR_STOP=1 -f "$f"
done
if [ -n "${ECRM_DEMO_ONLINE_RETAIL:-}" ]; then
    ecrm_log "loading the Online Retail file into database ecrm_retail"
    psql -q -X -v ON_ERROR_STOP=1 -d postgres -c 'CREATE DATABASE ecrm_retail'
    psql -q -X -v ON_ERROR_STOP=1 -d ecrm_retail -c 'CREATE EXTENSION ecrm'
    bash test/load_online_retail.sh "$ECRM_DEMO_ONLINE_RETAIL" -d ecrm_retail
    psql -X -v ON_ERROR_STOP=1 -d ecrm_retail -f test/tour/00_foundation.sql
fi
if [ "${ECRM_KEEP:-0}" = 1 ]; then
    echo
    echo "The demo cluster keeps running. Connect with:"
    echo "    psql -h $PGHOST -p $PGPORT -U postgres ecrm_demo"
fi
