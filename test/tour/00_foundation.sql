-- The tour of the foundation: the CRM data model over the demo shop.
\pset footer off
\echo
\echo '== The demo shop =='
SELECT lifecycle_stage, count(*) AS customers FROM ecrm.customers GROUP BY 1 ORDER BY 1;

\echo
\echo '== customer_360: the best customers, one row each =='
SELECT customer_id, full_name, country, lifecycle_stage, order_count, revenue, avg_order_value,
       last_order_at::date AS last_order, last_touch_channel, open_tickets, consents
  FROM ecrm.customer_360 ORDER BY revenue DESC LIMIT 5;

\echo
\echo '== customer_timeline: the last touches of the best customer =='
SELECT occurred_at::timestamp(0) AS at, source, channel, kind, amount
  FROM ecrm.customer_timeline
 WHERE customer_id = (SELECT customer_id FROM ecrm.customer_360 ORDER BY revenue DESC LIMIT 1)
 ORDER BY occurred_at DESC LIMIT 12;

\echo
\echo '== campaign_performance =='
SELECT name, channel, sent, round(100 * open_rate, 1) AS "open %", round(100 * click_through_rate, 1) AS "ctr %",
       round(100 * conversion_rate, 2) AS "conv %", unsubscribed, revenue
  FROM ecrm.campaign_performance ORDER BY starts_at;

\echo
\echo '== ticket_queue: most urgent first =='
SELECT ticket_id, priority, status, team, subject, sla_breached, date_trunc('minute', time_to_breach) AS time_to_breach
  FROM ecrm.ticket_queue LIMIT 6;

\echo
\echo '== kpi_daily: the last week =='
SELECT * FROM ecrm.kpi_daily ORDER BY day DESC LIMIT 7;

\echo
\echo '== knowledge base: "parcel has not arrived" =='
SELECT title, round(rank::numeric, 3) AS rank, snippet FROM ecrm.kb_search('parcel has not arrived tracking', 3);
