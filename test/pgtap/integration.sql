-- The capabilities working together through their own APIs: segments and lead scores drive automation,
-- a merge carries a customer's segment membership and score, an erasure removes the person everywhere.
BEGIN;
SELECT plan(20);
SET LOCAL ecrm.default_country = 'GB';
SET LOCAL ecrm.realtime_resolution = 'off';

SELECT ecrm.upsert_product('HOSE-1', 'Garden hose', 'garden', 19.99) AS hose \gset
SELECT ecrm.upsert_customer('{"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.org", "phone": "020 7946 0018",
                              "company": "Analytical Engines", "job_title": "Head of Buying", "country": "GB", "lifecycle_stage": "lead"}') AS ada \gset
SELECT ecrm.upsert_customer('{"first_name": "Ada", "last_name": "Lovelace", "email": "a.lovelace@work.example", "country": "GB"}') AS ada2 \gset
SELECT ecrm.record_consent(:ada, 'marketing_email', true, now() - interval '1 day');

-- segments -> automation: an order makes Ada a garden buyer; the rule fires in the same transaction
SELECT ecrm.define_segment('garden_buyers', '{"bought": {"category": "garden"}}') > 0 AS defined;
SELECT ecrm.save_template('garden_tips', 'email', 'Hi {{ first_name }}, tips for your garden.', 'Garden tips') IS NOT NULL AS template;
SELECT ecrm.save_rule('welcome garden buyers', 'segment_entered', '{"segment": "garden_buyers"}',
                      'send_message', '{"template": "garden_tips"}') > 0 AS rule_saved;
SELECT ok(NOT ecrm.in_segment(:ada, 'garden_buyers'), 'not a garden buyer before the order');
SELECT lives_ok(format($$SELECT ecrm.record_order(%s, '[{"sku": "HOSE-1", "quantity": 1}]')$$, :ada), 'an order');
SELECT ok(ecrm.in_segment(:ada, 'garden_buyers'), 'a garden buyer right after the order (real time)');
SELECT is((SELECT count(*) FROM ecrm.segment_event e JOIN ecrm.segment s USING (segment_id)
            WHERE s.name = 'garden_buyers' AND e.customer_id = :ada AND e.kind = 'entered'), 1::bigint, 'the entry is an event');
SELECT is((SELECT count(*) FROM ecrm.outbox o WHERE o.customer_id = :ada AND o.recipient = 'ada@example.org'), 1::bigint,
          'the segment entry enqueued one message to Ada');

-- scoring -> lifecycle -> automation: a demo pushes Ada over the threshold of an active model
SELECT ecrm.create_scoring_model('default', half_life => '30 days', max_score => 100, mql_threshold => 40, sql_threshold => 70) AS m \gset
INSERT INTO ecrm.scoring_rule (model_id, name, kind, group_name, points, field, op, value)
     VALUES (:m, 'Decision maker', 'fit', NULL, 30, 'job_title', 'contains', '["head", "director"]');
INSERT INTO ecrm.scoring_rule (model_id, name, kind, group_name, points, source, event_kind, channel, min_count, award, half_life)
     VALUES (:m, 'Demo', 'engagement', NULL, 45, 'interaction', 'demo', 'sales', 1, 'once', NULL);
SELECT ecrm.activate_model(:m) IS NOT NULL AS activated;
SELECT ecrm.save_rule('hot lead', 'score_threshold', format('{"at_least": 70, "model_id": %s}', :m)::jsonb,
                      'create_task', '{"title": "Call {{ full_name }} today", "assignee": "sales@example.org"}') > 0 AS rule_saved;
SELECT is((SELECT round(score) FROM ecrm.lead_score WHERE customer_id = :ada AND model_id = :m), 30::double precision, 'a fit score of 30');
SELECT lives_ok(format($$SELECT ecrm.record_interaction(%s, 'sales', 'demo')$$, :ada), 'a demo');
SELECT is((SELECT round(score) FROM ecrm.lead_score WHERE customer_id = :ada AND model_id = :m), 75::double precision, 'the score follows at once');
SELECT is((SELECT lifecycle_stage::text FROM ecrm.customer_profile WHERE customer_id = :ada), 'customer',
          'the stage stays customer (scores never demote, the order made Ada a customer)');
SELECT is((SELECT recipient || ': ' || subject FROM ecrm.outbox o WHERE o.customer_id = :ada AND o.topic = 'task'),
          'sales@example.org: Call Ada Lovelace today', 'crossing the threshold created one task for its assignee');

-- recommendations -> automation: a message names what the model recommends to the customer
SELECT ecrm.upsert_product('CAN-1', 'Watering can', 'garden', 9.50) AS can \gset
SELECT ecrm.upsert_customer('{"first_name": "Bob", "email": "bob@example.org", "country": "GB"}') AS bob \gset
SELECT lives_ok(format($$SELECT ecrm.record_order(%s, '[{"sku": "HOSE-1", "quantity": 1}, {"sku": "CAN-1", "quantity": 2}]')$$, :bob),
                'Bob buys a hose and a watering can');
SELECT ecrm.train_item_model(trained_until => clock_timestamp()) IS NOT NULL AS trained;
SELECT ecrm.save_template('picks', 'email', 'Hi {{ first_name }}, try {{ recommended_products | our bestsellers }}.', 'For you') IS NOT NULL AS template;
SELECT ecrm.save_rule('picks on view', 'interaction', '{"kind": "product_view"}', 'send_message', '{"template": "picks"}') > 0 AS rule_saved;
SELECT is((SELECT array_agg(product_id) FROM ecrm.recommend(:ada, 3)), ARRAY[:can]::bigint[], 'Ada is recommended the watering can');
SELECT lives_ok(format($$SELECT ecrm.record_interaction(%s, 'web', 'product_view')$$, :ada), 'Ada views a product');
SELECT is((SELECT body FROM ecrm.outbox o WHERE o.customer_id = :ada AND o.payload ->> 'template' = 'picks'),
          'Hi Ada, try Watering can.', 'the message names the recommended product');

-- a merge carries the second profile's rows to the survivor; membership and score follow
SELECT lives_ok(format($$SELECT ecrm.record_interaction(%s, 'web', 'page_view')$$, :ada2), 'the duplicate has its own touch');
SELECT ecrm.merge_customers(ARRAY[:ada, :ada2]::bigint[]) IS NOT NULL AS merged;
SELECT is(ecrm.resolve_customer(:ada2), :ada::bigint, 'the duplicate resolves to Ada');
SELECT ok(ecrm.in_segment(:ada, 'garden_buyers') AND ecrm.in_segment(:ada2, 'garden_buyers'), 'the merged id counts as its survivor');
SELECT is(ARRAY(SELECT customer_id FROM ecrm.segment_membership m WHERE m.segment = 'garden_buyers' ORDER BY 1), ARRAY[:ada, :bob]::bigint[],
          'the membership is the survivor''s alone (and Bob''s)');

-- erasure: nothing of Ada is left in any table, view or the outbox
SELECT ecrm.erase_customer(:ada) IS NOT NULL AS erased;
SELECT is((SELECT count(*) FROM ecrm.outbox WHERE recipient = 'ada@example.org' OR body LIKE '%Ada%' OR subject LIKE '%Ada%'), 0::bigint,
          'the outbox holds nothing of Ada');
SELECT is((SELECT count(*) FROM ecrm.lead_score WHERE customer_id IN (:ada, :ada2)) + (SELECT count(*) FROM ecrm.segment_membership WHERE customer_id IN (:ada, :ada2)),
          0::bigint, 'no score and no segment membership is left');

SELECT * FROM finish();
ROLLBACK;
