#!/usr/bin/env bash
# Erasure leaves nothing behind, and an export holds only the person's own data.  A person with distinctive
# canary identifiers (names, two emails, two phones, an external id, a free-text note) goes through the life
# of a customer: two profiles, a mistaken merge with another person (who has canaries of their own) and its
# unmerge, a merge of their own profiles, re-ingestion, consents with free-text sources, interactions with
# payloads, tickets and replies, an order, campaign events, a queued near-duplicate, a staged row, a lead
# score, segments, automation messages in the outbox, recommendation models; ANALYZE.
#   - Before the erasure, the export of each person holds their own canaries and none of the other's.
#   - After erase_customer, every column of every table of every ecrm schema (read from pg_attribute, so a
#     column added later is covered) is searched for every canary, whole or in part (name, email local part
#     and domain, phone digits, external id), and so are the planner statistics of those tables
#     (pg_statistic, which pg_stats shows: most common values, histogram bounds, ...).
#   - The other person is still complete.
# Needs PGHOST/PGPORT/PGUSER (test/run.sh sets them).
set -euo pipefail
BIN=/usr/lib/postgresql/${ECRM_PG_MAJOR:-15}/bin
DB=ecrm_canary
[ "${ECRM_CANARY_KEEP:-0}" = 1 ] || trap '"$BIN/dropdb" --if-exists $DB 2>/dev/null' EXIT
export PGOPTIONS="-c ecrm.pseudonym_key=erasure-canary-key-0123456789"
q() { "$BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -d $DB -c "$1"; }
fail=0
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; fail=1; }

# The person's canaries (lower case; phones as digits) and the other person's.
P_TOKENS="quixotta zephyrine canary-mail qzx.private canary-work 7700900417 7700900418 cnry-ext-58213 qzx-note-31"
O_TOKENS="waldemar oxbridge othercanary wox.mail 7700900533 wox-note-77"

"$BIN/dropdb" --if-exists $DB 2>/dev/null
"$BIN/createdb" $DB
"$BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -d $DB >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION ecrm;
SET ecrm.default_country = 'GB';
SET ecrm.realtime_resolution = 'off';
SELECT count(*) FROM ecrm.generate_demo_data(200, 5, now());
CREATE TABLE public.who (name text PRIMARY KEY, id bigint);

-- a segment, a scoring model and automation in place before the events
SELECT ecrm.define_segment('canary_country', '{"attribute": "country", "op": "=", "value": "GB"}');
DO $$ DECLARE m bigint; BEGIN
    m := ecrm.create_scoring_model('default', half_life => '30 days', max_score => 100, mql_threshold => 40, sql_threshold => 70);
    INSERT INTO ecrm.scoring_rule (model_id, name, kind, group_name, points, field, op, value)
         VALUES (m, 'Has a company', 'fit', NULL, 15, 'company', 'exists', NULL);
    INSERT INTO ecrm.scoring_rule (model_id, name, kind, group_name, points, source, event_kind, channel, min_count, award, half_life)
         VALUES (m, 'Emails', 'engagement', NULL, 5, 'interaction', 'email_received', 'email', 1, 'each', NULL);
    PERFORM ecrm.activate_model(m);
END $$;
SELECT ecrm.save_template('hello', 'email', 'Hi {{ first_name }} {{ last_name }}, thanks for writing.', 'Hello {{ first_name }}');
SELECT ecrm.save_rule('hello on email', 'interaction', '{"kind": "email_received"}', 'send_message', '{"template": "hello"}');
SELECT ecrm.save_rule('call back', 'interaction', '{"kind": "call_request"}', 'create_task', '{"title": "Call {{ full_name }} at {{ phone }}", "assignee": "sales"}');

-- the person: two profiles; the other person: one
INSERT INTO who SELECT 'p', ecrm.upsert_customer('{"first_name": "Quixotta", "last_name": "Zephyrine", "email": "quixotta.zephyrine@canary-mail.example",
    "phone": "+44 7700 900417", "birth_date": "1979-03-14", "company": "Zephyrine Canary Ltd", "country": "GB",
    "external_id": "CNRY-EXT-58213", "attributes": {"notes": "qzx-note-31 likes kites"}}');
INSERT INTO who SELECT 'p2', ecrm.upsert_customer('{"first_name": "Quixotta", "last_name": "Zephyrine", "email": "qzx.private@canary-work.example",
    "phone": "+44 7700 900418", "country": "GB"}');
INSERT INTO who SELECT 'o', ecrm.upsert_customer('{"first_name": "Waldemar", "last_name": "Oxbridge", "email": "wox.mail@othercanary.example",
    "phone": "+44 7700 900533", "birth_date": "1966-11-02", "country": "GB", "attributes": {"notes": "wox-note-77"}}');

-- what they do and what is recorded about them
SELECT ecrm.record_consent(id, 'marketing_email', true, now() - interval '10 days',
                           'call with Quixotta Zephyrine, quixotta.zephyrine@canary-mail.example +447700900417',
                           '{"note": "said yes, qzx-note-31"}') FROM who WHERE name = 'p';
SELECT ecrm.record_consent(id, 'marketing_email', true, now() - interval '10 days', 'call with Waldemar Oxbridge, wox.mail@othercanary.example')
  FROM who WHERE name = 'o';
SELECT ecrm.record_interaction(id, 'email', 'email_received', now() - interval '2 hours',
                               '{"from": "Quixotta Zephyrine <quixotta.zephyrine@canary-mail.example>", "body": "call me on +447700900417"}')
  FROM who WHERE name = 'p';
SELECT ecrm.record_interaction(id, 'email', 'email_received', now() - interval '9 days', '{"from": "Waldemar Oxbridge <wox.mail@othercanary.example>"}')
  FROM who WHERE name = 'o';
SELECT ecrm.record_interaction(id, 'phone', 'call_request', now() - interval '1 hour', '{"note": "Quixotta wants a call"}') FROM who WHERE name = 'p2';
SELECT ecrm.open_ticket(id, 'Kite for Quixotta Zephyrine', 'Reach me at qzx.private@canary-work.example or +447700900418',
                        opened_at => now() - interval '8 days') FROM who WHERE name = 'p';
SELECT ecrm.update_ticket(t.ticket_id, comment => 'Quixotta called again from +447700900417', author => 'agent.smith', reply => true,
                          at => now() - interval '7 days')
  FROM ecrm.ticket t JOIN who ON who.id = t.customer_id AND who.name = 'p';
SELECT ecrm.upsert_product('CNRY-KITE', 'Kite', 'toys', 30);
SELECT ecrm.record_order(id, '[{"sku": "CNRY-KITE", "quantity": 1}]', now() - interval '6 days', 'CNRY-ORDER-1',
                         attributes => '{"gift_message": "for Quixotta Zephyrine, qzx-note-31"}') FROM who WHERE name = 'p';
SELECT ecrm.record_order(id, '[{"sku": "CNRY-KITE", "quantity": 2}]', now() - interval '6 days') FROM who WHERE name = 'o';
SELECT ecrm.create_campaign('Canary news', 'email');
SELECT ecrm.record_campaign_event((SELECT campaign_id FROM ecrm.campaign WHERE name = 'Canary news'), id, 'sent', now() - interval '5 days',
                                  payload => '{"to": "quixotta.zephyrine@canary-mail.example", "external_ref": "+447700900417"}')
  FROM who WHERE name = 'p';

-- a mistaken merge into the other person, undone; then the person's own profiles merged for good
CREATE TABLE public.merges (what text, merge_id bigint);
INSERT INTO merges SELECT 'mistake', ecrm.merge_customers(ARRAY[(SELECT id FROM who WHERE name = 'o'), (SELECT id FROM who WHERE name = 'p')],
                                                        survivor => (SELECT id FROM who WHERE name = 'o'), reason => 'looked alike');
SELECT ecrm.unmerge((SELECT merge_id FROM merges WHERE what = 'mistake'));
INSERT INTO merges SELECT 'own', ecrm.merge_customers(ARRAY[(SELECT id FROM who WHERE name = 'p'), (SELECT id FROM who WHERE name = 'p2')]);
-- re-ingested, and a near duplicate queued for review
SELECT ecrm.upsert_customer('{"email": "quixotta.zephyrine@canary-mail.example", "job_title": "Kite flyer"}');
SET ecrm.realtime_resolution = 'review';
INSERT INTO who SELECT 'p3', ecrm.upsert_customer('{"first_name": "Quixotta", "last_name": "Zephyrine", "email": "quixotta.zephyrine@canary-mial.example"}');
SET ecrm.realtime_resolution = 'off';
-- staged, not loaded
INSERT INTO ecrm.stage_customer (namespace, external_id, first_name, last_name, email) VALUES ('shop', 'CNRY-EXT-58213', 'Quixotta', 'Zephyrine', 'quixotta.zephyrine@canary-mail.example');
-- messaged (the outbox, one message sent by a worker), segmented, scored, recommended
SELECT count(*) FROM ecrm.run_automation(now());
SELECT ecrm.outbox_done(array_agg(o.message_id), 'w1') FROM ecrm.outbox_claim('w1', 1) o HAVING count(*) > 0;
SELECT ecrm.define_static_segment('canary_vip', ARRAY[(SELECT id FROM who WHERE name = 'p'), (SELECT id FROM who WHERE name = 'o')]::ecrm.idset);
SELECT ecrm.refresh_segments();
SELECT ecrm.train_item_model();
SELECT ecrm.train_match_model('customer');
SELECT count(*) FROM ecrm.dedupe(false);
ANALYZE;
SQL
ok "the canary's life ran: $(q "SELECT count(*) FROM ecrm.outbox o JOIN who ON who.id = o.customer_id AND who.name = 'p'") outbox messages, score $(q "SELECT round(max(score)) FROM ecrm.lead_score l JOIN who ON who.id = l.customer_id AND who.name = 'p'"), segments $(q "SELECT string_agg(s::text, ', ') FROM who, ecrm.customer_segments(who.id) s WHERE name = 'p'")"

# tokens found in a text (lower case, and with non-digits removed for phone digits)
found_in() {  # found_in <text> <tokens...>
    local text=${1,,} digits t hits=""
    digits=$(tr -cd '0-9' <<<"$text")
    shift
    for t in "$@"; do
        if [[ "$text" == *"$t"* ]] || { [[ "$t" =~ ^[0-9]+$ ]] && [[ "$digits" == *"$t"* ]]; }; then hits="$hits $t"; fi
    done
    echo "$hits"
}

# Exports before the erasure: each person's own canaries, none of the other's.
p_export=$(q "SELECT ecrm.export_customer(id)::text FROM who WHERE name = 'p'")
o_export=$(q "SELECT ecrm.export_customer(id)::text FROM who WHERE name = 'o'")
[ -n "$(found_in "$p_export" quixotta qzx.private 7700900417)" ] && ok "the person's export holds their data" || bad "the person's export lacks their data"
[ -n "$(found_in "$o_export" waldemar 7700900533)" ] && ok "the other person's export holds their data" || bad "the other export lacks their data"
h=$(found_in "$p_export" $O_TOKENS); [ -z "$h" ] && ok "the person's export holds nothing of the other person" || bad "the person's export holds the other person's:$h"
h=$(found_in "$o_export" $P_TOKENS); [ -z "$h" ] && ok "the other person's export holds nothing of the person (after the undone merge)" || bad "the other export holds the person's:$h"

# Every column of every table of the ecrm schemas, as text (bytea decoded), from the catalog, and the planner
# statistics of those relations (pg_stats reads pg_statistic; expression indexes included).
q "CREATE FUNCTION public.canary_hits(v text) RETURNS text LANGUAGE sql IMMUTABLE AS \$\$
     SELECT string_agg(t, ' ') FROM unnest(string_to_array('$P_TOKENS', ' ')) t
      WHERE strpos(lower(v), t) > 0 OR (t ~ '^[0-9]+\$' AND strpos(regexp_replace(v, '[^0-9]', '', 'g'), t) > 0) \$\$"
SCAN="SELECT string_agg(format('SELECT %L || '' ('' || h || ''): '' || left(v, 200) FROM (SELECT v, public.canary_hits(v) AS h FROM (SELECT %s AS v FROM %s x) s) s WHERE h IS NOT NULL',
                                c.oid::regclass || '.' || a.attname,
                                CASE WHEN a.atttypid = 'bytea'::regtype THEN format('encode(x.%I, ''escape'')', a.attname)
                                     ELSE format('x.%I::text', a.attname) END,
                                c.oid::regclass), ' UNION ALL ')
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
       WHERE n.nspname LIKE 'ecrm%' AND c.relkind IN ('r', 'p', 'm')"
STATS="SELECT s.starelid::regclass || '.' || coalesce(a.attname, s.staattnum::text) || ' statistics (' || h || ')'
         FROM pg_statistic s JOIN pg_class c ON c.oid = s.starelid JOIN pg_namespace n ON n.oid = c.relnamespace
         LEFT JOIN pg_attribute a ON a.attrelid = s.starelid AND a.attnum = s.staattnum
        CROSS JOIN LATERAL public.canary_hits(concat_ws(' ', s.stavalues1::text, s.stavalues2::text, s.stavalues3::text,
                                                        s.stavalues4::text, s.stavalues5::text)) h
        WHERE n.nspname LIKE 'ecrm%' AND h IS NOT NULL"
ncols=$(q "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped WHERE n.nspname LIKE 'ecrm%' AND c.relkind IN ('r', 'p', 'm')")
nstats=$(q "SELECT count(*) FROM pg_statistic s JOIN pg_class c ON c.oid = s.starelid WHERE c.relnamespace::regnamespace::text LIKE 'ecrm%'")
before=$(q "$(q "$SCAN")" | sed 's/ (.*//' | sort -u)
nbefore=$(echo "$before" | grep -c . || true)
[ "$nbefore" -ge 20 ] && ok "before the erasure the canaries are in $nbefore columns: $(echo $before)" \
    || bad "the scan finds the canaries in only $nbefore columns before the erasure: $(echo $before)"

q "SELECT ecrm.erase_customer(id, 'CANARY-1') FROM who WHERE name = 'p'" >/dev/null
q "SELECT ecrm.erase_customer(id, 'CANARY-2') FROM who WHERE name = 'p3'" >/dev/null
ok "erased the person ($(q "SELECT string_agg(profile_ids::text, ' ') FROM ecrm.erasure_log"))"

leaks=$( (q "$(q "$SCAN")"; q "$STATS") || echo "the scan failed")
if [ -z "$leaks" ]; then
    ok "no canary of the erased person in any of $ncols columns of the ecrm tables, nor in $nstats column statistics"
else
    bad "left after the erasure:"; echo "$leaks" | head -40 | sed 's/^/    /'
fi
[ "$nstats" -gt 100 ] && ok "the statistics searched are there ($nstats)" || bad "only $nstats statistics: ANALYZE did not run?"

# The other person is intact.
left=$(q "SELECT ecrm.export_customer(id)::text FROM who WHERE name = 'o'")
[ -n "$(found_in "$left" waldemar oxbridge wox.mail 7700900533 wox-note-77)" ] && [ "$(q "SELECT status FROM ecrm.customer_profile p JOIN who ON who.id = p.customer_id AND who.name = 'o'")" = active ] \
    && ok "the other person is still there, whole" || bad "the other person lost data"
exit $fail
