-- The bulk path: COPY into stage_* tables, then one set-based ecrm.load_staged().
\pset null '(null)'
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP EXTENSION ecrm CASCADE;
CREATE EXTENSION ecrm;
RESET client_min_messages;
SET ecrm.default_country = 'GB';

COPY ecrm.stage_customer (namespace, external_id, first_name, last_name, email, phone, country, created_at) FROM stdin WITH (FORMAT csv);
shop,c1,Ada,Lovelace,ada@example.org,020 7946 0018,GB,2026-01-01 10:00:00+00
shop,c2,Zoë,Müller,zoe@example.de,+49 171 2345678,DE,2026-01-02 10:00:00+00
shop,c3,Bob,,,,,2026-01-03 10:00:00+00
\.
COPY ecrm.stage_order_line (namespace, order_ref, customer_ref, ordered_at, sku, product_name, category, quantity, unit_price, currency, country) FROM stdin WITH (FORMAT csv);
shop,SO-1,c1,2026-02-01 09:00:00+00,HOSE,Garden hose,garden,2,19.99,GBP,GB
shop,SO-1,c1,2026-02-01 09:00:00+00,CAN,Watering can,garden,1,7.50,GBP,GB
shop,SO-2,c2,2026-02-02 09:00:00+00,HOSE,Garden hose,garden,1,19.99,EUR,DE
shop,SO-3,c4,2026-02-03 09:00:00+00,LAMP,Desk lamp,lighting,1,35.00,EUR,FR
shop,RT-1,c1,2026-02-05 09:00:00+00,CAN,Watering can,garden,-1,7.50,GBP,GB
\.
COPY ecrm.stage_interaction (namespace, customer_ref, channel, kind, occurred_at, sku, payload) FROM stdin WITH (FORMAT csv);
shop,c1,web,product_view,2026-01-31 08:00:00+00,HOSE,
shop,c3,email,email_open,2026-02-01 08:00:00+00,,"{""subject"": ""Hello""}"
\.
SELECT * FROM ecrm.load_staged();
SELECT c.customer_id, c.first_name, c.email, c.phone, c.country, c.lifecycle_stage, c.source, i.value AS external_id
  FROM ecrm.customer_profile c JOIN ecrm.identity i ON i.customer_id = c.customer_id AND i.kind = 'external'
 ORDER BY c.customer_id;
SELECT kind, namespace, value FROM ecrm.identity ORDER BY kind, value;
-- a customer known only from its orders dates from its first order, and became a customer then
SELECT i.value AS ref, c.created_at, l.from_stage, l.to_stage, l.changed_at, l.reason
  FROM ecrm.customer_profile c JOIN ecrm.identity i ON i.customer_id = c.customer_id AND i.kind = 'external'
  LEFT JOIN ecrm.lifecycle_change l ON l.customer_id = c.customer_id ORDER BY 1;
SELECT o.external_ref, i.value AS customer_ref, o.status, o.currency, o.total, count(l.*) AS lines
  FROM ecrm.orders o JOIN ecrm.identity i ON i.customer_id = o.customer_id AND i.kind = 'external'
  JOIN ecrm.order_line l USING (order_id) GROUP BY 1, 2, 3, 4, 5 ORDER BY 1;
SELECT sku, name, category, price FROM ecrm.product ORDER BY sku;
SELECT i.value AS customer_ref, n.channel, n.kind, p.sku, n.payload
  FROM ecrm.interaction n JOIN ecrm.identity i ON i.customer_id = n.customer_id AND i.kind = 'external'
  LEFT JOIN ecrm.product p USING (product_id) ORDER BY n.occurred_at;
SELECT (SELECT count(*) FROM ecrm.stage_customer) + (SELECT count(*) FROM ecrm.stage_order_line)
       + (SELECT count(*) FROM ecrm.stage_interaction) AS staged_rows_left;

-- loading the same orders again is harmless: they are skipped
COPY ecrm.stage_order_line (namespace, order_ref, customer_ref, ordered_at, sku, quantity, unit_price) FROM stdin WITH (FORMAT csv);
shop,SO-1,c1,2026-02-01 09:00:00+00,HOSE,2,19.99
shop,SO-4,c1,2026-03-01 09:00:00+00,HOSE,1,19.99
\.
SELECT * FROM ecrm.load_staged();
SELECT count(*) AS orders FROM ecrm.orders;

-- one bad row fails the whole load, names the row, and writes nothing
COPY ecrm.stage_customer (namespace, external_id, email, country) FROM stdin WITH (FORMAT csv);
shop,c5,good@example.org,GB
shop,c6,not-an-email,GB
shop,c7,x@example.org,Narnia
\.
COPY ecrm.stage_order_line (namespace, order_ref, customer_ref, ordered_at, sku, quantity, unit_price, channel) FROM stdin WITH (FORMAT csv);
shop,SO-5,c5,2026-03-02 09:00:00+00,HOSE,0,19.99,
shop,SO-6,c5,2026-03-02 09:00:00+00,HOSE,1,-1,
shop,SO-7,c5,2026-03-02 09:00:00+00,,1,1,
shop,SO-8,c5,2026-03-02 09:00:00+00,HOSE,1,1,fax
shop,SO-9,c5,2026-03-02 09:00:00+00,HOSE,1,1,
shop,SO-9,c6,2026-03-02 09:00:00+00,HOSE,1,1,
shop,SO-10,c5,2999-01-01 00:00:00+00,HOSE,1,1,
\.
COPY ecrm.stage_interaction (namespace, customer_ref, channel, kind, occurred_at, sku) FROM stdin WITH (FORMAT csv);
shop,c5,web,Page View,2026-03-02 09:00:00+00,
shop,c5,web,page_view,2026-03-02 09:00:00+00,NOPE
\.
SELECT * FROM ecrm.load_staged();
SELECT count(*) AS customers, (SELECT count(*) FROM ecrm.orders) AS orders FROM ecrm.customer_profile;
-- or load the good rows and keep the bad ones, with why
SELECT * FROM ecrm.load_staged(skip_invalid => true);
SELECT stage, row_no, reason FROM ecrm.stage_reject ORDER BY stage, row_no;
SELECT count(*) AS customers, (SELECT count(*) FROM ecrm.orders) AS orders FROM ecrm.customer_profile;

-- malformed values never reach the loader: COPY rejects them with the line and column
COPY ecrm.stage_order_line (order_ref, quantity) FROM stdin WITH (FORMAT csv);
SO-x,two
\.
-- an empty stage loads nothing
SELECT * FROM ecrm.load_staged();
