#!/usr/bin/env bash
# pg_dump / pg_restore of automation rules whose rows refer to each other (a follow-up saved before its
# parent was last changed, so the child's row comes first in the dump), templates, campaigns and routing
# rules: the restore succeeds, the rules are the same, and the restored rules still fire.
set -euo pipefail
BIN=/usr/lib/postgresql/${ECRM_PG_MAJOR:-15}/bin
DUMP=$(mktemp /tmp/ecrm-auto-dump.XXXXXX)
trap 'rm -f "$DUMP"; "$BIN/dropdb" --if-exists ecrm_auto_src; "$BIN/dropdb" --if-exists ecrm_auto_dst' EXIT
q() { "$BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -d "$1" -c "$2"; }
"$BIN/createdb" ecrm_auto_src
q ecrm_auto_src "CREATE EXTENSION ecrm"
q ecrm_auto_src "SELECT ecrm.save_template('cart', 'email', 'Hi {{ first_name }}, {{ cart_items }} is waiting')" >/dev/null
q ecrm_auto_src "SELECT ecrm.create_campaign('Nurture', 'email')" >/dev/null
q ecrm_auto_src "SELECT ecrm.save_rule('cart', 'cart_abandoned', '{\"after\": \"4 hours\"}', 'send_message', '{\"template\": \"cart\"}')" >/dev/null
q ecrm_auto_src "SELECT ecrm.save_rule('cart call', 'rule', '{\"rule\": \"cart\"}', 'create_task', '{\"title\": \"Call about {{ cart_items }}\", \"assignee\": \"sales\"}', delay => '1 day')" >/dev/null
q ecrm_auto_src "SELECT ecrm.save_rule('cart', 'cart_abandoned', '{\"after\": \"2 hours\"}', 'send_message', '{\"template\": \"cart\"}')" >/dev/null
q ecrm_auto_src "SELECT ecrm.save_rule('to campaign', 'stage_changed', '{\"to\": \"lead\"}', 'add_to_campaign', '{\"campaign\": \"Nurture\"}')" >/dev/null
q ecrm_auto_src "SELECT ecrm.save_routing_rule('billing', 'billing', keywords => 'refund')" >/dev/null
FP="SELECT string_agg(format('%s|%s|%s|%s|%s|%s', name, trigger_kind, trigger, action, condition_sql, parent_rule_id), E'\n' ORDER BY rule_id) FROM ecrm.automation_rule"
before=$(q ecrm_auto_src "$FP")
"$BIN/pg_dump" -Fc -f "$DUMP" ecrm_auto_src 2>/dev/null
"$BIN/createdb" ecrm_auto_dst
"$BIN/pg_restore" --exit-on-error -d ecrm_auto_dst "$DUMP"
after=$(q ecrm_auto_dst "$FP")
fail=0
if [ "$before" = "$after" ]; then echo "ok: $(echo "$after" | wc -l) rules restored identically"; else
    echo "FAIL: rules differ"; diff <(echo "$before") <(echo "$after") || true; fail=1; fi
# the restored rules work, and new saves are still checked
c=$(q ecrm_auto_dst "SELECT ecrm.upsert_customer('{\"first_name\": \"Eve\", \"email\": \"eve@example.org\"}')")
q ecrm_auto_dst "SELECT ecrm.record_consent($c, 'marketing_email', true, '2026-01-01')" >/dev/null
q ecrm_auto_dst "SELECT ecrm.upsert_product('KITE', 'Kite')" >/dev/null
q ecrm_auto_dst "SELECT ecrm.record_interaction($c, 'web', 'cart_add', '2026-06-29 08:00+00', product_id => (SELECT product_id FROM ecrm.product))" >/dev/null
n=$(q ecrm_auto_dst "SELECT sum(performed) FROM ecrm.run_automation('2026-06-29 12:00+00')")
[ "$n" = 1 ] && echo "ok: the restored cart rule fired" || { echo "FAIL: performed $n"; fail=1; }
if q ecrm_auto_dst "SELECT ecrm.save_rule('bad', 'rule', '{\"rule\": \"nope\"}', 'create_task', '{\"title\": \"x\"}')" 2>/dev/null; then
    echo "FAIL: an unknown parent was accepted after the restore"; fail=1
else echo "ok: saves are validated after the restore"; fi
exit $fail
