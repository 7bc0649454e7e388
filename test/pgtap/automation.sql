-- Automation, support and analytics: errors with their SQLSTATEs, and privileges held in practice.
BEGIN;
SELECT plan(44);

SELECT ecrm.upsert_customer('{"first_name": "Ada", "email": "ada@example.org", "country": "GB"}') AS ada \gset
SELECT ecrm.record_consent(:ada, 'marketing_email', true);
SELECT ecrm.save_template('hello', 'email', 'Hi {{ first_name }}') > 0;
SELECT ecrm.create_campaign('Spring', 'email') AS spring \gset

-- templates
SELECT throws_ok($$SELECT ecrm.template_fields('{{ x')$$, '22P02', 'unterminated placeholder at character 1 of the template');
SELECT throws_ok($$SELECT ecrm.render_template('{{x}}', '"s"')$$, '22023', 'template fields must be a JSON object');
SELECT throws_ok($$SELECT ecrm.save_template('t', 'email', 'Hi {{ nickname }}')$$, '22023', 'template "t" uses unknown field "nickname"');
SELECT throws_ok($$SELECT ecrm.save_template('t', 'email', 'x', purpose => 'nope')$$, '22023', 'unknown consent purpose "nope"');
SELECT is(ecrm.render_template('{{ a | fallback }}/{{b}}', '{"b": ["x", "y"]}'), 'fallback/x, y', 'fallbacks and arrays render');

-- rules: every mistake is caught when the rule is saved
SELECT throws_ok($$SELECT ecrm.save_rule('r', 'weather', '{}', 'send_message', '{"template": "hello"}')$$, '22023',
                 'unknown trigger kind "weather" in rule "r"');
SELECT throws_ok($$SELECT ecrm.save_rule('r', 'cart_abandoned', '{"after": "4 hours"}', 'send_message', '{"template": "hello"}', delay => '-1 hour')$$,
                 '22023', 'delay of rule "r" must not be negative: -01:00:00');
SELECT throws_ok($$SELECT ecrm.save_rule('r', 'cart_abandoned', '{"after": "-4 hours"}', 'send_message', '{"template": "hello"}')$$,
                 '22023', '"after" of the trigger of rule "r" must not be negative: -04:00:00');
SELECT throws_ok($$SELECT ecrm.save_rule('r', 'order', '{}', 'send_message', '{"template": "nope"}')$$, '23503', 'template "nope" does not exist');
SELECT throws_ok($$SELECT ecrm.save_rule('r', 'order', '{}', 'create_task', '{"title": "{{ cart_items }}"}')$$, '22023',
                 'rule "r" uses field "cart_items", which a order trigger does not provide');
SELECT throws_ok($$SELECT ecrm.save_rule('r', 'order', '{}', 'create_task', '{"title": "{{ nickname }}"}')$$, '22023',
                 'rule "r" uses unknown field "nickname"');
SELECT throws_ok($$SELECT ecrm.save_rule('r', 'order', '{}', 'add_to_campaign', '{"campaign": "Autumn"}')$$, '23503', 'campaign "Autumn" does not exist');
SELECT throws_ok($$SELECT ecrm.save_rule('r', 'rule', '{"rule": "nope"}', 'create_task', '{"title": "x"}')$$, '23503',
                 'rule "r" follows rule "nope", which does not exist');
SELECT throws_ok($$SELECT ecrm.save_rule('r', 'order', '{}', 'create_task', '{"title": "x"}', '[{"field": "shoe_size", "value": "1"}]')$$,
                 '22023', 'unknown field "shoe_size" in condition 1 of rule "r"');
SELECT ecrm.save_rule('a', 'order', '{}', 'set_stage', '{"stage": "customer"}') > 0;
SELECT throws_ok($$SELECT ecrm.save_rule('b', 'stage_changed', '{"to": "customer"}', 'set_stage', '{"stage": "customer"}')$$, '22023',
                 'rule "b" would start a cycle of rules: "b" -> "b"');
SELECT ecrm.save_rule('c', 'stage_changed', '{"to": "customer"}', 'create_task', '{"title": "x"}') > 0;
SELECT ecrm.save_rule('d', 'rule', '{"rule": "c"}', 'create_task', '{"title": "x"}') > 0;
SELECT throws_ok($$SELECT ecrm.save_rule('e', 'rule', '{"rule": "d"}', 'set_stage', '{"stage": "customer"}')$$,
                 '22023', 'rule "e" would start a cycle of rules: "e" -> "c" -> "d" -> "e"');
SELECT throws_ok($$SELECT ecrm.save_rule('c', 'stage_changed', '{"to": "customer"}', 'create_task', '{"title": "y"}', delay => '-1 day')$$,
                 '22023', 'delay of rule "c" must not be negative: -1 days');
SELECT is((SELECT action ->> 'title' FROM ecrm.automation_rule WHERE name = 'c'), 'x', 'a rejected update leaves the rule as it was');
SELECT throws_ok($$SELECT ecrm.run_automation('infinity')$$, '22023', 'as_of must be a finite time');
SELECT throws_ok($$SELECT ecrm.run_automation(now() + interval '1 year')$$, '22008');

-- outbox
SELECT throws_ok($$SELECT ecrm.enqueue('Bad', NULL)$$, '22023', 'invalid topic "Bad"');
SELECT throws_ok($$SELECT ecrm.outbox_done(424242, 'w')$$, 'P0002', 'message 424242 does not exist');
SELECT ecrm.enqueue('webhook', NULL, dedupe_key => 'k1') AS m1 \gset
SELECT throws_ok(format($$SELECT ecrm.outbox_done(%s, 'w')$$, :m1), '55000', format('message %s is not claimed by worker "w"', :m1));
SELECT is(ecrm.enqueue('message', :ada, purpose => 'sms', body => 'x'), NULL, 'no consent for the purpose: nothing enqueued');

-- support and analytics
SELECT throws_ok($$SELECT ecrm.set_sla_target('urgent', '2 hours', '1 hour')$$, '22023',
                 'resolution target (01:00:00) is shorter than the first-response target (02:00:00)');
SELECT throws_ok($$SELECT ecrm.set_sla_target('low', '1 minute', '2 minutes')$$, '22023');
SELECT throws_ok($$SELECT * FROM ecrm.kb_suggest(424242)$$, 'P0002', 'ticket 424242 does not exist');
SELECT throws_ok($$SELECT ecrm.fit_clv(now(), 'fortnight')$$, '22023', 'time_unit must be day or week, not ''fortnight''');
SELECT throws_ok($$SELECT ecrm.fit_clv('2000-01-01')$$, 'P0002');
SELECT throws_ok($$SELECT ecrm.bgnbd_p_alive(1, 1, 1, 1, 2, 5, 3)$$, '22023', 'recency must be between 0 and T (3), not 5');
SELECT throws_ok($$SELECT ecrm.hyp2f1(1, 1, 2, 1.5)$$, '22023', 'hyp2f1 is computed for -1 < z < 1, not z = 1.5');

-- privileges
SELECT ok(NOT has_function_privilege('ecrm_agent', 'ecrm.save_rule(text, text, jsonb, text, jsonb, jsonb, interval, boolean, text)', 'EXECUTE'),
          'agents cannot write automation rules');
SELECT ok(NOT has_table_privilege('ecrm_agent', 'ecrm.automation_run', 'INSERT'), 'agents cannot write the run ledger');
SELECT ok(NOT has_table_privilege('ecrm_analyst', 'ecrm.outbox', 'SELECT'), 'analysts cannot read messages');
SELECT ok(NOT has_table_privilege('ecrm_analyst', 'ecrm.customer_clv', 'SELECT'), 'analysts cannot read per-customer values');
SELECT ecrm.save_rule('visit', 'interaction', '{"kind": "page_view"}', 'send_message', '{"template": "hello"}') > 0;
SET LOCAL ROLE ecrm_agent;
SELECT lives_ok(format($$SELECT ecrm.record_interaction(%s, 'web', 'page_view')$$, :ada),
                'an agent''s interaction fires the rule (the trigger writes ledger and outbox as the extension owner)');
SELECT is((SELECT count(*) FROM ecrm.outbox_claim('agent-worker', 10, ARRAY['message'])), 1::bigint, 'an agent''s worker claims the message');
RESET ROLE;
SET LOCAL ROLE ecrm_analyst;
SELECT lives_ok($$SELECT * FROM ecrm.campaign_attribution$$, 'analysts read campaign attribution');
SELECT lives_ok($$SELECT * FROM ecrm.cohort_retention, ecrm.funnel_conversion, ecrm.outbox_stats LIMIT 1$$,
                'analysts read cohorts, the funnel and outbox health');
SELECT throws_ok($$SELECT * FROM ecrm.automation_run$$, '42501', NULL, 'analysts cannot read the run ledger');
RESET ROLE;

-- the interval reader of rule settings never hands back a value outside the bounds its caller gives
SELECT throws_ok($$SELECT ecrm._rule_interval('{}', 'after', 'the trigger', '-178000000 years', '1000000 years', '-178000000 years')$$, '22023',
                 'the bounds of "after" of the trigger must be intervals with 0 <= low <= high <= 100 years, not -178000000 years and 1000000 years',
                 'absurd bounds are an error');
SELECT throws_ok($$SELECT ecrm._rule_interval('{}', 'after', 'the trigger', '1 minute', '90 days', '-178000000 years')$$, '22023',
                 'the default of "after" of the trigger must be between 00:01:00 and 90 days, not -178000000 years',
                 'an out-of-range default is an error, not a result');
SELECT throws_ok($$SELECT ecrm._rule_interval('{"after": "1 day"}', 'after', 'the trigger', NULL, '90 days')$$, '22023',
                 'the bounds of "after" of the trigger must be intervals with 0 <= low <= high <= 100 years, not <NULL> and 90 days',
                 'bounds are required');
SELECT is(ecrm._rule_interval('{"after": "2 hours"}', 'after', 'the trigger', '1 minute', '90 days'), interval '2 hours',
          'an interval within the bounds is read');
SELECT * FROM finish();
ROLLBACK;
