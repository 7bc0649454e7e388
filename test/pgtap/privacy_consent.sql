-- Effective consent per customer and purpose: the latest answer of each profile wins, and across
-- the profiles merged into a customer the least permissive one; audiences and audits respect it.
BEGIN;
SELECT plan(35);

SELECT ecrm.upsert_customer('{"first_name": "Cleo", "email": "cleo@example.org", "phone": "+44 20 7946 1001"}') AS cleo \gset
SELECT ecrm.upsert_customer('{"first_name": "Cleo", "email": "cleo.old@example.org"}') AS cleo_old \gset
SELECT ecrm.upsert_customer('{"first_name": "Cleo", "email": "cleo.oldest@example.org"}') AS cleo_oldest \gset
SELECT ecrm.upsert_customer('{"first_name": "Dan", "email": "dan@example.org"}') AS dan \gset
SELECT ecrm.upsert_customer('{"first_name": "Eve", "phone": "+44 20 7946 1005"}') AS eve \gset

-- one profile: no answer, then the latest answer wins
SELECT is(ecrm.has_consent(:cleo, 'marketing_email'), false, 'no answer means no consent');
SELECT ecrm.record_consent(:cleo, 'marketing_email', true, '2026-01-01') IS NOT NULL AS recorded;
SELECT is(ecrm.has_consent(:cleo, 'marketing_email'), true, 'a grant is in force');
SELECT ecrm.record_consent(:cleo, 'marketing_email', false, '2026-01-03') IS NOT NULL AS recorded;
SELECT ecrm.record_consent(:cleo, 'marketing_email', true, '2026-01-02') IS NOT NULL AS recorded;
SELECT is(ecrm.has_consent(:cleo, 'marketing_email'), false, 'the latest answer wins, whatever order it was recorded in');
SELECT ecrm.record_consent(:cleo, 'marketing_email', true, '2026-01-04') IS NOT NULL AS recorded;
SELECT is(ecrm.has_consent(:cleo, 'marketing_email'), true, 'granted again');
SELECT is(ecrm.has_consent(:cleo, 'marketing_email', '2026-01-03 12:00'), false, 'in force at a past time: withdrawn then');
SELECT is(ecrm.has_consent(:cleo, 'marketing_email', '2025-12-31'), false, 'before any answer: no consent');
SELECT is(ecrm.has_consent(:cleo, 'sms'), false, 'another purpose is separate');
SELECT throws_ok(format($$SELECT ecrm.has_consent(%s, 'marketing_mail')$$, :cleo), '22023', 'unknown consent purpose "marketing_mail"',
                 'a misspelt purpose is an error, not a silent no');
SELECT is(ecrm.has_consent(NULL, 'sms'), false, 'NULL customer: no consent');
SELECT is(ecrm.has_consent(:cleo, NULL), false, 'NULL purpose: no consent');
SELECT is(ecrm.has_consent(424242, 'sms'), false, 'unknown customer: no consent');

-- merged identities: a tombstone's refusal wins over the survivor's grant
SELECT ecrm.record_consent(:cleo_old, 'marketing_email', false, '2025-12-01') IS NOT NULL AS recorded;
SELECT ecrm.record_consent(:cleo_old, 'sms', true, '2025-12-01') IS NOT NULL AS recorded;
UPDATE ecrm.customer_profile SET status = 'merged', merged_into = :cleo WHERE customer_id = :cleo_old;
SELECT is(ecrm.has_consent(:cleo, 'marketing_email'), false, 'after a merge, the merged profile''s older refusal still counts');
SELECT is(ecrm.has_consent(:cleo_old, 'marketing_email'), false, 'a merged id answers for its survivor');
SELECT is(ecrm.has_consent(:cleo, 'sms'), true, 'a purpose only the merged profile answered is in force for the survivor');
SELECT results_eq(format('SELECT purpose, granted, profiles FROM ecrm.effective_consents(%s)', :cleo),
                  $$VALUES ('marketing_email', false, 2), ('profiling', NULL::boolean, 0), ('sms', true, 1), ('third_party_sharing', NULL, 0)$$,
                  'effective_consents lists every purpose, with how many profiles answered');
SELECT is((SELECT count(*) FROM ecrm.consent_state WHERE customer_id = :cleo_old), 0::bigint, 'a merged profile has no state of its own');
SELECT throws_ok('SELECT * FROM ecrm.effective_consents(NULL)', '22004', 'customer_id must not be null', 'effective_consents of NULL');
SELECT throws_ok('SELECT * FROM ecrm.effective_consents(424242)', '23503', 'customer 424242 does not exist', 'effective_consents of an unknown customer');
-- a chain: the oldest merged into the old one, which is merged into the survivor
SELECT ecrm.record_consent(:cleo_oldest, 'sms', false, '2025-11-01') IS NOT NULL AS recorded;
UPDATE ecrm.customer_profile SET status = 'merged', merged_into = :cleo_old WHERE customer_id = :cleo_oldest;
SELECT is(ecrm.has_consent(:cleo, 'sms'), false, 'a refusal two merges away counts');
-- an unmerge gives each profile its own answers back
UPDATE ecrm.customer_profile SET status = 'active', merged_into = NULL WHERE customer_id = :cleo_old;
SELECT is(ecrm.has_consent(:cleo, 'marketing_email'), true, 'after an unmerge the survivor is back to its own answer');
SELECT is(ecrm.has_consent(:cleo_old, 'marketing_email'), false, 'and the unmerged profile to its own');
SELECT is(ecrm.has_consent(:cleo_old, 'sms'), false, 'with the chain that hangs from it');
UPDATE ecrm.customer_profile SET status = 'merged', merged_into = :cleo WHERE customer_id = :cleo_old;
-- answering again after the merge supersedes what the merged profiles said before it
SELECT ecrm.record_consent(:cleo_old, 'marketing_email', true, now() + interval '1 minute') IS NOT NULL AS recorded;
SELECT is(ecrm.has_consent(:cleo, 'marketing_email'), true, 'a customer who consents again after the merge is contactable');
SELECT is(ecrm.has_consent(:cleo, 'marketing_email', now()), false, 'but was not before that answer');

-- the state follows deletions and bulk inserts too, and can be rebuilt
SELECT ecrm.record_consent(:dan, 'marketing_email', true, '2026-01-01') IS NOT NULL AS recorded;
SELECT ecrm.record_consent(:eve, 'sms', true, '2026-01-01') IS NOT NULL AS recorded;
DELETE FROM ecrm.consent_event WHERE customer_id = :eve;
SELECT is(ecrm.has_consent(:eve, 'sms'), false, 'deleting the answer removes the consent');
SELECT ecrm.record_consent(:eve, 'sms', true, '2026-01-01') IS NOT NULL AS recorded;
CREATE TEMP TABLE before_rebuild AS SELECT customer_id, purpose, granted, recorded_at, profiles FROM ecrm.consent_state;
SELECT ok(ecrm.refresh_consent_state() > 0, 'refresh_consent_state rebuilds the state');
SELECT set_eq('SELECT customer_id, purpose, granted, recorded_at, profiles FROM ecrm.consent_state',
              'SELECT * FROM before_rebuild', 'and the triggers had kept it exact');

-- campaigns send to the audience, never to a raw list
SELECT ecrm.create_campaign('Spring news', 'email', 'marketing_email') AS spring \gset
SELECT ecrm.create_campaign('Flash SMS', 'phone', 'sms') AS flash \gset
SELECT results_eq(format('SELECT customer_id, address FROM ecrm.campaign_audience(%s)', :spring),
                  format($$VALUES (%s::bigint, 'cleo@example.org'), (%s, 'dan@example.org')$$, :cleo, :dan),
                  'an email campaign reaches those who consent to its purpose, at their email address');
SELECT results_eq(format('SELECT customer_id, address FROM ecrm.campaign_audience(%s)', :flash),
                  format($$VALUES (%s::bigint, '+442079461005')$$, :eve),
                  'an SMS campaign needs consent to sms and a phone number');
SELECT results_eq(format('SELECT customer_id FROM ecrm.campaign_audience(%s, ARRAY[%s, %s, 424242])', :spring, :cleo_old, :eve),
                  format('VALUES (%s::bigint)', :cleo), 'candidates are resolved (a merged id) and filtered');
SELECT throws_ok('SELECT * FROM ecrm.campaign_audience(424242)', '23503', 'campaign 424242 does not exist', 'unknown campaign');
SELECT throws_ok('SELECT * FROM ecrm.campaign_audience(NULL)', '23503', 'campaign NULL does not exist', 'NULL campaign');
-- an unsubscribe withdraws consent at once, and the audience follows
SELECT ecrm.record_campaign_events(:spring, 'sent', ARRAY[:cleo, :dan], now() + interval '2 minutes') AS sent;
SELECT ecrm.record_campaign_events(:spring, 'unsubscribed', ARRAY[:dan], now() + interval '3 minutes') AS unsubscribed;
SELECT is(ecrm.has_consent(:dan, 'marketing_email'), false, 'unsubscribed');
SELECT results_eq(format('SELECT customer_id FROM ecrm.campaign_audience(%s)', :spring), format('VALUES (%s::bigint)', :cleo),
                  'the next send leaves the unsubscriber out');
-- a send recorded without consent is an audit finding
SELECT ecrm.record_campaign_events(:spring, 'sent', ARRAY[:dan, :eve], now() + interval '4 minutes') AS sent;
SELECT results_eq('SELECT customer_id, campaign FROM ecrm.consent_violations ORDER BY 1',
                  format($$VALUES (%s::bigint, 'Spring news'), (%s, 'Spring news')$$, :dan, :eve),
                  'consent_violations lists messages sent without consent in force at the time');

SELECT * FROM finish();
ROLLBACK;
