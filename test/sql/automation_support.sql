-- Support: routing rules, SLA targets, the ticket queue's breach forecast, knowledge-base search and suggestions.
\pset null '(null)'
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP EXTENSION ecrm CASCADE;
CREATE EXTENSION ecrm;
RESET client_min_messages;

SELECT ecrm.upsert_customer('{"first_name": "Ada", "email": "ada@example.org", "language": "en"}') AS ada,
       ecrm.upsert_customer('{"first_name": "Jörg", "email": "joerg@example.de", "language": "de"}') AS joerg,
       ecrm.upsert_customer('{"first_name": "Vip", "email": "vip@example.org"}') AS vip \gset
SELECT ecrm.record_order(:vip, '[{"sku": "BIG", "name": "Big thing", "quantity": 1, "unit_price": 2500}]', '2026-05-01') > 0 AS ordered;

------------------------------------------------------------------------------
-- Routing rules: the first match by sort_order assigns the team and raises the priority
------------------------------------------------------------------------------
SELECT ecrm.save_routing_rule('vip customers', 'key accounts', 'high', min_customer_value => 1000, sort_order => 10) > 0 AS saved;
SELECT ecrm.save_routing_rule('billing words', 'billing', keywords => 'refund or charged or invoice', sort_order => 20) > 0 AS saved;
SELECT ecrm.save_routing_rule('german', 'dach support', languages => ARRAY['de'], sort_order => 30) > 0 AS saved;
SELECT ecrm.save_routing_rule('urgent channels', 'frontline', 'urgent', channels => ARRAY['phone'], categories => ARRAY['outage'], sort_order => 40) > 0 AS saved;
SELECT ecrm.save_routing_rule('everything else', 'general', sort_order => 1000) > 0 AS saved;
SELECT name, sort_order, team, priority, categories, channels, languages, min_customer_value, keywords FROM ecrm.routing_rule ORDER BY sort_order;

SELECT ecrm.open_ticket(:vip, 'Question', 'Where is my order?', opened_at => '2026-06-01 09:00+00') AS t_vip,
       ecrm.open_ticket(:ada, 'Charged twice', 'Please refund the second payment', opened_at => '2026-06-01 09:00+00') AS t_bill,
       ecrm.open_ticket(:joerg, 'Lieferung fehlt', 'Mein Paket ist nicht angekommen', opened_at => '2026-06-01 09:00+00') AS t_de,
       ecrm.open_ticket(:ada, 'Site down', NULL, 'phone', 'outage', 'low', opened_at => '2026-06-01 09:00+00') AS t_out,
       ecrm.open_ticket(:ada, 'Hello', 'Just saying hi', priority => 'urgent', opened_at => '2026-06-01 09:00+00') AS t_hi \gset
SELECT ticket_id = :t_vip AS vip, subject, team, priority, opened_at, first_response_due_at, sla_due_at
  FROM ecrm.ticket ORDER BY ticket_id;
-- a ticket opened with a team keeps it
SELECT ecrm.open_ticket(:ada, 'Refund please', 'refund', opened_at => '2026-06-01 09:00+00') AS t_kept \gset
UPDATE ecrm.ticket SET team = 'returns' WHERE ticket_id = :t_kept;
INSERT INTO ecrm.ticket (customer_id, subject, team, opened_at) VALUES (:ada, 'Refund', 'returns', '2026-06-01 09:00+00') RETURNING team;
-- why a ticket went where it went, and re-routing after the rules change
SELECT * FROM ecrm.route_ticket(:t_bill);
UPDATE ecrm.routing_rule SET enabled = false WHERE name = 'billing words';
SELECT * FROM ecrm.route_ticket(:t_bill, apply => true);
SELECT team, priority FROM ecrm.ticket WHERE ticket_id = :t_bill;
SELECT kind, author, details FROM ecrm.ticket_event WHERE ticket_id = :t_bill ORDER BY event_id;
SELECT * FROM ecrm.route_ticket(424242);
-- bad routing rules
SELECT ecrm.save_routing_rule('x', '');
SELECT ecrm.save_routing_rule('x', 'team', 'critical');
SELECT ecrm.save_routing_rule('x', 'team', channels => ARRAY['pigeon']);
SELECT ecrm.save_routing_rule('x', 'team', languages => ARRAY['English']);
SELECT ecrm.save_routing_rule('x', 'team', categories => '{}');
SELECT ecrm.save_routing_rule('x', 'team', min_customer_value => -1);
SELECT ecrm.save_routing_rule('x', 'team', keywords => '  !! ');
SELECT ecrm.save_routing_rule(NULL, 'team');

------------------------------------------------------------------------------
-- SLA targets
------------------------------------------------------------------------------
SELECT ecrm.set_sla_target('urgent', '30 minutes', '2 hours');
SELECT * FROM ecrm.sla_target('urgent');
SELECT ecrm.set_sla_target('urgent', '0', '2 hours');
SELECT ecrm.set_sla_target('urgent', '-1 hour', '2 hours');
SELECT ecrm.set_sla_target('urgent', '2 hours', '1 hour');
SELECT ecrm.set_sla_target('urgent', '1 hour', '2 years');
SELECT ecrm.set_sla_target('urgent', '5 hours', '6 hours');
SELECT ecrm.set_sla_target('low', '1 hour', '2 hours');
SELECT ecrm.set_sla_target('critical', '1 hour', '2 hours');
SELECT ecrm.set_sla_target('high', NULL, '2 hours');
INSERT INTO ecrm.sla_policy VALUES ('normal', '10 minutes', '20 minutes');
SELECT priority, first_response, resolution FROM ecrm.sla_policy ORDER BY priority;

------------------------------------------------------------------------------
-- The queue: breached, about to breach, on track (times relative to now)
------------------------------------------------------------------------------
TRUNCATE ecrm.ticket CASCADE;
INSERT INTO ecrm.ticket (customer_id, subject, priority, team, opened_at, first_response_at, first_response_due_at, sla_due_at)
VALUES (:ada, 'late', 'normal', 'general', now() - interval '4 days', now() - interval '3 days', now() - interval '3 days 16 hours', now() - interval '1 day'),
       (:ada, 'no reply yet', 'normal', 'general', now() - interval '10 hours', NULL, now() - interval '2 hours', now() + interval '2 days'),
       (:ada, 'nearly due', 'high', 'general', now() - interval '20 hours', now() - interval '19 hours', now() - interval '16 hours', now() + interval '4 hours'),
       (:ada, 'reply due soon', 'low', 'general', now() - interval '20 hours', NULL, now() + interval '4 hours', now() + interval '6 days'),
       (:ada, 'fresh', 'urgent', 'general', now(), NULL, now() + interval '30 minutes', now() + interval '2 hours');
SELECT subject, priority, sla_breached, first_response_breached, sla_state,
       (next_breach_at IS NULL) = (subject = 'late') AS next_breach_ok,
       time_to_first_response_breach < interval '0' AS first_response_overdue
  FROM ecrm.ticket_queue;
SELECT sla_state, count(*) FROM ecrm.ticket_queue GROUP BY 1 ORDER BY 1;

------------------------------------------------------------------------------
-- Knowledge base: ranked search with snippets, suggestions for a ticket
------------------------------------------------------------------------------
INSERT INTO ecrm.kb_article (slug, title, body, category) VALUES
  ('delivery-times', 'Delivery times and tracking your order', 'Orders ship within one working day. You receive a tracking link by email; if the tracking page shows no update for five days, contact us and we open an investigation with the carrier.', 'shipping'),
  ('returns-policy', 'How to return an item', 'You can return any item within 30 days of delivery. Print a free return label from your account page. Refunds are made to the original payment method.', 'returns'),
  ('duplicate-charge', 'I was charged twice for one order', 'A second charge is usually a pre-authorisation that your bank releases within 3 to 5 days. If both payments stay on your statement, send us the order number and we refund the duplicate payment.', 'billing'),
  ('password-reset', 'Resetting your password', 'Click Forgot password on the login page. The reset email arrives within minutes; check your spam folder.', 'account'),
  ('draft', 'Unpublished refund notes', 'refund refund refund charged twice', 'billing');
UPDATE ecrm.kb_article SET published = false WHERE slug = 'draft';
INSERT INTO ecrm.kb_article (slug, title, body, category, language, ts_config) VALUES
  ('lieferzeiten', 'Lieferzeiten und Sendungsverfolgung', 'Ihr Paket wird innerhalb eines Werktages versendet. Ist die Lieferung nach fünf Tagen nicht angekommen, melden Sie sich.', 'shipping', 'de', 'german');
SELECT slug, round(rank::numeric, 4) AS rank, snippet FROM ecrm.kb_search('refund charged twice');
SELECT slug, round(rank::numeric, 4) AS rank FROM ecrm.kb_search('"return label"');
SELECT slug FROM ecrm.kb_search('tracking -carrier');
SELECT count(*) FROM ecrm.kb_search('');
SELECT count(*) FROM ecrm.kb_search(NULL);
SELECT count(*) FROM ecrm.kb_search('zzzz qqqq');
-- suggestions from a ticket's subject (counts double) and body
SELECT ecrm.open_ticket(:ada, 'Parcel not arrived', 'I ordered a week ago and the tracking page shows nothing. Where is my parcel?') AS t_parcel,
       ecrm.open_ticket(:ada, 'Payment taken twice', 'My card statement shows two payments for the same order, please refund one.', category => 'billing') AS t_pay,
       ecrm.open_ticket(:joerg, 'Paket nicht angekommen', 'Meine Lieferung ist seit Tagen unterwegs.') AS t_paket \gset
SELECT slug, round(rank::numeric, 4) AS rank, snippet FROM ecrm.kb_suggest(:t_parcel);
SELECT slug, round(rank::numeric, 4) AS rank FROM ecrm.kb_suggest(:t_pay, 2);
SELECT slug, snippet FROM ecrm.kb_suggest(:t_paket);
SELECT slug FROM ecrm.kb_suggest('Forgot my password', NULL);
SELECT slug FROM ecrm.kb_suggest(NULL, 'how do I return an item for a refund', 3, 'en');
SELECT count(*) FROM ecrm.kb_suggest('', '');
SELECT count(*) FROM ecrm.kb_suggest('日本語のチケット', 'ü ö ä', 5, 'ja');
SELECT ecrm.kb_suggest(424242);
SELECT ecrm.kb_suggest('x', 'y', 0);
SELECT ecrm.kb_suggest(repeat('x', 10001), NULL);
