#!/usr/bin/env bash
# Benchmark of ecrm's masking kernel over 1,000,000 email addresses, against the plain-SQL way,
# all in one run on the same rows:
#   ecrm.mask_email(email)        vs lower(email)                          target: at most 2x
#   ecrm.mask_email(email)        vs a regexp_replace SQL mask, same output   target: ecrm at least 5x faster
#   ecrm.pseudonym(email)  (HMAC) vs md5(email)                            target: at most 3x
# plus the format-preserving pseudonym, and reading the masked twin of ecrm.customers against the
# raw view over ECRM_BENCH_CUSTOMERS customers (default 200,000).
#
#   bash test/bench/mask_bench.sh [ROWS]
#
# Data: ROWS (default 1,000,000) synthetic addresses, deterministic: 60% at public mail providers
# (gmail.com, yahoo.co.uk, ...), 40% at company domains (acme-corp.com, shop.co.uk, ...), mixed case.
# Each figure is the best of 3 runs of "SELECT count(expr) FROM t" timed inside the server (no
# client transfer; the rounds interleave the expressions), one backend, no parallel workers.  The machine is shared: figures are noisy,
# ratios are steadier than times.  Starts its own throwaway cluster (test/lib.sh; ECRM_PGROOT honoured).
set -euo pipefail
ROWS=${1:-1000000}
CUSTOMERS=${ECRM_BENCH_CUSTOMERS:-200000}
. "$(dirname "$0")/../lib.sh"
cd "$ECRM_TOP"
ecrm_build_install
ecrm_cluster_start
trap ecrm_cluster_stop EXIT
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }

q -c 'CREATE DATABASE bench'
export PGDATABASE=bench
q -c 'CREATE EXTENSION ecrm'
# the setting exists once the library is loaded
q -c "LOAD 'ecrm'" -c "ALTER SYSTEM SET ecrm.pseudonym_key = 'benchmark-key-0123456789abcdef'" -c "SELECT pg_reload_conf()" >/dev/null
q <<SQL
SET max_parallel_workers_per_gather = 0;
CREATE TABLE emails AS
SELECT CASE WHEN i % 7 = 0 THEN initcap(u) ELSE u END || '@' || d.domain AS email
  FROM generate_series(1, $ROWS) i
 CROSS JOIN LATERAL (SELECT (ARRAY['anna.smith', 'j.doe', 'mike_77', 'sofia.rossi', 'lars.berg', 'chen.wei', 'info',
                                   'k.nowak', 'emma+news', 'o.brien'])[1 + i % 10] || (i / 10)::text AS u) n
 CROSS JOIN LATERAL (SELECT (ARRAY['gmail.com', 'yahoo.co.uk', 'hotmail.fr', 'outlook.com', 'GMX.de', 'icloud.com',
                                   'acme-corp.com', 'shop.co.uk', 'mail.example-gmbh.de', 'consulting.io'])[1 + (i::bigint * 7919) % 10] AS domain) d;
ANALYZE emails;
-- Best of 3 server-side timings of SELECT count(expr) FROM emails for each expression, in
-- milliseconds; the rounds interleave the expressions, so a change of load hits them all alike.
CREATE FUNCTION bench_ms(exprs text[]) RETURNS numeric[] LANGUAGE plpgsql AS \$\$
DECLARE t0 timestamptz; best numeric[] := array_fill(NULL::numeric, ARRAY[cardinality(exprs)]); ms numeric; n bigint;
BEGIN
    FOR r IN 1..3 LOOP
        FOR i IN 1..cardinality(exprs) LOOP
            t0 := clock_timestamp();
            EXECUTE format('SELECT count(%s) FROM emails', exprs[i]) INTO n;
            ms := extract(epoch FROM clock_timestamp() - t0) * 1000;
            best[i] := round(least(coalesce(best[i], ms), ms), 1);
        END LOOP;
    END LOOP;
    RETURN best;
END \$\$;
SQL

# The SQL way to the very same output as ecrm.mask_email: the first character, ***, and the
# provider's domain or *** and the public suffix, lower case.
SQLMASK="CASE WHEN lower(split_part(email, '@', 2)) = ANY (ARRAY['gmail.com', 'yahoo.co.uk', 'hotmail.fr', 'outlook.com', 'gmx.de', 'icloud.com'])
              THEN regexp_replace(lower(email), '^(.)[^@]*@(.*)\$', '\\1***@\\2')
              ELSE regexp_replace(lower(email), '^(.)[^@]*@.*?((\\.(co|com|org|net|ac|gov)\\.[a-z]{2})|\\.[a-z0-9-]+)\$', '\\1***@***\\2') END"
same=$(q -c "SELECT count(*) FROM emails WHERE ecrm.mask_email(email) IS DISTINCT FROM ($SQLMASK)")
echo "== data: $(q -c 'SELECT count(*) FROM emails') email addresses, e.g. $(q -c "SELECT string_agg(email, ', ') FROM (SELECT email FROM emails LIMIT 3) x")"
echo "   rows where the regexp mask differs from ecrm.mask_email: $same"

read -r lower mask rx md5 pseud pemail mphone <<<"$(q -F ' ' -c "SELECT array_to_string(bench_ms(ARRAY['lower(email)', 'ecrm.mask_email(email)', \$q\$$SQLMASK\$q\$, 'md5(email)', 'ecrm.pseudonym(email)', 'ecrm.pseudonym_email(email)', 'ecrm.mask_partial(email, 2, ''***'', 0)']), ' ')")"

ratio() { echo "scale=2; $1 / $2" | bc -l; }
printf '\n%-44s %10s %10s\n' "over $ROWS rows (best of 3, ms)" "ms" "ratio"
printf '%-44s %10s\n' "lower(email)" "$lower"
printf '%-44s %10s %9sx  (target <= 2x lower)\n' "ecrm.mask_email(email)" "$mask" "$(ratio "$mask" "$lower")"
printf '%-44s %10s %9sx  (ecrm faster by; target >= 5x)\n' "regexp_replace SQL mask, same output" "$rx" "$(ratio "$rx" "$mask")"
printf '%-44s %10s\n' "md5(email)" "$md5"
printf '%-44s %10s %9sx  (target <= 3x md5)\n' "ecrm.pseudonym(email) (HMAC-SHA256)" "$pseud" "$(ratio "$pseud" "$md5")"
printf '%-44s %10s %9sx  (vs md5)\n' "ecrm.pseudonym_email(email) (fake address)" "$pemail" "$(ratio "$pemail" "$md5")"
printf '%-44s %10s %9sx  (vs lower)\n' "ecrm.mask_partial(email, 2, '***', 0)" "$mphone" "$(ratio "$mphone" "$lower")"

# The masked twin against the raw view: what an analyst's BI tool pays for masking
q <<SQL
INSERT INTO ecrm.stage_customer (external_id, first_name, last_name, email, phone, birth_date, city, country, postal_code)
SELECT 'c' || i, (ARRAY['Anna', 'John', 'Sofia', 'Lars', 'Wei'])[1 + i % 5], (ARRAY['Smith', 'Rossi', 'Berg', 'Chen', 'Nowak'])[1 + i % 5],
       'cust' || i || (ARRAY['@gmail.com', '@acme-corp.com', '@shop.co.uk'])[1 + i % 3], '+44 20 7' || lpad((i % 1000000)::text, 6, '0'),
       date '1950-01-01' + (i % 20000), (ARRAY['London', 'Leeds', 'York'])[1 + i % 3], 'GB', 'SW1A ' || (i % 9) || 'AA'
  FROM generate_series(1, $CUSTOMERS) i;
DO \$\$ BEGIN PERFORM ecrm.load_staged(); END \$\$;
INSERT INTO ecrm.consent_event (customer_id, purpose, granted, recorded_at)
SELECT customer_id, 'profiling', customer_id % 10 <> 0, '2026-01-01' FROM ecrm.customer_profile;
ANALYZE;
CREATE FUNCTION bench_view_ms(sql text) RETURNS numeric LANGUAGE plpgsql AS \$\$
DECLARE t0 timestamptz; best numeric := NULL; ms numeric; n bigint;
BEGIN
    FOR i IN 1..3 LOOP
        t0 := clock_timestamp();
        EXECUTE sql INTO n;
        ms := extract(epoch FROM clock_timestamp() - t0) * 1000;
        best := least(coalesce(best, ms), ms);
    END LOOP;
    RETURN round(best, 1);
END \$\$;
SQL
raw=$(q -c "SELECT bench_view_ms('SELECT count(x.*) FROM ecrm.customers x')")
twin=$(q -c "SELECT bench_view_ms('SELECT count(x.*) FROM ecrm_masked.customers x')")
raw1=$(q -c "SELECT bench_view_ms('SELECT count(*) FROM ecrm.customer_360 x WHERE customer_id = 4242')")
twin1=$(q -c "SELECT bench_view_ms('SELECT count(*) FROM ecrm_masked.customer_360 x WHERE customer_id = 4242')")
printf '\n%-44s %10s %10s\n' "$CUSTOMERS customers (best of 3, ms)" "ms" "ratio"
printf '%-44s %10s\n' "every row of ecrm.customers" "$raw"
printf '%-44s %10s %9sx\n' "every row of ecrm_masked.customers" "$twin" "$(ratio "$twin" "$raw")"
printf '%-44s %10s\n' "one customer of ecrm.customer_360" "$raw1"
printf '%-44s %10s %9sx\n' "one customer of ecrm_masked.customer_360" "$twin1" "$(ratio "$twin1" "$raw1")"
echo
echo "(shared machine: re-run when it is quiet before quoting the times; the ratios move less)"
