-- Segment benchmark, part 1 (run by test/bench/segments.sh, which then times membership tests with pgbench).
-- Data: 1,000,000 synthetic customers (country, a newsletter attribute), 30 products, 1,500,000 orders with
-- one line each. Rule segments are refreshed over all of them, against the plain-SQL way: rebuilding an
-- indexed membership table (segment, customer_id) with DELETE + INSERT ... SELECT of the same rule.
-- Every timing is repeated (5 runs, each its own transaction) and printed as best and median.
\set ON_ERROR_STOP 1
\pset footer off
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS ecrm CASCADE;
CREATE EXTENSION ecrm;
RESET client_min_messages;
SET search_path = ecrm, public;
SET session_replication_role = replica;  -- load without the store's per-row triggers
INSERT INTO customer_profile (customer_id, country, attributes, created_at)
SELECT g, (ARRAY['GB','DE','FR','US','NL'])[1 + g % 5], jsonb_build_object('newsletter', g % 3 = 0), now() - interval '2 years'
  FROM generate_series(1, 1000000) g;
INSERT INTO product (product_id, sku, name, category, price) SELECT g, 'P' || g, 'Product ' || g, (ARRAY['Garden','Kitchen','Toys'])[1 + g % 3], 10 FROM generate_series(1, 30) g;
INSERT INTO orders (order_id, customer_id, ordered_at, total, status)
SELECT g, 1 + (hashint8(g) & 2147483647) % 1000000, now() - make_interval(days => (g % 400)), 20, 'paid' FROM generate_series(1, 1500000) g;
INSERT INTO order_line (order_id, line_no, customer_id, product_id, quantity, unit_price)
SELECT o.order_id, 1, o.customer_id, 1 + o.order_id % 30, 1, 20 FROM orders o;
RESET session_replication_role;
SELECT setval(pg_get_serial_sequence('ecrm.orders', 'order_id'), 1500000) AS orders,
       setval(pg_get_serial_sequence('ecrm.customer_profile', 'customer_id'), 1000000) AS customers,
       setval(pg_get_serial_sequence('ecrm.product', 'product_id'), 30) AS products;
VACUUM ANALYZE customer_profile, orders, order_line, product;

-- Milliseconds a statement takes (run in a statement of its own, it is its own transaction).
CREATE FUNCTION public.bench_ms(q text) RETURNS double precision LANGUAGE plpgsql AS $$
DECLARE
    t timestamptz := clock_timestamp();
BEGIN
    EXECUTE q;
    RETURN extract(epoch FROM clock_timestamp() - t) * 1000;
END $$;
CREATE TABLE public.bench_timing (what text, ms double precision);
CREATE TABLE public.plain_membership (segment text, customer_id bigint, PRIMARY KEY (segment, customer_id));

-- first builds (define_segment evaluates the rule once; no events)
SELECT define_segment('gb', '{"attribute": "country", "op": "=", "value": "GB"}') AS gb,
       define_segment('garden_90d', '{"all": [{"bought": {"category": "garden", "within": "90 days"}},
                                              {"attribute": "attributes.newsletter", "op": "=", "value": true}]}') AS garden_90d;
SELECT name, members, refresh_ms FROM segments ORDER BY name;

-- five rounds, taking turns; \gexec runs each generated statement on its own (its own transaction)
SELECT format('INSERT INTO bench_timing SELECT %L, %s', what, q)
  FROM generate_series(1, 5) r,
       (VALUES (1, 'refresh gb: ecrm', $q$(SELECT milliseconds FROM ecrm.refresh_segment('gb'))$q$),
               (2, 'refresh gb: plain SQL', $q$public.bench_ms('DELETE FROM public.plain_membership WHERE segment = ''gb''; INSERT INTO public.plain_membership SELECT ''gb'', customer_id FROM ecrm.customer_profile WHERE status = ''active'' AND country = ''GB''')$q$),
               (3, 'refresh garden_90d: ecrm', $q$(SELECT milliseconds FROM ecrm.refresh_segment('garden_90d'))$q$),
               (4, 'refresh garden_90d: plain SQL', $q$public.bench_ms('DELETE FROM public.plain_membership WHERE segment = ''garden_90d''; INSERT INTO public.plain_membership SELECT DISTINCT ''garden_90d'', o.customer_id FROM ecrm.orders o JOIN ecrm.order_line l ON l.order_id = o.order_id JOIN ecrm.product p ON p.product_id = l.product_id JOIN ecrm.customer_profile c ON c.customer_id = o.customer_id WHERE o.status NOT IN (''cancelled'', ''returned'') AND lower(p.category) = ''garden'' AND o.ordered_at >= now() - interval ''90 days'' AND c.status = ''active'' AND c.attributes -> ''newsletter'' = ''true''')$q$)) q(n, what, q)
 ORDER BY r, n \gexec
VACUUM ANALYZE public.plain_membership, ecrm.segment;

-- Real time: an order of a garden product moves one customer into garden_90d (triggers re-evaluate that
-- customer only) against the same order with ecrm.segment_realtime off; five customers each.
SELECT array_agg(c ORDER BY c) AS outsiders FROM (SELECT g AS c FROM generate_series(3, 1000000, 3) g
  WHERE NOT in_segment(g, 'garden_90d') LIMIT 10) x \gset
SELECT format('INSERT INTO bench_timing SELECT %L, bench_ms(%L) FROM (SELECT set_config(''ecrm.segment_realtime'', %L, true)) s',
              CASE WHEN i % 2 = 1 THEN 'one order, segments kept current' ELSE 'one order, ecrm.segment_realtime off' END,
              format('SELECT ecrm.record_order(%s, ''[{"sku": "P3", "quantity": 1}]'')', c),
              CASE WHEN i % 2 = 1 THEN 'on' ELSE 'off' END)
  FROM unnest(:'outsiders'::bigint[]) WITH ORDINALITY u(c, i) ORDER BY i \gexec
SELECT c AS customer, in_segment(c, 'garden_90d') AS in_garden_90d_now,
       (SELECT string_agg(kind || ' (' || source || ')', ', ') FROM segment_event e WHERE e.customer_id = c) AS events
  FROM unnest(:'outsiders'::bigint[]) c;

SELECT v.name, v.members, pg_size_pretty(pg_column_size(s.members)::bigint) AS stored, v.pending_changes
  FROM segments v JOIN segment s USING (segment_id) ORDER BY v.name;

-- the membership table of the plain-SQL way, for the per-statement comparison that follows
SELECT count(*) AS plain_membership_rows FROM public.plain_membership;
-- customer_360 for one customer: the segments column is an index-backed lookup
EXPLAIN (COSTS OFF) SELECT customer_id, segments FROM ecrm.customer_360 WHERE customer_id = 12345;
SELECT customer_id, order_count, segments FROM ecrm.customer_360 WHERE customer_id IN (5, 12345, (:'outsiders'::bigint[])[1]) ORDER BY customer_id;

-- the segments column over many customers (a BI query): each stored set is read once per query, then
-- every test is in memory; the plain-SQL way collects names from the membership table by customer
CREATE INDEX ON public.plain_membership (customer_id);
ANALYZE public.plain_membership;
SELECT format('INSERT INTO bench_timing SELECT %L, bench_ms(%L)', what, q)
  FROM generate_series(1, 3) r,
       (VALUES (1, 'segments of 100,000 customers: customer_360.segments',
                'SELECT count(*), sum(cardinality(segments)) FROM ecrm.customer_360 WHERE customer_id <= 100000'),
               (2, 'segments of 100,000 customers: plain SQL',
                'SELECT count(*), sum(cardinality(s)) FROM (SELECT c.customer_id, ARRAY(SELECT m.segment FROM public.plain_membership m WHERE m.customer_id = c.customer_id ORDER BY 1) AS s FROM ecrm.customer_profile c WHERE c.customer_id <= 100000 AND c.status = ''active'') x')) q(n, what, q)
 ORDER BY r, n \gexec

SELECT what, count(*) AS runs, round(min(ms)::numeric, 1) AS best_ms,
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1) AS median_ms
  FROM bench_timing GROUP BY what ORDER BY what;
