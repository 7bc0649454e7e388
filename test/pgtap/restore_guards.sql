-- Guards and restores: while a dump is restored (ecrm._restoring(): check_function_bodies off, as pg_dump output
-- sets it, and a session user who owns the extension or is a superuser) the guards that refuse or re-derive rows
-- stand aside; otherwise they apply.  No ecrm table references itself (pg_dump could not order its rows), and
-- what the self-referencing keys did is done explicitly.  test/shell/restore_exact.sh restores whole shops;
-- this file checks each guard on its own.
BEGIN;
SELECT plan(14);
SET LOCAL ecrm.default_country = 'GB';

SELECT is((SELECT string_agg(conrelid::regclass::text, ', ') FROM pg_constraint
            WHERE contype = 'f' AND conrelid = confrelid AND connamespace = 'ecrm'::regnamespace), NULL,
          'no ecrm table has a foreign key to itself (pg_dump warns of circular keys and cannot order the rows)');
SELECT ok(NOT ecrm._restoring(), 'not restoring in a normal session');
SET LOCAL check_function_bodies = off;
SELECT ok(ecrm._restoring(), 'restoring with check_function_bodies off, as a superuser (pg_dump output)');
RESET check_function_bodies;
SET LOCAL ecrm.restoring = on;
SELECT ok(ecrm._restoring(), 'restoring with ecrm.restoring = on (another copy tool), as a superuser');
RESET ecrm.restoring;

-- an erased customer: new rows are refused, restored ones are taken
SELECT ecrm.upsert_customer('{"first_name": "Rhea", "email": "rhea.restore@example.org"}') AS rhea \gset
SELECT ecrm.erase_customer(:rhea) IS NOT NULL AS erased;
SELECT throws_ok(format($$INSERT INTO ecrm.consent_event (customer_id, purpose, granted) VALUES (%s, 'sms', false)$$, :rhea),
                 '22023', format('customer %s has been erased', :rhea), 'new data for an erased customer is refused');
SET LOCAL check_function_bodies = off;
SELECT lives_ok(format($$INSERT INTO ecrm.consent_event (customer_id, purpose, granted, recorded_at) VALUES (%s, 'sms', false, '2026-01-01')$$, :rhea),
                'a restored consent of an erased customer is taken');
RESET check_function_bodies;

-- a restored ticket keeps its (missing) team whatever the routing rules say; a new one is routed
SELECT ecrm.upsert_customer('{"first_name": "Otto", "email": "otto.restore@example.org"}') AS otto \gset
SELECT ecrm.save_routing_rule('kites', 'kite team', keywords => 'kite') IS NOT NULL AS saved;
SET LOCAL check_function_bodies = off;
INSERT INTO ecrm.ticket (customer_id, subject, opened_at, first_response_due_at, sla_due_at)
VALUES (:otto, 'My kite broke', '2026-01-01', '2026-01-01 08:00', '2026-01-04') RETURNING ticket_id AS restored \gset
RESET check_function_bodies;
SELECT is((SELECT team FROM ecrm.ticket WHERE ticket_id = :restored), NULL, 'a restored ticket is not routed again');
SELECT ecrm.open_ticket(:otto, 'My other kite broke') AS routed \gset
SELECT is((SELECT team FROM ecrm.ticket WHERE ticket_id = :routed), 'kite team', 'a new ticket is routed');

-- a restored template keeps its time
SET LOCAL check_function_bodies = off;
INSERT INTO ecrm.message_template (name, channel, purpose, body, updated_at) VALUES ('restored', 'email', 'marketing_email', 'Hi {{ first_name }}', '2026-01-01');
RESET check_function_bodies;
SELECT is((SELECT updated_at FROM ecrm.message_template WHERE name = 'restored'), '2026-01-01'::timestamptz, 'a restored template keeps updated_at');

-- what the dropped self-referencing keys did
SELECT ecrm.save_rule('parent', 'order', '{}', 'create_task', '{"title": "p"}') IS NOT NULL AS saved;
SELECT ecrm.save_rule('child', 'rule', '{"rule": "parent"}', 'create_task', '{"title": "c"}') IS NOT NULL AS saved;
SELECT throws_ok($$DELETE FROM ecrm.automation_rule WHERE name = 'parent'$$, '23503', NULL, 'a rule with follow-ups cannot be deleted');
SELECT lives_ok($$DELETE FROM ecrm.automation_rule WHERE name IN ('parent', 'child')$$, 'a rule goes together with its follow-ups');
SELECT ecrm.create_scoring_model('restore_tap', half_life => '30 days', max_score => 100, mql_threshold => 40, sql_threshold => 70) AS v1 \gset
SELECT ecrm.new_model_version('restore_tap') AS v2 \gset
DELETE FROM ecrm.scoring_model WHERE model_id = :v1;
SELECT is((SELECT based_on FROM ecrm.scoring_model WHERE model_id = :v2), NULL, 'deleting a version clears based_on of the versions made from it');
SELECT throws_ok(format($$UPDATE ecrm.scoring_model SET based_on = 999999999 WHERE model_id = %s$$, :v2), '23503', NULL,
                 'based_on must name an existing version');
SELECT ecrm.upsert_customer('{"first_name": "Mo", "email": "mo.restore@example.org"}') AS mo \gset
SELECT is(ecrm.resolve_customer(:mo), :mo::bigint, 'a live profile resolves to itself');

SELECT * FROM finish();
ROLLBACK;
