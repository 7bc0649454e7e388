#!/usr/bin/env bash
# pg_dump of a database using ecrm, restored into a fresh database, keeps every row of user data and the
# id sequences, and the extension works after it. Needs PGHOST/PGPORT/PGUSER (test/run.sh sets them).
set -euo pipefail
BIN=/usr/lib/postgresql/${ECRM_PG_MAJOR:-15}/bin
DUMP=$(mktemp /tmp/ecrm-dump.XXXXXX)
trap 'rm -f "$DUMP"; "$BIN/dropdb" --if-exists ecrm_dump_src; "$BIN/dropdb" --if-exists ecrm_dump_dst' EXIT
q() { "$BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -d "$1" -c "$2"; }

"$BIN/createdb" ecrm_dump_src
q ecrm_dump_src "CREATE EXTENSION ecrm"
q ecrm_dump_src "SELECT count(*) FROM ecrm.generate_demo_data(200, 3, '2026-05-01 00:00:00+00')" >/dev/null
# user changes to configuration tables and a purpose of the user's own
q ecrm_dump_src "INSERT INTO ecrm.consent_purpose VALUES ('loyalty_programme', 'Loyalty programme messages')"
q ecrm_dump_src "INSERT INTO ecrm.sla_policy VALUES ('urgent', '30 minutes', '2 hours')"
q ecrm_dump_src "SELECT ecrm.record_consent(1, 'loyalty_programme', true, '2026-04-01')" >/dev/null
# capabilities' own data: whatever their functions exist for (each line is skipped when it does not)
has() { [ "$(q ecrm_dump_src "SELECT count(*) FROM pg_proc WHERE oid::regprocedure::text LIKE 'ecrm.$1(%'")" != 0 ]; }
if has define_segment; then
    q ecrm_dump_src "SELECT ecrm.define_segment('garden_buyers', '{\"bought\": {\"category\": \"garden\"}}')" >/dev/null
    q ecrm_dump_src "SELECT ecrm.record_interaction(2, 'web', 'page_view', '2026-04-02')" >/dev/null
    echo "ok: a segment defined before the dump"
fi
if has train_match_model; then
    q ecrm_dump_src "SELECT ecrm.train_match_model('customer')" >/dev/null
    echo "ok: the customer match model trained before the dump"
fi
if has create_scoring_model; then
    q ecrm_dump_src "DO \$\$ DECLARE m bigint; BEGIN
        m := ecrm.create_scoring_model('default', half_life => '30 days', max_score => 100, mql_threshold => 40, sql_threshold => 70);
        INSERT INTO ecrm.scoring_rule (model_id, name, kind, group_name, points, field, op, value)
             VALUES (m, 'Works for a company', 'fit', NULL, 15, 'company', 'exists', NULL);
        INSERT INTO ecrm.scoring_rule (model_id, name, kind, group_name, points, source, event_kind, channel, min_count, award, half_life)
             VALUES (m, 'Page views', 'engagement', NULL, 1, 'interaction', 'page_view', 'web', 1, 'each', '14 days');
        PERFORM ecrm.activate_model(m);
      END \$\$"
    echo "ok: an active scoring model before the dump ($(q ecrm_dump_src "SELECT count(*) FROM ecrm.lead_score") scores)"
fi
if has train_item_model; then
    q ecrm_dump_src "SET client_min_messages = warning; SELECT ecrm.train_item_model()" >/dev/null
    q ecrm_dump_src "SET client_min_messages = warning; SELECT ecrm.train_als_model(factors => 4, iterations => 3)" >/dev/null
    echo "ok: item-item and ALS recommendation models trained before the dump"
fi

# One fingerprint per table of user data: row count and an md5 of the sorted rows.
FP="SELECT string_agg(t || ':' || n || ':' || h, E'\n' ORDER BY t) FROM (
      SELECT c.oid::regclass::text AS t,
             (xpath('/row/n/text()', query_to_xml(format('SELECT count(*) AS n FROM %s', c.oid::regclass), false, true, '')))[1]::text AS n,
             (xpath('/row/h/text()', query_to_xml(format('SELECT md5(coalesce(string_agg(x::text, %L ORDER BY x::text), %L)) AS h FROM %s x',
                                                         ',', '', c.oid::regclass), false, true, '')))[1]::text AS h
        FROM pg_class c WHERE c.oid IN (SELECT unnest(extconfig) FROM pg_extension WHERE extname = 'ecrm') AND c.relkind = 'r') f"
before=$(q ecrm_dump_src "$FP")

"$BIN/pg_dump" -Fc -f "$DUMP" ecrm_dump_src
"$BIN/createdb" ecrm_dump_dst
"$BIN/pg_restore" --exit-on-error -d ecrm_dump_dst "$DUMP"
after=$(q ecrm_dump_dst "$FP")

fail=0
if [ "$before" != "$after" ]; then
    echo "FAIL: data differs after restore"; diff <(echo "$before") <(echo "$after") || true; fail=1
else
    echo "ok: $(echo "$before" | wc -l) tables restored identically"
fi
# the restored database keeps working, and ids continue after the restored ones
new_id=$(q ecrm_dump_dst "SELECT ecrm.upsert_customer('{\"first_name\": \"After\", \"email\": \"after.restore@example.org\"}')")
max_before=$(q ecrm_dump_src "SELECT max(customer_id) FROM ecrm.customer_profile")
if [ "$new_id" -gt "$max_before" ]; then echo "ok: new customer id $new_id follows the restored ones"; else echo "FAIL: new id $new_id"; fail=1; fi
q ecrm_dump_dst "SELECT ecrm.record_interaction($new_id, 'web', 'page_view')" >/dev/null && echo "ok: record_interaction after restore" || fail=1
if has create_scoring_model; then
    before_score=$(q ecrm_dump_dst "SELECT score FROM ecrm.lead_score WHERE customer_id = 2")
    q ecrm_dump_dst "SELECT ecrm.record_interaction(2, 'web', 'page_view')" >/dev/null
    after_score=$(q ecrm_dump_dst "SELECT score FROM ecrm.lead_score WHERE customer_id = 2")
    if [ "$after_score" != "$before_score" ]; then echo "ok: real-time scoring works after restore ($before_score -> $after_score)"
    else echo "FAIL: the score did not move after restore ($before_score)"; fail=1; fi
fi
if has train_item_model; then
    for m in item_item als; do
        recs="SELECT string_agg(c || ':' || product_id || ':' || round(score::numeric, 6), ',' ORDER BY c, product_id)
                FROM generate_series(1, 20) c, ecrm.recommend(c, 5, '$m')"
        src_recs=$(q ecrm_dump_src "$recs"); dst_recs=$(q ecrm_dump_dst "$recs")
        if [ -n "$src_recs" ] && [ "$src_recs" = "$dst_recs" ]; then echo "ok: model $m serves the same recommendations after restore"
        else echo "FAIL: model $m serves other recommendations after restore"; fail=1; fi
    done
fi
c360=$(q ecrm_dump_dst "SELECT count(*) FROM ecrm.customer_360")
[ "$c360" -gt 200 ] && echo "ok: customer_360 has $c360 rows" || { echo "FAIL: customer_360 has $c360 rows"; fail=1; }
sla=$(q ecrm_dump_dst "SELECT (ecrm.sla_target('urgent')).first_response")
[ "$sla" = "00:30:00" ] && echo "ok: customised SLA kept" || { echo "FAIL: SLA is $sla"; fail=1; }
exit $fail
