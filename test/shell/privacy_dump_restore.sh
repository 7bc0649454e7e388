#!/usr/bin/env bash
# pg_dump and restore keep privacy configuration working: changed and added masking policies, view
# rules, the masked twin of a view added after CREATE EXTENSION, the pseudonym context (so analysts see
# the same pseudonyms after a restore) and the consent state. Needs PGHOST/PGPORT/PGUSER.
set -euo pipefail
BIN=/usr/lib/postgresql/${ECRM_PG_MAJOR:-15}/bin
DUMP=$(mktemp /tmp/ecrm-privacy-dump.XXXXXX)
trap 'rm -f "$DUMP"; "$BIN/dropdb" --if-exists ecrm_priv_src; "$BIN/dropdb" --if-exists ecrm_priv_dst' EXIT
export PGOPTIONS="-c ecrm.pseudonym_key=shell-test-key-0123456789"
q() { "$BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -d "$1" -c "$2"; }

"$BIN/createdb" ecrm_priv_src
q ecrm_priv_src "CREATE EXTENSION ecrm"
q ecrm_priv_src "SELECT count(*) FROM ecrm.generate_demo_data(100, 5, '2026-05-01 00:00:00+00')" >/dev/null
q ecrm_priv_src "SELECT ecrm.alter_mask_policy('ecrm.customer_profile', 'email', 'pseudonym_email')" >/dev/null
q ecrm_priv_src "SELECT ecrm.add_mask_policy('ecrm.customer_profile', 'company', 'partial', '{\"prefix\": 2}')" >/dev/null
q ecrm_priv_src "SELECT ecrm.drop_mask_policy('ecrm.customer_profile', 'street')" >/dev/null
q ecrm_priv_src "CREATE VIEW ecrm.shell_contacts AS SELECT customer_id, email, phone, country FROM ecrm.customer_profile"
q ecrm_priv_src "SELECT ecrm.set_masked_view_rule('ecrm.shell_contacts', consent_action => 'mask')" >/dev/null
q ecrm_priv_src "SELECT ecrm.add_mask_policy('ecrm.shell_contacts', 'phone', 'pseudonym_phone')" >/dev/null

PLAN="SELECT string_agg(view_name || '.' || column_name || '=' || strategy || ' ' || decided_by, E'\n' ORDER BY view_name::text, column_name) FROM ecrm.masked_columns"
TWINS="SELECT md5(string_agg(x::text, ',' ORDER BY x::text)) FROM (SELECT * FROM ecrm_masked.customers UNION ALL
        SELECT NULL, email, phone, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
          FROM ecrm_masked.shell_contacts) x"
STATE="SELECT md5(string_agg(s::text, ',' ORDER BY s::text)) FROM ecrm.consent_state s"
plan_before=$(q ecrm_priv_src "$PLAN")
twins_before=$(q ecrm_priv_src "$TWINS")
state_before=$(q ecrm_priv_src "$STATE")

"$BIN/pg_dump" -Fc -f "$DUMP" ecrm_priv_src
"$BIN/createdb" ecrm_priv_dst
"$BIN/pg_restore" --exit-on-error -d ecrm_priv_dst "$DUMP"

fail=0
check() { if [ "$2" = "$3" ]; then echo "ok: $1"; else echo "FAIL: $1"; diff <(echo "$2") <(echo "$3") | head -20; fail=1; fi; }
check "every masked column is masked as before (policies and rules restored)" "$plan_before" "$(q ecrm_priv_dst "$PLAN")"
check "analysts see the same values, pseudonyms included (the context is restored)" "$twins_before" "$(q ecrm_priv_dst "$TWINS")"
check "the consent state is the same" "$state_before" "$(q ecrm_priv_dst "$STATE")"
n=$(q ecrm_priv_dst "SELECT count(*) FROM pg_class WHERE relnamespace = 'ecrm_masked'::regnamespace AND relname = 'shell_contacts'")
check "the twin of a view added later exists" "1" "$n"
sec=$(q ecrm_priv_dst "SELECT count(*) FROM ecrm.mask_secret")
check "one pseudonym context" "1" "$sec"
exit $fail
