#!/usr/bin/env bash
# Long model builds report progress in NOTICEs and can be cancelled (plpgsql cannot catch a cancel, so pgTAP
# cannot test this).  Needs PGHOST/PGPORT/PGUSER of a running cluster with ecrm installed (test/run.sh sets them).
set -uo pipefail
db=ecrm_rec_shell
fail() { echo "FAIL: $*" >&2; psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1; exit 1; }
psql -X -q -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" || fail "cannot create $db"
psql -X -q -d "$db" -c 'CREATE EXTENSION ecrm' || fail "cannot create the extension"

ratings="SELECT c, p, 1 FROM generate_series(1, 300) c, generate_series(1, 20) p WHERE (c + p) % 3 = 0"

# progress at each tenth when ecrm.progress_interval is 0, and the summaries
out=$(psql -X -d "$db" -v ON_ERROR_STOP=1 -c "SET ecrm.progress_interval = 0" \
           -c "SELECT count(*) FROM ecrm.item_knn('$ratings', 5)" \
           -c "SELECT count(*) FROM ecrm.als_train('$ratings', 4, 3)" 2>&1) || fail "builds failed: $out"
for pattern in 'item_knn: [0-9]+ ratings of 300 customers on 20 products' 'item_knn: 50% done \(10 of 20 products' \
               'item_knn: 90% done' 'item_knn: [0-9]+ neighbours of 20 products' \
               'als_train: [0-9]+ ratings of 300 customers on 20 products, 4 factors' 'als_train: [0-9]+% done \([0-9]+ of 960 solves' \
               'als_train: 3 iterations done'; do
    grep -Eq "NOTICE:  $pattern" <<<"$out" || fail "no NOTICE matching \"$pattern\" in: $out"
done
# the default interval (5 s) keeps a quick build quiet apart from its summaries
out=$(psql -X -d "$db" -c "SELECT count(*) FROM ecrm.item_knn('$ratings', 5)" 2>&1)
[ "$(grep -c 'NOTICE' <<<"$out")" = 2 ] || fail "a quick build should print 2 notices: $out"

# cancellation: a statement timeout stops a long build in its C loops, and the session goes on
big="SELECT c, p, 1 FROM generate_series(1, 3000) c, generate_series(1, 800) p"
for call in "ecrm.item_knn('$big', 50)" "ecrm.als_train('$big', 128, 100)"; do
    SECONDS=0
    out=$(psql -X -d "$db" -c "SET statement_timeout = '1s'" -c "SELECT count(*) FROM $call" -c "SELECT 'alive'" 2>&1)
    took=$SECONDS
    grep -q 'canceling statement due to statement timeout' <<<"$out" || fail "$call was not cancelled: $out"
    grep -q 'alive' <<<"$out" || fail "the session did not survive the cancel: $out"
    [ "$took" -lt 20 ] || fail "$call took ${took}s to cancel"
done
psql -X -q -d postgres -c "DROP DATABASE $db" || fail "cannot drop $db"
echo "recommend_progress: ok"
