-- The data-model views over a deterministic demo shop (as_of fixed, so every figure is reproducible).
\pset null '(null)'
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP EXTENSION ecrm CASCADE;
CREATE EXTENSION ecrm;
RESET client_min_messages;
SELECT * FROM ecrm.generate_demo_data(400, 7, '2026-06-30 12:00:00+00');

-- customers: golden records only
SELECT count(*) AS customers, count(*) FILTER (WHERE email IS NULL) AS without_email FROM ecrm.customers;
UPDATE ecrm.customer_profile SET status = 'merged', merged_into = 1 WHERE customer_id = 2;
SELECT count(*) AS customers_after_a_merge FROM ecrm.customers;
SELECT ecrm.resolve_customer(2), ecrm.resolve_customer(1), ecrm.resolve_customer(99999);

-- customer_360: one row per live customer, figures agree with the tables
SELECT count(*) = (SELECT count(*) FROM ecrm.customers) AS one_row_each,
       count(DISTINCT customer_id) = count(*) AS unique_ids FROM ecrm.customer_360;
SELECT sum(order_count) = (SELECT count(*) FROM ecrm.orders o JOIN ecrm.customer_profile c USING (customer_id)
                            WHERE c.status = 'active' AND o.status NOT IN ('cancelled', 'returned')) AS order_counts_agree,
       sum(revenue) = (SELECT sum(total) FROM ecrm.orders o JOIN ecrm.customer_profile c USING (customer_id)
                        WHERE c.status = 'active' AND o.status <> 'cancelled') AS revenue_agrees
  FROM ecrm.customer_360;
SELECT customer_id, full_name, country, lifecycle_stage, order_count, revenue, avg_order_value, first_order_at, last_order_at,
       last_touch_channel, open_tickets, consents, jsonb_array_length(identities) AS identities
  FROM ecrm.customer_360 ORDER BY revenue DESC, customer_id LIMIT 5;
-- one customer is an index lookup in every branch
EXPLAIN (COSTS OFF) SELECT * FROM ecrm.customer_360 WHERE customer_id = 42;

-- customer_timeline: every source, in time order
SELECT source, count(*) FROM ecrm.customer_timeline GROUP BY 1 ORDER BY 1;
SELECT occurred_at, source, channel, kind, amount
  FROM ecrm.customer_timeline WHERE customer_id = (SELECT customer_id FROM ecrm.customer_360 ORDER BY revenue DESC, customer_id LIMIT 1)
 ORDER BY occurred_at DESC LIMIT 8;
SELECT bool_and(occurred_at >= prev) AS in_time_order
  FROM (SELECT occurred_at, lag(occurred_at) OVER (PARTITION BY customer_id ORDER BY occurred_at) AS prev
          FROM ecrm.customer_timeline) t WHERE prev IS NOT NULL;

-- leads: only prospects
SELECT lifecycle_stage, count(*) FROM ecrm.leads GROUP BY 1 ORDER BY 1;
SELECT count(*) FILTER (WHERE stage_since IS NULL) AS without_stage_time, count(*) FILTER (WHERE owner IS NULL) AS without_owner FROM ecrm.leads;

-- campaign_performance: rates are ratios of distinct recipients
SELECT name, channel, sent, delivered, opened, clicked, converted, unsubscribed, bounced, open_rate, click_through_rate,
       conversion_rate, revenue
  FROM ecrm.campaign_performance ORDER BY campaign_id;
SELECT bool_and(delivered + bounced = sent) AS every_send_delivered_or_bounced,
       bool_and(opened <= delivered AND clicked <= opened AND converted <= clicked) AS funnel_narrows
  FROM ecrm.campaign_performance;

-- ticket_queue: open and pending only, most urgent first (demo dated in the past, so all are breached now)
SELECT count(*) = (SELECT count(*) FROM ecrm.ticket WHERE status IN ('open', 'pending')) AS only_open_tickets,
       bool_and(sla_breached) AS all_breached FROM ecrm.ticket_queue;
SELECT ticket_id, priority, status, team, subject FROM ecrm.ticket_queue LIMIT 5;

-- kpi_daily
SELECT * FROM ecrm.kpi_daily WHERE day BETWEEN '2026-06-20' AND '2026-06-30' ORDER BY day;
SELECT sum(orders) = (SELECT count(*) FROM ecrm.orders WHERE status NOT IN ('cancelled', 'returned')) AS orders_agree FROM ecrm.kpi_daily;

-- consents: the latest answer per purpose
SELECT purpose, count(*) FILTER (WHERE granted) AS granted, count(*) FILTER (WHERE NOT granted) AS withdrawn
  FROM ecrm.consents GROUP BY 1 ORDER BY 1;

-- every view and every view column a BI user sees carries a comment
SELECT c.relname AS view_without_comment FROM pg_class c
 WHERE c.relnamespace = 'ecrm'::regnamespace AND c.relkind = 'v' AND obj_description(c.oid, 'pg_class') IS NULL;
