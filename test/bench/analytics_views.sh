#!/usr/bin/env bash
# Benchmark: the analytics views over the UCI Online Retail file (loaded through the bulk path), and over the
# demo shop for the views Online Retail has no data for (campaigns, lifecycle).  Each view: all rows, best of 3;
# the per-customer views also for one customer.  The lifetime-value fit (BG/NBD + Gamma-Gamma in C) is
# compared with the same maximisation in SciPy on the same data (test/bench/analytics_clv_validate.py).
#
#   bash test/bench/analytics_views.sh ../shared/data/online_retail/online_retail_2010-12_to_2011-08.csv.gz
#
# Starts its own throwaway cluster (test/lib.sh; ECRM_PGROOT honoured). Prints every figure.
set -euo pipefail
FILE=$(realpath "${1:?usage: test/bench/analytics_views.sh ONLINE_RETAIL_CSV[.gz]}")
. "$(dirname "$0")/../lib.sh"
cd "$ECRM_TOP"
ecrm_build_install
ecrm_cluster_start
trap ecrm_cluster_stop EXIT
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
q -c 'CREATE DATABASE retail' -c 'CREATE DATABASE demo'
q -d retail -c 'CREATE EXTENSION ecrm'
q -d demo -c 'CREATE EXTENSION ecrm'
bash test/load_online_retail.sh "$FILE" -d retail -q >/dev/null
q -d demo -c "SELECT count(*) FROM ecrm.generate_demo_data(${ECRM_BENCH_DEMO_CUSTOMERS:-20000}, 42)" >/dev/null
AS_OF="2011-09-01 00:00+00"
echo "== data: Online Retail $(q -d retail -c 'SELECT count(*) FROM ecrm.customers') customers, $(q -d retail -c 'SELECT count(*) FROM ecrm.orders') orders; demo shop $(q -d demo -c 'SELECT count(*) FROM ecrm.customers') customers, $(q -d demo -c 'SELECT count(*) FROM ecrm.orders') orders, $(q -d demo -c 'SELECT count(*) FROM ecrm.campaign_event') campaign events"

echo "== fitting the lifetime-value models (Online Retail as of $AS_OF)"
for unit in day week; do
    q -d retail -c "\timing on" -c "SELECT customers, repeat_customers, round(r::numeric, 3), round(alpha::numeric, 2), round(a::numeric, 5), round(b::numeric, 1), round(bgnbd_log_likelihood::numeric, 2), bgnbd_converged, round(p::numeric, 3), round(q::numeric, 3), round(v::numeric, 2), round(gamma_gamma_log_likelihood::numeric, 2) FROM ecrm.fit_clv('$AS_OF', '$unit')" \
        | sed "s/^/   $unit: /"
done

timeviews() {
    local db=$1 v
    shift
    for v in "$@"; do
        q -d "$db" -c "
DO \$d\$
DECLARE t0 timestamptz; best numeric; i int; n bigint;
BEGIN
  FOR i IN 1..3 LOOP
    t0 := clock_timestamp();
    EXECUTE \$v\$SELECT count(*) FROM (SELECT sum(length(x::text)) FROM $v x) y\$v\$;   -- whole rows: no join can be skipped
    best := least(coalesce(best, 1e9), extract(epoch FROM clock_timestamp() - t0) * 1000);
  END LOOP;
  EXECUTE \$v\$SELECT count(*) FROM $v\$v\$ INTO n;
  RAISE NOTICE '   %: % rows in % ms (best of 3)', rpad(\$v\$$v\$v\$, 48), lpad(n::text, 6), round(best, 1);
END \$d\$" 2>&1 | sed 's/^NOTICE:  //'
    done
}
echo "== views over Online Retail (whole view, every row and column)"
timeviews retail ecrm.customer_clv ecrm.churn_risk ecrm.cohort_retention ecrm.campaign_attribution ecrm.funnel_conversion ecrm.kpi_daily \
    "ecrm.customer_clv_at('$AS_OF')" "ecrm.churn_risk_at('$AS_OF')"
echo "== views over the demo shop"
q -d demo -c "SELECT ecrm.fit_clv()" >/dev/null
timeviews demo ecrm.customer_clv ecrm.churn_risk ecrm.cohort_retention ecrm.campaign_attribution ecrm.funnel_conversion ecrm.kpi_daily \
    "ecrm.campaign_attribution_in('30 days','linear')"
echo "== one customer (what an agent's screen asks), 200 random customers of Online Retail"
q -d retail -c "
DO \$\$
DECLARE ids bigint[]; t0 timestamptz; a numeric[] := '{}'; b numeric[] := '{}'; c bigint;
BEGIN
  SELECT array_agg(customer_id) INTO ids FROM (SELECT customer_id FROM ecrm.customers ORDER BY hashint8(customer_id) LIMIT 200) x;
  FOREACH c IN ARRAY ids LOOP
    t0 := clock_timestamp(); PERFORM * FROM ecrm.customer_clv WHERE customer_id = c; a := a || (extract(epoch FROM clock_timestamp() - t0) * 1000)::numeric;
    t0 := clock_timestamp(); PERFORM * FROM ecrm.churn_risk WHERE customer_id = c; b := b || (extract(epoch FROM clock_timestamp() - t0) * 1000)::numeric;
  END LOOP;
  RAISE NOTICE '   customer_clv: median % ms, p95 % ms; churn_risk: median % ms, p95 % ms',
    (SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY x)::numeric, 3) FROM unnest(a) x),
    (SELECT round(percentile_cont(0.95) WITHIN GROUP (ORDER BY x)::numeric, 3) FROM unnest(a) x),
    (SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY x)::numeric, 3) FROM unnest(b) x),
    (SELECT round(percentile_cont(0.95) WITHIN GROUP (ORDER BY x)::numeric, 3) FROM unnest(b) x);
END \$\$" 2>&1 | sed 's/^NOTICE:  //'
echo "== the fit against SciPy on the same summary data (the plain way: export, maximise in Python)"
PGDATABASE=retail /usr/bin/python3 test/bench/analytics_clv_validate.py "$AS_OF" day | sed 's/^/   /'
