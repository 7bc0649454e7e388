#!/usr/bin/env bash
# A backup restores exactly, whatever the shop went through.  A scripted life of a shop (demo data, ingest by
# upsert and by load_staged, orders, consents, tickets, merges, an unmerge, two erasures, rules and predictive
# lead models, segments, recommendation models, automation with a worker draining the outbox, privacy
# configuration, a match model and a dedupe run), then pg_dump / pg_restore in the custom, directory (--jobs 2)
# and plain formats into fresh databases.  Compared with the source, from the catalog (a table, view or
# sequence added later is covered without editing this file):
#   - every table of schema ecrm, row for row (row count and an md5 of the sorted row texts);
#   - every view of ecrm and ecrm_masked (customer_360, customer_timeline, leads, segment membership, consents,
#     the masked twins, ...), the same way;
#   - the position of every sequence of schema ecrm.
# pg_dump must print nothing on stderr (no circular foreign-key warning) and the restores no error.  Then the
# restored shop must keep working: ids continue, real-time scoring, recommendations, rules fire, saves are
# checked, and a session that is no restore (an agent with check_function_bodies = off) gets no guard lifted.
# Needs PGHOST/PGPORT/PGUSER (test/run.sh sets them).
set -euo pipefail
BIN=/usr/lib/postgresql/${ECRM_PG_MAJOR:-15}/bin
SRC=ecrm_rx_src
DBS="$SRC ecrm_rx_custom ecrm_rx_dir ecrm_rx_plain"
TMP=$(mktemp -d /tmp/ecrm-restore-exact.XXXXXX)
cleanup() {
    rm -rf "$TMP"
    for d in $DBS; do "$BIN/dropdb" --if-exists "$d" 2>/dev/null; done
    "$BIN/psql" -X -q -d postgres -c "DROP ROLE IF EXISTS ecrm_rx_agent" 2>/dev/null || true
}
[ "${ECRM_RX_KEEP:-0}" = 1 ] || trap cleanup EXIT
export PGOPTIONS="-c ecrm.pseudonym_key=restore-exact-key-0123456789"
q() { "$BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -d "$1" -c "$2"; }
fail=0
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; fail=1; }

"$BIN/createdb" "$SRC"
"$BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -d "$SRC" >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION ecrm;
SET ecrm.default_country = 'GB';
SET ecrm.realtime_resolution = 'off';
SELECT count(*) FROM ecrm.generate_demo_data(300, 11, '2026-05-01 00:00:00+00');

-- configuration the user changed, before the events that use it
INSERT INTO ecrm.consent_purpose VALUES ('loyalty_programme', 'Loyalty programme messages');
SELECT ecrm.set_sla_target('urgent', '30 minutes', '2 hours');
SELECT ecrm.alter_mask_policy('ecrm.customer_profile', 'email', 'pseudonym_email');
SELECT ecrm.add_mask_policy('ecrm.customer_profile', 'company', 'partial', '{"prefix": 2}');
SELECT ecrm.drop_mask_policy('ecrm.customer_profile', 'street');
CREATE VIEW ecrm.rx_contacts AS SELECT customer_id, email, phone, country FROM ecrm.customer_profile;
SELECT ecrm.set_masked_view_rule('ecrm.rx_contacts', consent_action => 'mask');
SELECT ecrm.add_mask_policy('ecrm.rx_contacts', 'phone', 'pseudonym_phone');
INSERT INTO ecrm.survivorship_rule (field, rule) VALUES ('phone', 'most_recent');
-- a real-time segment and one built on it, defined before the events that change their members
SELECT ecrm.define_segment('garden_buyers', '{"bought": {"category": "garden"}}');
SELECT ecrm.define_segment('gb_garden_buyers', '{"all": [{"segment": "garden_buyers"}, {"attribute": "country", "op": "=", "value": "GB"}]}');

-- ingest: one by one and in bulk (one staged row is rejected and stays in stage_reject)
SELECT ecrm.upsert_product('RX-HOSE', 'Garden hose', 'garden', 19.99);
SELECT ecrm.upsert_product('RX-CAN', 'Watering can', 'garden', 9.50);
CREATE TEMP TABLE cast_ (who text PRIMARY KEY, id bigint);
INSERT INTO cast_ SELECT 'ada', ecrm.upsert_customer('{"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.org", "phone": "020 7946 0018", "company": "Analytical Engines", "job_title": "Head of Buying", "lifecycle_stage": "lead"}');
INSERT INTO cast_ SELECT 'ada2', ecrm.upsert_customer('{"first_name": "Ada", "last_name": "Lovelace", "email": "a.lovelace@work.example"}');
INSERT INTO cast_ SELECT 'bob', ecrm.upsert_customer('{"first_name": "Bob", "last_name": "Babbage", "email": "bob@example.org", "phone": "020 7946 0019"}');
INSERT INTO cast_ SELECT 'cy', ecrm.upsert_customer('{"first_name": "Cy", "last_name": "Clark", "email": "cy@example.org", "birth_date": "1980-02-03"}');
INSERT INTO cast_ SELECT 'dee', ecrm.upsert_customer('{"first_name": "Dee", "last_name": "Dunn", "email": "dee@example.org", "phone": "020 7946 0020"}');
INSERT INTO ecrm.stage_customer (namespace, external_id, first_name, last_name, email, phone, country, created_at) VALUES
    ('shop', 'rx1', 'Eve', 'Evans', 'eve@example.org', '020 7946 0021', 'GB', '2026-01-01 10:00+00'),
    ('shop', 'rx2', 'Fay', 'Fox', 'fay@example.org', NULL, 'GB', '2026-01-02 10:00+00'),
    ('shop', 'rx3', 'Gus', 'Gray', 'not an email', NULL, 'GB', '2026-01-03 10:00+00');
INSERT INTO ecrm.stage_order_line (namespace, order_ref, customer_ref, ordered_at, sku, product_name, category, quantity, unit_price, currency, country) VALUES
    ('shop', 'RX-SO-1', 'rx1', '2026-02-01 09:00+00', 'RX-HOSE', 'Garden hose', 'garden', 2, 19.99, 'GBP', 'GB'),
    ('shop', 'RX-SO-2', 'rx2', '2026-02-02 09:00+00', 'RX-CAN', 'Watering can', 'garden', 1, 9.50, 'GBP', 'GB');
SELECT count(*) FROM ecrm.load_staged(skip_invalid => true);
INSERT INTO cast_ SELECT 'eve', customer_id FROM ecrm.identity WHERE kind = 'external' AND namespace = 'shop' AND value = 'rx1';
-- staged and not loaded yet when the dump is taken
INSERT INTO ecrm.stage_customer (namespace, external_id, first_name, email) VALUES ('shop', 'rx9', 'Hal', 'hal@example.org');
INSERT INTO ecrm.stage_order_line (namespace, order_ref, customer_ref, ordered_at, sku, quantity, unit_price) VALUES ('shop', 'RX-SO-9', 'rx9', '2026-04-01', 'RX-CAN', 1, 9.50);
INSERT INTO ecrm.stage_interaction (namespace, customer_ref, channel, kind, occurred_at) VALUES ('shop', 'rx9', 'web', 'page_view', '2026-04-01');

-- orders, consents (with free-text sources), interactions, tickets (one before any routing rule)
SELECT ecrm.record_order(id, '[{"sku": "RX-HOSE", "quantity": 1}, {"sku": "RX-CAN", "quantity": 2}]', '2026-04-20 10:00+00', 'RX-O-' || who) FROM cast_;
SELECT ecrm.record_consent(id, 'marketing_email', true, '2026-04-01', 'web form, ' || who) FROM cast_;
SELECT ecrm.record_consent(id, 'loyalty_programme', true, '2026-04-02', 'call with ' || who) FROM cast_ WHERE who IN ('ada', 'bob', 'dee');
SELECT ecrm.record_consent(id, 'profiling', false, '2026-04-03') FROM cast_ WHERE who = 'cy';
SELECT ecrm.record_interaction(id, 'web', 'page_view', '2026-04-25 08:00+00', '{"path": "/garden"}') FROM cast_;
SELECT ecrm.open_ticket(id, 'Where is my hose?', 'Ordered last week, nothing arrived.', opened_at => '2026-04-26 09:00+00') FROM cast_ WHERE who IN ('bob', 'dee');
SELECT ecrm.save_routing_rule('billing', 'billing', keywords => 'hose');

-- merges: two kept, one undone
CREATE TEMP TABLE merges (what text, merge_id bigint);
INSERT INTO merges SELECT 'ada', ecrm.merge_customers(ARRAY[(SELECT id FROM cast_ WHERE who = 'ada'), (SELECT id FROM cast_ WHERE who = 'ada2')], reason => 'same person');
INSERT INTO merges SELECT 'cy_dee', ecrm.merge_customers(ARRAY[(SELECT id FROM cast_ WHERE who = 'cy'), (SELECT id FROM cast_ WHERE who = 'dee')]);
SELECT ecrm.unmerge((SELECT merge_id FROM merges WHERE what = 'cy_dee'));
INSERT INTO merges SELECT 'demo', ecrm.merge_customers(ARRAY[20, 21]);

-- lead scoring: a rules model, active, and a trained predictive model
DO $$ DECLARE m bigint; BEGIN
    m := ecrm.create_scoring_model('default', half_life => '30 days', max_score => 100, mql_threshold => 40, sql_threshold => 70);
    INSERT INTO ecrm.score_group (model_id, group_name, max_points) VALUES (m, 'web', 10);
    INSERT INTO ecrm.scoring_rule (model_id, name, kind, group_name, points, field, op, value)
         VALUES (m, 'Works for a company', 'fit', NULL, 15, 'company', 'exists', NULL);
    INSERT INTO ecrm.scoring_rule (model_id, name, kind, group_name, points, source, event_kind, channel, min_count, award, half_life)
         VALUES (m, 'Page views', 'engagement', NULL, 1, 'interaction', 'page_view', 'web', 1, 'each', '14 days');
    PERFORM ecrm.activate_model(m);
    PERFORM ecrm.new_model_version('default', 'a draft made from the active version');
END $$;
CREATE TABLE public.rx_train AS SELECT * FROM ecrm.lead_features_at('2026-02-01', '90 days');
SELECT ecrm.train_lead_model('conversion', 'public.rx_train', exclude => '{orders,revenue,days_since_last_order}', holdout => 0);

-- segments: rules (real time), static, refreshed
SELECT ecrm.define_static_segment('vip', ARRAY[1, 2, 3]::bigint[]::ecrm.idset);
SELECT ecrm.cluster_customers(k => 3);
SELECT ecrm.fit_clv('2026-05-01');

-- recommendations
SELECT ecrm.train_item_model(trained_until => '2026-05-01');
SELECT ecrm.train_als_model(factors => 4, iterations => 3);

-- automation: templates, a follow-up saved before its parent last changed, a campaign, a run and a worker
SELECT ecrm.save_template('cart', 'email', 'Hi {{ first_name }}, {{ cart_items }} is waiting');
SELECT ecrm.save_template('welcome', 'email', 'Hi {{ first_name }}, welcome.', 'Welcome');
SELECT ecrm.create_campaign('Nurture', 'email');
SELECT ecrm.save_rule('cart', 'cart_abandoned', '{"after": "4 hours"}', 'send_message', '{"template": "cart"}');
SELECT ecrm.save_rule('cart call', 'rule', '{"rule": "cart"}', 'create_task', '{"title": "Call about {{ cart_items }}", "assignee": "sales"}', delay => '1 day');
SELECT ecrm.save_rule('cart', 'cart_abandoned', '{"after": "2 hours"}', 'send_message', '{"template": "cart"}');
SELECT ecrm.save_rule('to campaign', 'stage_changed', '{"to": "lead"}', 'add_to_campaign', '{"campaign": "Nurture"}');
SELECT ecrm.save_rule('welcome garden buyers', 'segment_entered', '{"segment": "garden_buyers"}', 'send_message', '{"template": "welcome"}');
SELECT ecrm.record_interaction(id, 'web', 'cart_add', now() - interval '5 hours', product_id => (SELECT product_id FROM ecrm.product WHERE sku = 'RX-HOSE')) FROM cast_ WHERE who IN ('bob', 'eve');
INSERT INTO cast_ SELECT 'ivy', ecrm.upsert_customer('{"first_name": "Ivy", "email": "ivy@example.org", "lifecycle_stage": "subscriber"}');
SELECT ecrm.record_consent(id, 'marketing_email', true, now() - interval '1 day') FROM cast_ WHERE who = 'ivy';
SELECT ecrm.upsert_customer('{"email": "ivy@example.org", "lifecycle_stage": "lead"}');
SELECT count(*) FROM ecrm.run_automation(now());
SELECT ecrm.outbox_done(array_agg(o.message_id), 'w1') FROM ecrm.outbox_claim('w1', 3) o;

-- matching: a trained model and a dedupe run that leaves pairs to review
SELECT ecrm.train_match_model('customer');
SELECT count(*) FROM ecrm.dedupe(false);

-- two erasures: a merged customer (with orders and consents kept) and a plain one
SELECT ecrm.erase_customer((SELECT id FROM cast_ WHERE who = 'ada'), 'RX-1');
SELECT ecrm.erase_customer((SELECT id FROM cast_ WHERE who = 'dee'), 'RX-2');
-- and life goes on: new rows after the erasures; segments refreshed, then changed again (deltas pending);
-- a near duplicate queued for review
SELECT ecrm.refresh_segments();
SELECT ecrm.record_order(c.customer_id, '[{"sku": "RX-HOSE", "quantity": 1}]', '2026-04-29 10:00+00')
  FROM ecrm.customers c WHERE NOT ecrm.in_segment(c.customer_id, 'garden_buyers') ORDER BY c.customer_id LIMIT 1;
SET ecrm.realtime_resolution = 'review';
SELECT ecrm.upsert_customer('{"first_name": "Bob", "last_name": "Babbage", "email": "bob@exmaple.org"}');
SELECT ecrm.record_interaction(id, 'web', 'page_view', '2026-04-28 08:00+00') FROM cast_ WHERE who = 'bob';
ANALYZE;
SQL
echo "ok: the life of the shop ran ($(q $SRC "SELECT count(*) FROM ecrm.erasure_log") erasures, $(q $SRC "SELECT count(*) FROM ecrm.merge_event") merges, $(q $SRC "SELECT count(*) FROM ecrm.outbox") outbox rows)"

# Fingerprints, all read from the catalog: per relation its row count and an md5 of its sorted row texts.
fp() {  # fp <relkinds> <schemas>
    echo "SELECT string_agg(t || ':' || n || ':' || h, E'\n' ORDER BY t) FROM (
      SELECT c.oid::regclass::text AS t,
             (xpath('/row/n/text()', query_to_xml(format('SELECT count(*) AS n FROM %s', c.oid::regclass), false, true, '')))[1]::text AS n,
             (xpath('/row/h/text()', query_to_xml(format('SELECT md5(coalesce(string_agg(x::text, %L ORDER BY x::text), %L)) AS h FROM %s x',
                                                         E'\n', '', c.oid::regclass), false, true, '')))[1]::text AS h
        FROM pg_class c WHERE c.relnamespace::regnamespace::text IN ($2) AND c.relkind IN ($1)) f"
}
TABLES=$(fp "'r', 'p'" "'ecrm'")
VIEWS=$(fp "'v', 'm'" "'ecrm', 'ecrm_masked'")
# Views that answer with the time (ages, days since, due in) are compared column by column, without the columns
# whose answer moves with the clock (found by asking the source twice).
COLS="SELECT string_agg(t || '.' || a || ':' || h, E'\n' ORDER BY t, a) FROM (
      SELECT c.oid::regclass::text AS t, a.attname AS a,
             (xpath('/row/h/text()', query_to_xml(format('SELECT md5(coalesce(string_agg(x.%I::text, %L ORDER BY x.%I::text), %L)) AS h FROM %s x',
                                                         a.attname, E'\n', a.attname, '', c.oid::regclass), false, true, '')))[1]::text AS h
        FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
       WHERE c.oid::regclass::text = ANY (string_to_array(:'views', ' '))) f"
cols() { "$BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -v views="$2" -d "$1" <<<"$COLS"; }
SEQS="SELECT string_agg(schemaname || '.' || sequencename || ':' || coalesce(last_value::text, 'unused'), E'\n' ORDER BY 1)
        FROM pg_sequences WHERE schemaname = 'ecrm'"
rows() { q "$1" "SELECT x::text FROM $2 x ORDER BY 1"; }

src_tables=$(q $SRC "$TABLES")
src_views=$(q $SRC "$VIEWS")
src_seqs=$(q $SRC "$SEQS")
sleep 1.2
clocked=$(diff <(echo "$src_views") <(q $SRC "$VIEWS") | sed -n 's/^> \([^:]*\):.*/\1/p' | tr '\n' ' ' | sed 's/ $//' || true)
src_cols1=$(cols $SRC "$clocked"); sleep 1.2; src_cols2=$(cols $SRC "$clocked")
moving=$(diff <(echo "$src_cols1") <(echo "$src_cols2") | sed -n 's/^> \([^:]*\):.*/\1/p' | tr '\n' ' ' || true)
steady() { echo "$1" | awk -F: -v m=" $moving " 'index(m, " " $1 " ") == 0'; }
src_cols=$(steady "$src_cols1")
ntables=$(echo "$src_tables" | wc -l)
nviews=$(echo "$src_views" | wc -l)
echo "ok: views that answer with the clock, compared column by column: ${clocked:-none} (columns left out: ${moving:-none})"
empty=$(echo "$src_tables" | awk -F: '$2 == 0 {print $1}' | tr '\n' ' ')
[ -z "$empty" ] && ok "the life left rows in every table of ecrm (so each comparison means something)" \
    || bad "tables the life of the shop leaves empty (make it write them): $empty"
[ "$(q $SRC "SELECT count(*) FROM ecrm.consent_event ce JOIN ecrm.customer_profile p USING (customer_id) WHERE p.status = 'erased'")" -gt 0 ] \
    && ok "the source keeps consents of erased customers (what a restore lost before)" || bad "no consent of an erased customer to restore"

unclocked() { echo "$1" | awk -F: -v c=" $clocked " 'index(c, " " $1 " ") == 0'; }
compare() {  # compare <label> <db>
    local label=$1 db=$2 t dst_tables dst_views dst_seqs dst_cols now_views now_cols attempt
    dst_tables=$(q "$db" "$TABLES"); dst_seqs=$(q "$db" "$SEQS")
    if [ "$src_tables" = "$dst_tables" ]; then ok "$label: all $ntables tables of ecrm restored row for row"
    else
        bad "$label: tables differ"
        for t in $(diff <(echo "$src_tables") <(echo "$dst_tables") | sed -n 's/^[<>] \([^:]*\):.*/\1/p' | sort -u); do
            echo "  $t:"; diff <(rows $SRC "$t") <(rows "$db" "$t" 2>&1) | head -6 | sed 's/^/    /' || true
        done
    fi
    # the source is asked again next to the copy: a day boundary can pass between two answers (recency in
    # days), so a difference counts only when it is there twice
    for attempt in 1 2; do
        now_views=$(q $SRC "$VIEWS"); dst_views=$(q "$db" "$VIEWS")
        now_cols=$(steady "$(cols $SRC "$clocked")"); dst_cols=$(steady "$(cols "$db" "$clocked")")
        [ "$(unclocked "$now_views")" = "$(unclocked "$dst_views")" ] && [ "$now_cols" = "$dst_cols" ] && break
        sleep 1
    done
    if [ "$(unclocked "$now_views")" = "$(unclocked "$dst_views")" ] && [ "$now_cols" = "$dst_cols" ]; then
        ok "$label: all $nviews views of ecrm and ecrm_masked answer the same"
    else
        bad "$label: views differ"
        diff <(unclocked "$now_views"; echo "$now_cols") <(unclocked "$dst_views"; echo "$dst_cols") | head -20 || true
    fi
    if [ "$src_seqs" = "$dst_seqs" ]; then ok "$label: every sequence of ecrm continues where it was"
    else bad "$label: sequences differ"; diff <(echo "$src_seqs") <(echo "$dst_seqs") | head -20 || true; fi
}

# custom format
"$BIN/pg_dump" -Fc -f "$TMP/dump.custom" $SRC 2>"$TMP/dump.err"
[ -s "$TMP/dump.err" ] && bad "pg_dump printed: $(cat "$TMP/dump.err")" || ok "pg_dump -Fc printed no warning"
"$BIN/createdb" ecrm_rx_custom
if "$BIN/pg_restore" --exit-on-error -d ecrm_rx_custom "$TMP/dump.custom" 2>"$TMP/restore.err" && [ ! -s "$TMP/restore.err" ]; then
    ok "pg_restore (custom) without an error"
else bad "pg_restore (custom): $(cat "$TMP/restore.err")"; fi
compare custom ecrm_rx_custom

# directory format, two jobs each way.  pg_restore --jobs loads the data of extension tables in any order (the
# archive records no order between them; a serial restore follows the dump's, which pg_dump sorts by their
# foreign keys), so ecrm's rows are loaded in one job and everything else in two: the recipe of the README.
"$BIN/pg_dump" -Fd --jobs 2 -f "$TMP/dump.dir" $SRC 2>"$TMP/dump.err"
[ -s "$TMP/dump.err" ] && bad "pg_dump -Fd printed: $(cat "$TMP/dump.err")" || ok "pg_dump -Fd --jobs 2 printed no warning"
"$BIN/createdb" ecrm_rx_dir
"$BIN/pg_restore" -l "$TMP/dump.dir" >"$TMP/all.list"
grep -E '^[0-9]+; [0-9]+ [0-9]+ TABLE DATA ecrm ' "$TMP/all.list" >"$TMP/ecrm.list"
grep -v -E '^[0-9]+; [0-9]+ [0-9]+ TABLE DATA ecrm ' "$TMP/all.list" >"$TMP/rest.list"
if "$BIN/pg_restore" --section=pre-data -L "$TMP/rest.list" -d ecrm_rx_dir "$TMP/dump.dir" 2>"$TMP/restore.err" \
   && "$BIN/pg_restore" -L "$TMP/ecrm.list" -d ecrm_rx_dir "$TMP/dump.dir" 2>>"$TMP/restore.err" \
   && "$BIN/pg_restore" --jobs 2 --section=data --section=post-data -L "$TMP/rest.list" -d ecrm_rx_dir "$TMP/dump.dir" 2>>"$TMP/restore.err" \
   && [ ! -s "$TMP/restore.err" ]; then
    ok "pg_restore --jobs 2 (directory; ecrm's rows in one job) without an error"
else bad "pg_restore (directory): $(head -c 3000 "$TMP/restore.err")"; fi
compare directory ecrm_rx_dir

# plain format through psql
"$BIN/pg_dump" -Fp -f "$TMP/dump.sql" $SRC 2>"$TMP/dump.err"
[ -s "$TMP/dump.err" ] && bad "pg_dump -Fp printed: $(cat "$TMP/dump.err")" || ok "pg_dump -Fp printed no warning"
"$BIN/createdb" ecrm_rx_plain
if "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -d ecrm_rx_plain -f "$TMP/dump.sql" >/dev/null 2>"$TMP/restore.err" && [ ! -s "$TMP/restore.err" ]; then
    ok "the plain dump restores through psql without an error"
else bad "plain restore: $(head -c 2000 "$TMP/restore.err")"; fi
compare plain ecrm_rx_plain

# The restored shop keeps working.
D=ecrm_rx_custom
new_id=$(q $D "SELECT ecrm.upsert_customer('{\"first_name\": \"After\", \"email\": \"after.restore@example.org\"}')")
max_before=$(q $SRC "SELECT max(customer_id) FROM ecrm.customer_profile")
[ "$new_id" -gt "$max_before" ] && ok "a new customer id ($new_id) follows the restored ones" || bad "new id $new_id after $max_before"
bob=$(q $SRC "SELECT customer_id FROM ecrm.customer_profile WHERE email = 'bob@example.org'")
before_score=$(q $D "SELECT score FROM ecrm.lead_score l JOIN ecrm.scoring_model m USING (model_id) WHERE m.status = 'active' AND m.name = 'default' AND customer_id = $bob")
q $D "SELECT ecrm.record_interaction($bob, 'web', 'page_view')" >/dev/null
after_score=$(q $D "SELECT score FROM ecrm.lead_score l JOIN ecrm.scoring_model m USING (model_id) WHERE m.status = 'active' AND m.name = 'default' AND customer_id = $bob")
[ "$after_score" != "$before_score" ] && ok "real-time scoring works after the restore ($before_score -> $after_score)" || bad "the score did not move ($before_score)"
for m in item_item als; do
    recs="SELECT string_agg(c || ':' || product_id || ':' || round(score::numeric, 6), ',' ORDER BY c, product_id)
            FROM generate_series(1, 30) c, ecrm.recommend(c, 5, '$m')"
    s=$(q $SRC "$recs"); d=$(q ecrm_rx_dir "$recs")
    [ -n "$s" ] && [ "$s" = "$d" ] && ok "model $m recommends the same after the restore" || bad "model $m recommends otherwise"
done
[ "$(q $D "SELECT (ecrm.sla_target('urgent')).first_response")" = "00:30:00" ] && ok "the customised SLA is kept" || bad "SLA lost"
c=$(q $D "SELECT ecrm.upsert_customer('{\"first_name\": \"Kit\", \"email\": \"kit@example.org\"}')")
q $D "SELECT ecrm.record_consent($c, 'marketing_email', true, now() - interval '1 day')" >/dev/null
q $D "SELECT ecrm.record_interaction($c, 'web', 'cart_add', now() - interval '3 hours', product_id => (SELECT product_id FROM ecrm.product WHERE sku = 'RX-HOSE'))" >/dev/null
q $D "SELECT count(*) FROM ecrm.run_automation(now())" >/dev/null
[ "$(q $D "SELECT count(*) FROM ecrm.outbox WHERE customer_id = $c AND payload ->> 'template' = 'cart'")" = 1 ] \
    && ok "the restored cart rule fires" || bad "the restored cart rule did not fire"
if q $D "SELECT ecrm.save_rule('bad', 'rule', '{\"rule\": \"nope\"}', 'create_task', '{\"title\": \"x\"}')" >/dev/null 2>&1; then
    bad "a rule with an unknown parent was accepted after the restore"; else ok "saves are checked after the restore"; fi
if q $D "DELETE FROM ecrm.automation_rule WHERE name = 'cart'" >/dev/null 2>"$TMP/err"; then bad "a parent rule with a follow-up was deleted"
else grep -q 'still has follow-up rules' "$TMP/err" && ok "a rule with follow-ups cannot be deleted (what the foreign key did)" || bad "$(cat "$TMP/err")"; fi
[ "$(q $D "SELECT count(*) FROM ecrm.mask_secret")" = 1 ] && ok "one pseudonym context" || bad "mask_secret"

# No guard is lifted for a session that is not a restore: an agent who turns check_function_bodies off
# still cannot write data for an erased customer, nor slip a ticket past routing.
erased=$(q $SRC "SELECT customer_id FROM ecrm.customer_profile WHERE status = 'erased' ORDER BY 1 LIMIT 1")
q postgres "SET client_min_messages = warning; DROP ROLE IF EXISTS ecrm_rx_agent; CREATE ROLE ecrm_rx_agent LOGIN IN ROLE ecrm_agent"
if PGOPTIONS="$PGOPTIONS -c check_function_bodies=off -c ecrm.restoring=on" "$BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -U ecrm_rx_agent -d $D \
       -c "INSERT INTO ecrm.interaction (customer_id, channel, kind, occurred_at) VALUES ($erased, 'web', 'page_view', now())" >/dev/null 2>"$TMP/err"; then
    bad "an agent with check_function_bodies = off wrote data for erased customer $erased"
else
    grep -q "has been erased" "$TMP/err" && ok "an agent with check_function_bodies = off and ecrm.restoring = on still cannot write for an erased customer" \
        || bad "unexpected error: $(cat "$TMP/err")"
fi
[ "$(PGOPTIONS="$PGOPTIONS -c check_function_bodies=off" "$BIN/psql" -X -q -At -U ecrm_rx_agent -d $D -c "SELECT ecrm._restoring()" 2>/dev/null || echo denied)" != t ] \
    && ok "ecrm._restoring() is false for the agent" || bad "ecrm._restoring() is true for an agent"
[ "$(PGOPTIONS="$PGOPTIONS -c check_function_bodies=off" "$BIN/psql" -X -q -At -d $D -c "SELECT ecrm._restoring()")" = t ] \
    && ok "ecrm._restoring() is true for the owner running a dump's settings" || bad "ecrm._restoring() is false for the owner"
exit $fail
