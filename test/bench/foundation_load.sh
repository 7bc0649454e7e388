#!/usr/bin/env bash
# Benchmark of the foundation on real data: the UCI Online Retail file loaded through the bulk path, compared
# with the same orders written one ecrm.record_order() call each (what an application loop does), and the
# time of every data-model view over the loaded data (plus the demo shop for campaigns, tickets, consents).
#
#   bash test/bench/foundation_load.sh ../shared/data/online_retail/online_retail_2010-12_to_2011-08.csv.gz
#
# Starts its own throwaway cluster (test/lib.sh; ECRM_PGROOT honoured). Prints every figure.
set -euo pipefail
FILE=$(realpath "${1:?usage: test/bench/foundation_load.sh ONLINE_RETAIL_CSV[.gz]}")
. "$(dirname "$0")/../lib.sh"
cd "$ECRM_TOP"
ecrm_build_install
ecrm_cluster_start
trap ecrm_cluster_stop EXIT
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }

echo "== data: $FILE"
echo "   $(gzip -dcf "$FILE" | tail -n +2 | wc -l) CSV rows"

# 1. bulk path
q -c 'CREATE DATABASE bench'
export PGDATABASE=bench
q -c 'CREATE EXTENSION ecrm'
t0=$(date +%s.%N)
bash test/load_online_retail.sh "$FILE" -q >/tmp/ecrm-bench-load.$$ 2>&1
t1=$(date +%s.%N)
lines=$(q -c 'SELECT count(*) FROM ecrm.order_line')
orders=$(q -c 'SELECT count(*) FROM ecrm.orders')
customers=$(q -c 'SELECT count(*) FROM ecrm.customer_profile')
rows=$(gzip -dcf "$FILE" | tail -n +2 | wc -l)
bulk_s=$(echo "$t1 - $t0" | bc -l)
printf '== bulk load (COPY + ecrm.load_staged, one transaction): %.2f s\n' "$bulk_s"
printf '   %s CSV rows -> %s customers, %s orders, %s order lines\n' "$rows" "$customers" "$orders" "$lines"
printf '   %.0f CSV rows/s, %.0f order lines/s\n' "$(echo "$rows / $bulk_s" | bc -l)" "$(echo "$lines / $bulk_s" | bc -l)"

# 2. the same orders through the per-order API, on the first N invoices, in a second database
N=${ECRM_BENCH_API_ORDERS:-2000}
q -d postgres -c 'CREATE DATABASE bench_api'
q -d bench_api -c 'CREATE EXTENSION ecrm'
q -d bench_api -c "CREATE EXTENSION dblink" 2>/dev/null || true
q -c "COPY (SELECT jsonb_build_object('ref', o.external_ref, 'customer', i.value, 'at', o.ordered_at, 'status', o.status,
                 'lines', (SELECT jsonb_agg(jsonb_build_object('sku', p.sku, 'name', p.name, 'quantity', l.quantity, 'unit_price', l.unit_price) ORDER BY l.line_no)
                             FROM ecrm.order_line l JOIN ecrm.product p USING (product_id) WHERE l.order_id = o.order_id))
            FROM ecrm.orders o JOIN ecrm.identity i ON i.customer_id = o.customer_id AND i.kind = 'external'
           ORDER BY o.order_id LIMIT $N) TO STDOUT" >/tmp/ecrm-bench-orders.$$
api_lines=$(q -c "SELECT sum(n) FROM (SELECT count(*) AS n FROM ecrm.order_line WHERE order_id IN (SELECT order_id FROM ecrm.orders ORDER BY order_id LIMIT $N) GROUP BY order_id) x")
q -d bench_api -c "CREATE TABLE api_input (doc jsonb)"
q -d bench_api -c "\copy api_input FROM /tmp/ecrm-bench-orders.$$"
# (a) as an application does it: one autocommitted statement per order, from a client
q -d bench_api -At -c "SELECT format('SELECT ecrm.record_order(coalesce(ecrm.find_customer(%L, %L, %L), ecrm.upsert_customer(%L)), %L, %L, %L, %L, currency => %L);',
                 'external', doc->>'customer', 'online_retail',
                 jsonb_build_object('identities', jsonb_build_array(jsonb_build_object('kind', 'external', 'namespace', 'online_retail', 'value', doc->>'customer'))),
                 doc->'lines', doc->>'at', doc->>'ref', doc->>'status', 'GBP') FROM api_input" >/tmp/ecrm-bench-calls.$$
t0=$(date +%s.%N)
psql -X -q -v ON_ERROR_STOP=1 -d bench_api -f /tmp/ecrm-bench-calls.$$ >/dev/null
t1=$(date +%s.%N)
client_s=$(echo "$t1 - $t0" | bc -l)
# (b) the best case for row by row: the same calls in one server-side loop, one transaction
q -d bench_api -c "TRUNCATE ecrm.order_line, ecrm.orders, ecrm.identity, ecrm.product, ecrm.lifecycle_change, ecrm.customer_profile CASCADE"
t0=$(date +%s.%N)
q -d bench_api -c "DO \$\$
DECLARE d jsonb; cid bigint;
BEGIN
  FOR d IN SELECT doc FROM api_input LOOP
    cid := ecrm.find_customer('external', d->>'customer', 'online_retail');
    IF cid IS NULL THEN
      cid := ecrm.upsert_customer(jsonb_build_object('identities', jsonb_build_array(jsonb_build_object('kind', 'external', 'namespace', 'online_retail', 'value', d->>'customer'))));
    END IF;
    PERFORM ecrm.record_order(cid, d->'lines', (d->>'at')::timestamptz, d->>'ref', d->>'status', currency => 'GBP');
  END LOOP;
END \$\$"
t1=$(date +%s.%N)
loop_s=$(echo "$t1 - $t0" | bc -l)
bulk_rate=$(echo "$lines / $bulk_s" | bc -l)
client_rate=$(echo "$api_lines / $client_s" | bc -l)
loop_rate=$(echo "$api_lines / $loop_s" | bc -l)
printf '== row by row through the API, the first %s invoices (%s order lines)\n' "$N" "$api_lines"
printf '   one autocommitted client call per order: %.2f s, %.0f order lines/s -> bulk path %.1fx faster\n' \
    "$client_s" "$client_rate" "$(echo "$bulk_rate / $client_rate" | bc -l)"
printf '   one server-side loop, one transaction:    %.2f s, %.0f order lines/s -> bulk path %.1fx faster\n' \
    "$loop_s" "$loop_rate" "$(echo "$bulk_rate / $loop_rate" | bc -l)"
rm -f /tmp/ecrm-bench-calls.$$
rm -f /tmp/ecrm-bench-orders.$$

# 3. views over the loaded shop (plus the demo shop in another database, for campaigns, tickets, consents)
q -d postgres -c 'CREATE DATABASE bench_demo'
q -d bench_demo -c 'CREATE EXTENSION ecrm'
q -d bench_demo -c "SELECT count(*) FROM ecrm.generate_demo_data(${ECRM_BENCH_DEMO_CUSTOMERS:-20000}, 42)" >/dev/null
for db in bench bench_demo; do
    echo "== view timings in $db ($(q -d $db -c 'SELECT count(*) FROM ecrm.customers') customers, $(q -d $db -c 'SELECT count(*) FROM ecrm.orders') orders, $(q -d $db -c 'SELECT count(*) FROM ecrm.interaction') interactions)"
    q -d $db -c "CREATE TEMP TABLE t (view text, ms numeric)" -c "
DO \$\$
DECLARE v text; t0 timestamptz; best numeric; i int;
BEGIN
  FOREACH v IN ARRAY ARRAY['customers', 'customer_360', 'customer_timeline', 'leads', 'campaign_performance', 'ticket_queue', 'kpi_daily', 'consents'] LOOP
    best := NULL;
    FOR i IN 1..3 LOOP
      t0 := clock_timestamp();
      EXECUTE format('SELECT sum(length(x::text)) FROM ecrm.%I x', v);  -- whole rows: no join can be skipped
      best := least(coalesce(best, 1e9), extract(epoch FROM clock_timestamp() - t0) * 1000);
    END LOOP;
    RAISE NOTICE '   %: all rows in % ms (best of 3)', rpad(v, 22), round(best, 1);
  END LOOP;
END \$\$" 2>&1 | sed 's/^NOTICE:  //'
    # one customer at a time, as an application or an agent's screen asks: 500 random customers
    q -d $db -c "
DO \$\$
DECLARE ids bigint[]; t0 timestamptz; ms numeric[] := '{}'; ms2 numeric[] := '{}'; c bigint;
BEGIN
  SELECT array_agg(customer_id ORDER BY hashint8(customer_id)) INTO ids FROM (SELECT customer_id FROM ecrm.customers ORDER BY hashint8(customer_id) LIMIT 500) x;
  FOREACH c IN ARRAY ids LOOP
    t0 := clock_timestamp();
    PERFORM * FROM ecrm.customer_360 WHERE customer_id = c;
    ms := ms || (extract(epoch FROM clock_timestamp() - t0) * 1000)::numeric;
    t0 := clock_timestamp();
    PERFORM * FROM ecrm.customer_timeline WHERE customer_id = c;
    ms2 := ms2 || (extract(epoch FROM clock_timestamp() - t0) * 1000)::numeric;
  END LOOP;
  RAISE NOTICE '   customer_360 for one customer:      median % ms, p95 % ms (500 customers)',
    (SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY x)::numeric, 3) FROM unnest(ms) x),
    (SELECT round(percentile_cont(0.95) WITHIN GROUP (ORDER BY x)::numeric, 3) FROM unnest(ms) x);
  RAISE NOTICE '   customer_timeline for one customer: median % ms, p95 % ms (500 customers)',
    (SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY x)::numeric, 3) FROM unnest(ms2) x),
    (SELECT round(percentile_cont(0.95) WITHIN GROUP (ORDER BY x)::numeric, 3) FROM unnest(ms2) x);
END \$\$" 2>&1 | sed 's/^NOTICE:  //'
done
echo "== plan of customer_360 for one customer (Online Retail data)"
q -c "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON) SELECT * FROM ecrm.customer_360 WHERE customer_id = (SELECT min(customer_id) + 100 FROM ecrm.customers)"
