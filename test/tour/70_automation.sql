-- The tour of automation, support and analytics over the demo shop.
\pset footer off
\echo
\echo '== Automation: an abandoned-cart flow, end to end =='
\echo '-- a template with personalised fields, a rule (4 hours after the last cart_add, no order since),'
\echo '-- and a follow-up task 2 days later if the customer still has not ordered'
SELECT ecrm.save_template('cart_reminder', 'email',
    E'Hi {{ first_name | there }},\nyou left {{ cart_items }} in your cart. You may also like: {{ recommended_products | our bestsellers }}.',
    'Your cart is waiting') AS template_id;
SELECT ecrm.save_rule('abandoned cart', 'cart_abandoned', '{"after": "4 hours"}', 'send_message', '{"template": "cart_reminder"}') AS rule_id;
SELECT ecrm.save_rule('abandoned cart: call', 'rule', '{"rule": "abandoned cart"}', 'create_task',
    '{"title": "Call {{ full_name }} about {{ cart_items }}", "assignee": "owner"}', '[{"ordered_since_trigger": false}]', '2 days') AS rule_id;
SELECT ecrm.save_template('birthday', 'email', 'Happy birthday, {{ first_name }}! Here is 10% off.', 'Happy birthday');
SELECT ecrm.save_rule('birthday', 'date', '{"field": "birth_date"}', 'send_message', '{"template": "birthday"}') AS rule_id;
SELECT ecrm.save_rule('sla breach', 'ticket_sla_breach', '{"before": "2 hours"}', 'create_task',
    '{"title": "Ticket {{ ticket_id }} ({{ ticket_priority }}) breaches at {{ due_at }}", "assignee": "supervisor"}') AS rule_id;
\echo '-- rules are checked when saved:'
\set ON_ERROR_STOP off
\set SHOW_CONTEXT never
SELECT ecrm.save_rule('bad', 'cart_abandoned', '{"after": "-4 hours"}', 'send_message', '{"template": "cart_reminder"}');
SELECT ecrm.save_rule('bad', 'order', '{}', 'send_message', '{"template": "cart_reminder"}');
\set ON_ERROR_STOP on
\set SHOW_CONTEXT errors
\echo '-- the scheduler call (pg_cron: SELECT cron.schedule(''ecrm'', ''* * * * *'', ''SELECT ecrm.run_automation()''))'
SELECT * FROM ecrm.run_automation();
\echo '-- a second call a moment later enqueues nothing twice'
SELECT sum(triggered) AS triggered, sum(performed) AS performed FROM ecrm.run_automation();
SELECT reason, count(*) FROM ecrm.automation_run GROUP BY 1 ORDER BY 2 DESC;
SELECT recipient, subject, body FROM ecrm.outbox WHERE payload ->> 'rule_name' = 'abandoned cart' ORDER BY message_id LIMIT 3;
\echo '-- a worker claims (FOR UPDATE SKIP LOCKED) and confirms; test/outbox_worker.py does this with LISTEN/NOTIFY'
SELECT message_id, topic, recipient, attempts FROM ecrm.outbox_claim('tour-worker', 3);
SELECT ecrm.outbox_done(array_agg(message_id), 'tour-worker') AS sent FROM ecrm.outbox WHERE claimed_by = 'tour-worker' AND status = 'processing';
SELECT * FROM ecrm.outbox_stats ORDER BY topic, status;

\echo
\echo '== Support: routing, SLA forecast, knowledge-base suggestions =='
SELECT ecrm.save_routing_rule('big spenders', 'key accounts', 'high', min_customer_value => 1000, sort_order => 10);
SELECT ecrm.save_routing_rule('billing', 'billing', keywords => 'refund or charged or invoice or payment', sort_order => 20);
SELECT ecrm.save_routing_rule('german speakers', 'dach', languages => ARRAY['de'], sort_order => 30);
SELECT ecrm.save_routing_rule('everything else', 'general', sort_order => 1000);
SELECT ecrm.open_ticket((SELECT customer_id FROM ecrm.customer_360 ORDER BY revenue DESC LIMIT 1), 'Parcel not arrived',
                        'I ordered last week and the tracking page shows no update. Where is my parcel?') AS ticket_id \gset
SELECT ticket_id, team, priority, first_response_due_at::timestamp(0), sla_due_at::timestamp(0) FROM ecrm.ticket WHERE ticket_id = :ticket_id;
SELECT * FROM ecrm.route_ticket(:ticket_id);
SELECT title, round(rank::numeric, 2) AS rank, snippet FROM ecrm.kb_suggest(:ticket_id, 3);
SELECT sla_state, count(*) FROM ecrm.ticket_queue GROUP BY 1 ORDER BY 1;
SELECT ticket_id, priority, team, subject, sla_state, date_trunc('minute', next_breach_at)::timestamp AS next_breach
  FROM ecrm.ticket_queue WHERE sla_state <> 'on_track' LIMIT 5;

\echo
\echo '== Analytics: lifetime value (BG/NBD + Gamma-Gamma fitted in C), churn, cohorts, attribution, funnel, KPIs =='
SELECT model_id, customers, repeat_customers, round(r::numeric, 3) AS r, round(alpha::numeric, 2) AS alpha, round(a::numeric, 3) AS a,
       round(b::numeric, 3) AS b, round(p::numeric, 2) AS p, round(q::numeric, 2) AS q, round(v::numeric, 2) AS v, bgnbd_converged
  FROM ecrm.fit_clv();
SELECT c.customer_id, c.orders, c.historical_clv, round(c.p_alive::numeric, 3) AS p_alive,
       round(c.expected_purchases::numeric, 2) AS purchases_12m, round(c.predicted_clv::numeric, 2) AS predicted_clv_12m
  FROM ecrm.customer_clv c ORDER BY c.predicted_clv DESC LIMIT 5;
SELECT risk_band, method, count(*) AS customers, round(avg(churn_risk)::numeric, 3) AS mean_risk FROM ecrm.churn_risk GROUP BY 1, 2 ORDER BY 4;
SELECT cohort_month, cohort_customers,
       max(retention_rate) FILTER (WHERE months_since_first_order = 1) AS m1,
       max(retention_rate) FILTER (WHERE months_since_first_order = 2) AS m2,
       max(retention_rate) FILTER (WHERE months_since_first_order = 3) AS m3,
       max(retention_rate) FILTER (WHERE months_since_first_order = 6) AS m6
  FROM ecrm.cohort_retention GROUP BY 1, 2 ORDER BY 1 DESC LIMIT 8;
SELECT name, recipients, attributed_orders, attributed_revenue, revenue_per_recipient, return_on_budget FROM ecrm.campaign_attribution ORDER BY attributed_revenue DESC LIMIT 6;
SELECT * FROM ecrm.funnel_conversion;
SELECT day, orders, revenue, new_buyers, active_buyers_90d, churned_customers, retention_rate_90d, churn_rate_90d
  FROM ecrm.kpi_daily ORDER BY day DESC LIMIT 7;
