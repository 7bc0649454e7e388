-- Automation: templates, rule validation, every trigger kind, consent gating, exactly-once, the outbox API.
\pset null '(null)'
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP EXTENSION ecrm CASCADE;
CREATE EXTENSION ecrm;
RESET client_min_messages;

------------------------------------------------------------------------------
-- Templates
------------------------------------------------------------------------------
SELECT ecrm.template_fields('Hello {{ first_name | there }}, see {{cart_items}} and {{ first_name }}!');
SELECT ecrm.template_fields(''), ecrm.template_fields('no placeholders { } }} {'), ecrm.template_fields(NULL);
SELECT ecrm.render_template('Hello {{ first_name | there }}!', '{"first_name": "Zoë"}'),
       ecrm.render_template('Hello {{ first_name | there }}!', '{}'),
       ecrm.render_template('Hello {{ first_name | there }}!', '{"first_name": ""}'),
       ecrm.render_template('Hello {{first_name}}!', '{"first_name": null}');
SELECT ecrm.render_template('{{items}} | {{n}} | {{b}} | {{o}} | {{none|-}}',
                            '{"items": ["Lamp", "Kite", null], "n": 12.50, "b": true, "o": {"k": 1}}');
SELECT ecrm.render_template('{{items|nothing}}', '{"items": []}'), ecrm.render_template('日本 {{x}} ü', '{"x": "語"}');
SELECT length(ecrm.render_template(repeat('{{x}}', 1000), jsonb_build_object('x', repeat('y', 1000))));
-- malformed
SELECT ecrm.template_fields('Hi {{ first_name');
SELECT ecrm.template_fields('Hi {{ First }}');
SELECT ecrm.template_fields('Hi {{ a b }}');
SELECT ecrm.template_fields('Hi {{}}');
SELECT ecrm.template_fields('Hi {{ a {{ b }}');
SELECT ecrm.template_fields('{{ ' || repeat('a', 64) || ' }}');
SELECT ecrm.render_template('{{x}}', '[1]');
SELECT ecrm.render_template(repeat('{{x}}', 20), jsonb_build_object('x', repeat('y', 1000000)));

SELECT ecrm.save_template('cart_reminder', 'email',
    'Hi {{ first_name | there }}, you left {{ cart_items }} in your cart ({{ cart_value }} EUR).',
    'Your cart is waiting') > 0 AS saved;
SELECT name, channel, purpose, fields FROM ecrm.message_template;
SELECT ecrm.save_template('welcome', 'email', 'Welcome {{ first_name }}! Your order {{ order_ref }} of {{ order_total }} {{ currency }} is on its way.', 'Thank you') > 0 AS saved;
SELECT ecrm.save_template('birthday_sms', 'phone', 'Happy birthday {{first_name}}! {{anniversary_years}} today.') > 0 AS saved;
SELECT purpose FROM ecrm.message_template WHERE name = 'birthday_sms';
-- bad templates
SELECT ecrm.save_template('oops', 'email', 'Hi {{ nickname }}');
SELECT ecrm.save_template('Bad Name', 'email', 'x');
SELECT ecrm.save_template('oops', 'store', 'x');
SELECT ecrm.save_template('oops', 'email', '   ');
SELECT ecrm.save_template('oops', 'email', 'x', purpose => 'gossip');
SELECT ecrm.save_template('oops', NULL, 'x');
SELECT ecrm.save_template('oops', 'email', 'Hi {{ first_name');

------------------------------------------------------------------------------
-- A small shop at fixed times
------------------------------------------------------------------------------
SET ecrm.default_country = 'GB';
SELECT ecrm.upsert_customer('{"customer_id": null, "first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.org", "phone": "+44 20 7946 0018", "birth_date": "1990-07-02", "owner": "sam", "country": "GB", "created_at": "2025-01-10T09:00:00Z"}') AS ada \gset
SELECT ecrm.upsert_customer('{"first_name": "Bob", "email": "bob@example.org", "birth_date": "1992-02-29", "created_at": "2025-02-01T09:00:00Z"}') AS bob \gset
SELECT ecrm.upsert_customer('{"first_name": "Cleo", "email": "cleo@example.org", "created_at": "2025-03-01T09:00:00Z"}') AS cleo \gset
SELECT ecrm.upsert_customer('{"first_name": "Dan", "phone": "+44 20 7946 0999", "created_at": "2025-03-01T09:00:00Z"}') AS dan \gset
SELECT ecrm.record_consent(:ada, 'marketing_email', true, '2025-01-10'), ecrm.record_consent(:ada, 'sms', true, '2025-01-10'),
       ecrm.record_consent(:bob, 'marketing_email', true, '2025-02-01'), ecrm.record_consent(:dan, 'marketing_email', true, '2025-03-01')
  \gset
-- Cleo never consented; Bob withdraws later
SELECT ecrm.upsert_product('LAMP', 'Table Lamp', 'lighting', 30) AS lamp, ecrm.upsert_product('KITE', 'Kite', 'toys', 12.5) AS kite \gset

------------------------------------------------------------------------------
-- Rule validation: errors when a rule is saved, not when it fires
------------------------------------------------------------------------------
SELECT ecrm.save_rule('r', 'weather', '{}', 'send_message', '{"template": "cart_reminder"}');
SELECT ecrm.save_rule('r', 'cart_abandoned', '{"after": "4 hours", "colour": "red"}', 'send_message', '{"template": "cart_reminder"}');
SELECT ecrm.save_rule('r', 'cart_abandoned', '{}', 'send_message', '{"template": "cart_reminder"}');
SELECT ecrm.save_rule('r', 'cart_abandoned', '{"after": "-4 hours"}', 'send_message', '{"template": "cart_reminder"}');
SELECT ecrm.save_rule('r', 'cart_abandoned', '{"after": "soon"}', 'send_message', '{"template": "cart_reminder"}');
SELECT ecrm.save_rule('r', 'cart_abandoned', '{"after": 4}', 'send_message', '{"template": "cart_reminder"}');
SELECT ecrm.save_rule('r', 'cart_abandoned', '{"after": "4 hours"}', 'send_message', '{"template": "cart_reminder"}', delay => '-1 day');
SELECT ecrm.save_rule('r', 'cart_abandoned', '{"after": "4 hours"}', 'send_message', '{"template": "nope"}');
SELECT ecrm.save_rule('r', 'order', '{}', 'send_message', '{"template": "cart_reminder"}');
SELECT ecrm.save_rule('r', 'no_order', '{"days": 0}', 'send_message', '{"template": "welcome"}');
SELECT ecrm.save_rule('r', 'no_order', '{"days": 1.5}', 'create_task', '{"title": "x"}');
SELECT ecrm.save_rule('r', 'date', '{"field": "wedding"}', 'create_task', '{"title": "x"}');
SELECT ecrm.save_rule('r', 'interaction', '{"kind": "Page View"}', 'create_task', '{"title": "x"}');
SELECT ecrm.save_rule('r', 'interaction', '{"kind": "page_view", "channel": "pigeon"}', 'create_task', '{"title": "x"}');
-- (rules on segments and scores: test/pgtap/automation_integration.sql, with or without those capabilities)
SELECT ecrm.save_rule('r', 'order', '{}', 'create_task', '{"title": "x"}', '[{"field": "shoe_size", "value": "42"}]');
SELECT ecrm.save_rule('r', 'order', '{}', 'create_task', '{"title": "x"}', '[{"field": "country", "op": "like", "value": "G%"}]');
SELECT ecrm.save_rule('r', 'order', '{}', 'create_task', '{"title": "x"}', '[{"field": "lifecycle_stage", "op": ">=", "value": "vip"}]');
SELECT ecrm.save_rule('r', 'order', '{}', 'create_task', '{"title": "x"}', '[{"mood": "happy"}]');
SELECT ecrm.save_rule('r', 'order', '{}', 'create_task', '{"title": "x"}', '{"field": "country"}');
SELECT ecrm.save_rule('r', 'order', '{}', 'create_task', '{"title": "x"}', '[{"field": "country", "op": "in", "value": []}]');
SELECT ecrm.save_rule('r', 'order', '{}', 'create_task', '{"title": "{{ ticket_subject }}"}');
SELECT ecrm.save_rule('r', 'order', '{}', 'create_task', '{"title": "{{ shoe_size }}"}');
SELECT ecrm.save_rule('r', 'order', '{}', 'create_task', '{"title": "x", "colour": "red"}');
SELECT ecrm.save_rule('r', 'order', '{}', 'set_stage', '{"stage": "vip"}');
SELECT ecrm.save_rule('r', 'order', '{}', 'add_to_campaign', '{"campaign": "Nope"}');
SELECT ecrm.save_rule('r', 'order', '{}', 'teleport', '{}');
SELECT ecrm.save_rule('r', 'rule', '{"rule": "nope"}', 'create_task', '{"title": "x"}');
SELECT ecrm.save_rule('r', 'order', '[]', 'create_task', '{"title": "x"}');
SELECT ecrm.save_rule('', 'order', '{}', 'create_task', '{"title": "x"}');
SELECT ecrm.save_rule('r', NULL, '{}', 'create_task', '{"title": "x"}');
SELECT count(*) AS rules_after_failed_saves FROM ecrm.automation_rule;

-- cycles: a follow-up of itself; two stage rules feeding each other
SELECT ecrm.save_rule('loop a', 'order', '{}', 'create_task', '{"title": "a"}') > 0 AS saved;
SELECT ecrm.save_rule('loop b', 'rule', '{"rule": "loop a"}', 'create_task', '{"title": "b"}') > 0 AS saved;
SELECT ecrm.save_rule('loop a', 'rule', '{"rule": "loop b"}', 'create_task', '{"title": "a"}');
SELECT ecrm.save_rule('to mql', 'stage_changed', '{"to": "lead"}', 'set_stage', '{"stage": "marketing_qualified"}') > 0 AS saved;
SELECT ecrm.save_rule('back to lead', 'stage_changed', '{"to": "marketing_qualified"}', 'set_stage', '{"stage": "lead", "only_forward": false}');
SELECT ecrm.save_rule('any stage', 'stage_changed', '{}', 'set_stage', '{"stage": "customer"}');
DELETE FROM ecrm.automation_rule WHERE name IN ('loop b');
DELETE FROM ecrm.automation_rule WHERE name IN ('loop a', 'to mql');
-- a direct write is validated too, and the compiled SQL comes from the JSON only
INSERT INTO ecrm.automation_rule (name, trigger_kind, trigger, action_kind, action, delay)
VALUES ('direct', 'no_order', '{"days": 30}', 'create_task', '{"title": "x"}', '-1 hour');
INSERT INTO ecrm.automation_rule (name, trigger_kind, trigger, action_kind, action, condition_sql)
VALUES ('direct', 'no_order', '{"days": 30}', 'create_task', '{"title": "x"}', 'pg_sleep(10) IS NULL') RETURNING condition_sql, trigger;
DELETE FROM ecrm.automation_rule WHERE name = 'direct';
-- conditions compile to SQL with quoted literals
SELECT ecrm._compile_conditions('[{"field": "country", "op": "in", "value": ["GB", "IE''; DROP TABLE x; --"]},
                                  {"field": "lifecycle_stage", "op": ">=", "value": "lead"},
                                  {"field": "attributes.size", "op": ">", "value": 10},
                                  {"field": "email_domain", "value": "example.org"},
                                  {"orders": {"op": ">=", "value": 2}}, {"ordered_since_trigger": false},
                                  {"field": "city", "op": "is_null"}]', 'test');

------------------------------------------------------------------------------
-- Event triggers: interaction, order, stage change (fire at once, inside the writing transaction)
------------------------------------------------------------------------------
SELECT ecrm.save_rule('welcome after first order', 'order', '{"first_order": true}', 'send_message', '{"template": "welcome"}') AS r_welcome \gset
SELECT ecrm.save_rule('pricing page visit', 'interaction', '{"kind": "page_view", "channel": "web"}', 'create_task',
                      '{"title": "{{ full_name }} looked at {{ product_name | a page }}", "due_in": "2 hours"}',
                      '[{"field": "country", "value": "GB"}]') > 0 AS saved;
SELECT ecrm.save_rule('sql lead', 'stage_changed', '{"to": "sales_qualified"}', 'create_task',
                      '{"title": "Call {{ full_name }}, now {{ to_stage }}", "assignee": "owner"}') > 0 AS saved;
SELECT ecrm.record_interaction(:ada, 'web', 'page_view', product_id => :lamp) > 0 AS recorded;
SELECT ecrm.record_interaction(:bob, 'web', 'page_view') > 0 AS recorded;   -- Bob has no country: conditions not met
SELECT ecrm.record_interaction(:ada, 'email', 'page_view') > 0 AS recorded; -- another channel: no run
-- an old event recorded late (a backfill) does not fire
SELECT ecrm.record_interaction(:ada, 'web', 'page_view', now() - interval '3 days') > 0 AS recorded;
SELECT ecrm.record_order(:ada, jsonb_build_array(jsonb_build_object('sku', 'LAMP', 'quantity', 2)), external_ref => 'SO-1') > 0 AS ordered;
SELECT ecrm.record_order(:ada, jsonb_build_array(jsonb_build_object('sku', 'KITE', 'quantity', 1)), external_ref => 'SO-2') > 0 AS ordered;
SELECT ecrm.record_order(:cleo, jsonb_build_array(jsonb_build_object('sku', 'KITE', 'quantity', 1)), external_ref => 'SO-3') > 0 AS ordered;
UPDATE ecrm.customer_profile SET lifecycle_stage = 'sales_qualified' WHERE customer_id = :dan;  -- no owner: skipped
UPDATE ecrm.customer_profile SET owner = 'priya' WHERE customer_id = :bob;
UPDATE ecrm.customer_profile SET lifecycle_stage = 'sales_qualified' WHERE customer_id = :bob;
SELECT r.name, x.customer_id = :ada AS is_ada, x.status, x.reason
  FROM ecrm.automation_run x JOIN ecrm.automation_rule r USING (rule_id) ORDER BY x.run_id;
SELECT topic, channel, purpose, recipient, subject, body, payload ->> 'due_at' IS NOT NULL AS has_due
  FROM ecrm.outbox ORDER BY message_id;

------------------------------------------------------------------------------
-- Time-based triggers through the scheduler, as of fixed times
------------------------------------------------------------------------------
SELECT ecrm.save_rule('abandoned cart', 'cart_abandoned', '{"after": "4 hours"}', 'send_message', '{"template": "cart_reminder"}',
                      description => 'Remind customers of the cart they left') AS r_cart \gset
SELECT ecrm.save_rule('cart follow-up', 'rule', '{"rule": "abandoned cart"}', 'create_task',
                      '{"title": "Cart of {{ full_name }} still waiting: {{ cart_items }}", "assignee": "sales"}',
                      '[{"ordered_since_trigger": false}]', '2 days') > 0 AS saved;
SELECT ecrm.save_rule('birthday', 'date', '{"field": "birth_date"}', 'send_message', '{"template": "birthday_sms"}') > 0 AS saved;
SELECT ecrm.save_rule('lapsed', 'no_order', '{"days": 30}', 'create_task',
                      '{"title": "{{ full_name }}: no order for {{ days_since_last_order }} days", "assignee": "retention"}') > 0 AS saved;
SELECT ecrm.save_rule('breach soon', 'ticket_sla_breach', '{"before": "1 hour"}', 'create_task',
                      '{"title": "Ticket {{ ticket_subject }} ({{ ticket_priority }}) due {{ due_at }}", "assignee": "supervisor"}') > 0 AS saved;
SELECT ecrm.save_rule('mql to campaign', 'stage_changed', '{"to": "marketing_qualified"}', 'add_to_campaign', '{"campaign": "Nurture"}');
SELECT ecrm.create_campaign('Nurture', 'email', starts_at => '2026-01-01') AS nurture \gset
SELECT ecrm.save_rule('mql to campaign', 'stage_changed', '{"to": "marketing_qualified"}', 'add_to_campaign', '{"campaign": "Nurture"}') > 0 AS saved;
SELECT ecrm.save_rule('engaged subscriber', 'interaction', '{"kind": "email_click"}', 'set_stage', '{"stage": "marketing_qualified"}') > 0 AS saved;

-- customers of the time-based scenarios (no orders "now")
SELECT ecrm.upsert_customer('{"first_name": "Eve", "email": "eve@example.org", "created_at": "2025-05-01T09:00:00Z"}') AS eve,
       ecrm.upsert_customer('{"first_name": "Finn", "email": "finn@example.org", "created_at": "2025-05-01T09:00:00Z"}') AS finn,
       ecrm.upsert_customer('{"first_name": "Gia", "email": "gia@example.org", "created_at": "2025-05-01T09:00:00Z"}') AS gia,
       ecrm.upsert_customer('{"first_name": "Hal", "email": "hal@example.org", "created_at": "2025-05-01T09:00:00Z"}') AS hal,
       ecrm.upsert_customer('{"first_name": "Ivy", "email": "ivy@example.org", "created_at": "2025-05-01T09:00:00Z"}') AS ivy \gset
SELECT ecrm.record_consent(c, 'marketing_email', true, '2025-05-01') > 0 AS consented FROM unnest(ARRAY[:eve, :finn, :hal, :ivy]::bigint[]) c;
-- carts: Eve and Finn (consent) leave carts; Gia (no consent) too; Hal orders after his cart
SELECT ecrm.record_interaction(:eve, 'web', 'cart_add', '2026-06-29 08:00+00', product_id => :lamp),
       ecrm.record_interaction(:eve, 'web', 'cart_add', '2026-06-29 08:30+00', product_id => :kite),
       ecrm.record_interaction(:finn, 'web', 'cart_add', '2026-06-29 09:00+00', product_id => :kite),
       ecrm.record_interaction(:gia, 'web', 'cart_add', '2026-06-29 09:00+00', product_id => :kite),
       ecrm.record_interaction(:hal, 'web', 'cart_add', '2026-06-29 09:00+00', product_id => :kite) \gset
SELECT ecrm.record_order(:hal, '[{"sku": "KITE", "quantity": 1}]', '2026-06-29 10:00+00', 'SO-4') > 0 AS ordered;
-- a ticket that breaches at 2026-06-29 12:00 (urgent: 4 hours)
SELECT ecrm.open_ticket(:eve, 'Lamp broken', 'It flickers', priority => 'urgent', opened_at => '2026-06-29 08:00+00') AS t1 \gset

-- 2026-06-29 10:00: Eve's cart is 1.5 hours old: nothing yet; the ticket is due in 2 hours
SELECT * FROM ecrm.run_automation('2026-06-29 10:00+00');
-- 13:00: carts of Eve, Finn and Gia are abandoned (Hal ordered); the ticket breaches within the hour
SELECT * FROM ecrm.run_automation('2026-06-29 13:00+00');
-- the same again: nothing new (one run per trigger occurrence)
SELECT * FROM ecrm.run_automation('2026-06-29 13:05+00');
SELECT r.name, p.first_name, x.status, x.reason, x.triggered_at, x.due_at
  FROM ecrm.automation_run x JOIN ecrm.automation_rule r USING (rule_id) JOIN ecrm.customer_profile p USING (customer_id)
 WHERE r.name IN ('abandoned cart', 'cart follow-up', 'breach soon') ORDER BY x.run_id;
SELECT recipient, subject, body FROM ecrm.outbox WHERE rule_id = :r_cart ORDER BY message_id;
SELECT recipient, subject FROM ecrm.outbox WHERE payload ->> 'rule_name' = 'breach soon';
-- Finn withdraws consent and orders; on 2026-07-01 13:00 the follow-ups are due: Eve still has no order
SELECT ecrm.record_consent(:finn, 'marketing_email', false, '2026-06-30') > 0 AS withdrawn;
SELECT ecrm.record_order(:finn, '[{"sku": "KITE", "quantity": 1}]', '2026-06-30 18:00+00', 'SO-6') > 0 AS ordered;
SELECT * FROM ecrm.run_automation('2026-07-01 13:00+00');
SELECT r.name, p.first_name, x.status, x.reason
  FROM ecrm.automation_run x JOIN ecrm.automation_rule r USING (rule_id) JOIN ecrm.customer_profile p USING (customer_id)
 WHERE r.name = 'cart follow-up' ORDER BY x.run_id;
SELECT topic, recipient, subject FROM ecrm.outbox WHERE payload ->> 'rule_name' = 'cart follow-up';
-- a new cart of Finn's after his withdrawal: skipped for consent
SELECT ecrm.record_interaction(:finn, 'web', 'cart_add', '2026-07-01 08:00+00', product_id => :lamp) > 0 AS recorded;
SELECT * FROM ecrm.run_automation('2026-07-01 13:00+00') WHERE rule = 'abandoned cart';
SELECT x.status, x.reason FROM ecrm.automation_run x WHERE x.customer_id = :finn AND x.rule_id = :r_cart ORDER BY x.run_id;

-- birthdays: Ada on 2 July; Bob (29 February) on 28 February of a common year, and on 29 February of a leap year
SELECT rule, triggered, performed, skipped FROM ecrm.run_automation('2026-07-02 06:00+00') WHERE rule = 'birthday';
SELECT recipient, body FROM ecrm.outbox WHERE payload ->> 'rule_name' = 'birthday';
SELECT rule, triggered, performed, skipped FROM ecrm.run_automation('2026-07-02 18:00+00') WHERE rule = 'birthday';
SELECT rule, triggered, performed, skipped FROM ecrm.run_automation('2025-02-28 06:00+00') WHERE rule = 'birthday';
SELECT p.first_name, x.status, x.reason, x.context FROM ecrm.automation_run x JOIN ecrm.customer_profile p USING (customer_id)
 WHERE x.dedupe_key LIKE 'birth_date:%' ORDER BY x.run_id;
SELECT rule, triggered FROM ecrm.run_automation('2024-02-28 06:00+00') WHERE rule = 'birthday';
SELECT rule, triggered FROM ecrm.run_automation('2024-02-29 06:00+00') WHERE rule = 'birthday';

-- no order for 30 days: Finn's order of 2026-06-30 lapses on 2026-07-30; Hal's of 2026-06-29 a day earlier
SELECT rule, triggered FROM ecrm.run_automation('2026-07-28 12:00+00') WHERE rule = 'lapsed';
SELECT rule, triggered, performed FROM ecrm.run_automation('2026-07-30 19:00+00') WHERE rule = 'lapsed';
SELECT p.first_name, x.context ->> 'days_since_last_order' AS days, o.subject
  FROM ecrm.automation_run x JOIN ecrm.customer_profile p USING (customer_id) JOIN ecrm.outbox o USING (run_id)
 WHERE x.dedupe_key LIKE 'no_order:%' ORDER BY x.run_id;
-- Hal orders again; his next lapse is a new trigger
SELECT ecrm.record_order(:hal, '[{"sku": "KITE", "quantity": 1}]', '2026-08-01 10:00+00', 'SO-8') > 0 AS ordered;
SELECT rule, triggered FROM ecrm.run_automation('2026-08-31 11:00+00') WHERE rule = 'lapsed';

-- stage changes: set_stage by a rule, and add_to_campaign reacting to it
SELECT ecrm.record_interaction(:ivy, 'email', 'email_click') > 0 AS clicked;
SELECT lifecycle_stage FROM ecrm.customer_profile WHERE customer_id = :ivy;
SELECT m.campaign_id = :nurture AS nurture, m.source FROM ecrm.campaign_member m WHERE m.customer_id = :ivy;
SELECT reason FROM ecrm.lifecycle_change WHERE customer_id = :ivy ORDER BY change_id DESC LIMIT 1;
-- only forward: a customer who clicks stays a customer
SELECT ecrm.record_interaction(:hal, 'email', 'email_click') > 0 AS clicked;
SELECT lifecycle_stage FROM ecrm.customer_profile WHERE customer_id = :hal;

-- disabled rules do not fire; a rule's ledger keeps what it did
UPDATE ecrm.automation_rule SET enabled = false WHERE name = 'pricing page visit';
SELECT ecrm.record_interaction(:ada, 'web', 'page_view') > 0 AS recorded;
SELECT count(*) AS pricing_runs FROM ecrm.automation_run x JOIN ecrm.automation_rule r USING (rule_id) WHERE r.name = 'pricing page visit';

-- nothing in the outbox twice; nothing for a customer without consent for the message's purpose
SELECT count(*) = count(DISTINCT dedupe_key) AS unique_keys, count(*) = count(DISTINCT run_id) AS one_per_run FROM ecrm.outbox;
SELECT count(*) AS messages_without_consent FROM ecrm.outbox o
 WHERE o.topic = 'message' AND NOT EXISTS (SELECT FROM ecrm.consent_event e WHERE e.customer_id = o.customer_id AND e.purpose = o.purpose
                                              AND e.granted AND e.recorded_at <= o.created_at);

------------------------------------------------------------------------------
-- The outbox API
------------------------------------------------------------------------------
TRUNCATE ecrm.outbox;
SELECT ecrm.enqueue('webhook', NULL, '{"url": "https://example.org/hook"}', 'hook-1') AS m1 \gset
SELECT ecrm.enqueue('webhook', NULL, '{"url": "https://example.org/hook"}', 'hook-1') = :m1 AS same_message_for_same_key;
SELECT ecrm.enqueue('message', :cleo, purpose => 'marketing_email', channel => 'email', body => 'x') AS no_consent_no_message;
SELECT ecrm.enqueue('message', :ada, purpose => 'marketing_email', channel => 'email', recipient => 'ada@example.org', body => 'Hi', dedupe_key => 'm-ada') > 0 AS enqueued;
SELECT ecrm.enqueue('webhook', NULL, dedupe_key => 'later', available_at => now() + interval '1 hour') > 0 AS enqueued_for_later;
SELECT ecrm.enqueue('Bad Topic', NULL);
SELECT ecrm.enqueue('webhook', 424242);
SELECT ecrm.enqueue('webhook', NULL, '[]');
SELECT ecrm.enqueue('webhook', NULL, purpose => 'marketing_email');
SELECT ecrm.enqueue('webhook', NULL, max_attempts => 0);
SELECT ecrm.enqueue('webhook', NULL, dedupe_key => '');
-- claim: due messages only, oldest first, each to one worker
SELECT dedupe_key, status, attempts, claimed_by FROM ecrm.outbox_claim('w1', 1);
SELECT dedupe_key, status, attempts, claimed_by FROM ecrm.outbox_claim('w2', 10);
SELECT count(*) AS nothing_left_now FROM ecrm.outbox_claim('w3', 10);
SELECT ecrm.outbox_done(:m1, 'w2');
SELECT ecrm.outbox_done(:m1, 'w1');
SELECT status, done_at IS NOT NULL AS done_at_set FROM ecrm.outbox WHERE message_id = :m1;
SELECT ecrm.outbox_done(:m1, 'w1');
SELECT ecrm.outbox_done(424242, 'w1');
-- failures retry with exponential backoff until max_attempts
SELECT message_id AS m2 FROM ecrm.outbox WHERE dedupe_key = 'm-ada' \gset
SELECT ecrm.outbox_failed(:m2, 'w2', 'SMTP 451 try later');
SELECT status, attempts, last_error, round(extract(epoch FROM available_at - clock_timestamp())) BETWEEN 28 AND 30 AS backoff_30s
  FROM ecrm.outbox WHERE message_id = :m2;
UPDATE ecrm.outbox SET available_at = now() - interval '1 second' WHERE message_id = :m2;
SELECT attempts FROM ecrm.outbox_claim('w1', 10, ARRAY['message']);
SELECT ecrm.outbox_failed(:m2, 'w1', 'SMTP 451 again');
SELECT attempts, round(extract(epoch FROM available_at - clock_timestamp())) BETWEEN 58 AND 60 AS backoff_60s FROM ecrm.outbox WHERE message_id = :m2;
UPDATE ecrm.outbox SET available_at = now() - interval '1 second', max_attempts = 3 WHERE message_id = :m2;
SELECT attempts FROM ecrm.outbox_claim('w1', 10, ARRAY['message']);
SELECT ecrm.outbox_failed(:m2, 'w1', 'SMTP 550 gave up');
SELECT status, attempts, last_error FROM ecrm.outbox WHERE message_id = :m2;
SELECT ecrm.outbox_failed(:m2, 'w1', 'again');
-- a claim whose lease ran out is taken over; the first worker can no longer finish it
SELECT ecrm.enqueue('webhook', NULL, dedupe_key => 'lease') AS m3 \gset
SELECT count(*) FROM ecrm.outbox_claim('slow', 10, ARRAY['webhook'], '1 second');
UPDATE ecrm.outbox SET lease_until = clock_timestamp() - interval '1 second' WHERE message_id = :m3;
SELECT dedupe_key, claimed_by, attempts FROM ecrm.outbox_claim('fast', 10, ARRAY['webhook']);
SELECT ecrm.outbox_done(:m3, 'slow');
SELECT ecrm.outbox_failed(:m3, 'fast', 'x', retry_in => '-1 minute');
SELECT ecrm.outbox_done(:m3, 'fast');
SELECT ecrm.outbox_claim(NULL);
SELECT ecrm.outbox_claim('w', 0);
SELECT ecrm.outbox_claim('w', 1, lease => '0');
SELECT topic, status, messages, max_attempts_used FROM ecrm.outbox_stats ORDER BY 1, 2;
