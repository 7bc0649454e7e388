#!/usr/bin/env bash
# PII discovery on real-looking person records: the FEBRL data set (given name, surname, address,
# postcode, date of birth as YYYYMMDD, social security id), as shipped in ../shared/data/febrl.
# Prints what ecrm.discover_pii reports for each column, with the share of values it recognised.
#
#   bash test/bench/mask_discovery.sh ../shared/data/febrl/dataset2.csv
#
# Starts its own throwaway cluster (test/lib.sh; ECRM_PGROOT honoured).
set -euo pipefail
FILE=$(realpath "${1:?usage: test/bench/mask_discovery.sh FEBRL_CSV}")
. "$(dirname "$0")/../lib.sh"
cd "$ECRM_TOP"
ecrm_build_install
ecrm_cluster_start
trap ecrm_cluster_stop EXIT
q() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }
q -c 'CREATE DATABASE bench'
export PGDATABASE=bench
q -c 'CREATE EXTENSION ecrm'
q -c "CREATE TABLE people (rec_id text, given_name text, surname text, street_number text, address_1 text, address_2 text,
                           suburb text, postcode text, state text, date_of_birth text, soc_sec_id text)"
q -c "\copy people FROM '$FILE' CSV HEADER"
echo "== $FILE: $(psql -X -At -c 'SELECT count(*) FROM people') records"
q -c "SELECT column_name, kind, sampled, matched, share, name_hint, suggested_strategy
        FROM ecrm.discover_pii('people', min_share => 0.3) ORDER BY column_name"
echo "(name_hint: the column's name announces personal data; kind and share: what the values themselves show)"
