-- Segment refresh benchmark: rule segments over 1,000,000 customers against the plain-SQL way
-- (rebuilding a membership table). Data: 1M synthetic customers (country, newsletter attribute),
-- 1.5M orders; run with test/bench/segments.sh.
\set ON_ERROR_STOP 1
\pset footer off
SET search_path = ecrm, public;
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS ecrm CASCADE;
CREATE EXTENSION ecrm;
RESET client_min_messages;
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
SELECT setval(pg_get_serial_sequence('ecrm.orders', 'order_id'), 1500000), setval(pg_get_serial_sequence('ecrm.customer_profile', 'customer_id'), 1000000),
       setval(pg_get_serial_sequence('ecrm.product', 'product_id'), 30);
VACUUM ANALYZE customer_profile, orders, order_line, product;

\timing on
-- first build (no events) and a refresh, of an attribute rule and of a behaviour rule
SELECT define_segment('gb', '{"attribute": "country", "op": "=", "value": "GB"}');
SELECT segment, members, milliseconds FROM refresh_segment('gb');
SELECT define_segment('garden_90d', '{"all": [{"bought": {"category": "garden", "within": "90 days"}}, {"attribute": "attributes.newsletter", "op": "=", "value": true}]}');
SELECT segment, members, milliseconds FROM refresh_segment('garden_90d');
-- the plain-SQL way: rebuild a membership table
CREATE TABLE plain_gb AS SELECT customer_id FROM customer_profile WHERE status = 'active' AND country = 'GB';
CREATE TABLE plain_garden AS SELECT DISTINCT o.customer_id FROM orders o JOIN order_line l ON l.order_id = o.order_id
  JOIN product p ON p.product_id = l.product_id JOIN customer_profile c ON c.customer_id = o.customer_id
 WHERE o.status NOT IN ('cancelled', 'returned') AND lower(p.category) = 'garden' AND o.ordered_at >= now() - interval '90 days'
   AND c.status = 'active' AND c.attributes -> 'newsletter' = 'true';
-- a real-time change: one order for one customer
SELECT record_order(7, '[{"sku": "P3", "quantity": 1}]');
SELECT ecrm.in_segment(7, 'garden_90d');
SELECT count(*) FROM ecrm.in_segment(g, 'gb') g, generate_series(1, 1000) g2 WHERE g2 = 1 LIMIT 1;
\timing off
SELECT name, members, pg_size_pretty(pg_column_size(s.members)::bigint) AS stored FROM segments JOIN segment s USING (name);
