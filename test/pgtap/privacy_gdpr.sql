-- GDPR: export (access, portability) and erasure, through the registry of customer tables,
-- following merged identities; after erasure no table or view holds the person's email, phone or name.
BEGIN;
SELECT plan(43);
SET LOCAL ecrm.pseudonym_key = 'pgtap-privacy-key-0002';

-- Grace, with an old profile merged into her, and everything a CRM collects
SELECT ecrm.upsert_customer('{"first_name": "Grace", "last_name": "Hopperton", "email": "grace.hopperton@navy.example",
                              "phone": "+44 20 7946 2001", "birth_date": "1986-12-09", "street": "1 Cobol Lane",
                              "city": "Arlington", "company": "Hopperton Compilers", "attributes": {"nickname": "Amazing Grace"}}') AS grace \gset
SELECT ecrm.upsert_customer('{"first_name": "Gracie", "last_name": "Hopperton", "email": "g.hopperton@oldmail.example",
                              "phone": "+44 20 7946 2002"}') AS old \gset
SELECT ecrm.add_identity(:grace, 'external', 'SHOP-GH-77', 'webshop') IS NOT NULL AS added;
SELECT ecrm.record_interaction(:grace, 'web', 'page_view', '2026-01-02', '{"url": "/account?email=grace.hopperton@navy.example"}') IS NOT NULL AS added;
SELECT ecrm.record_interaction(:old, 'email', 'email_open', '2025-06-02') IS NOT NULL AS added;
SELECT ecrm.upsert_product('BUG-1', 'Moth in a frame', 'decor', 99.90) IS NOT NULL AS added;
SELECT ecrm.record_order(:grace, '[{"sku": "BUG-1", "quantity": 1}]', '2026-01-03', external_ref => 'INV-1001',
                         attributes => '{"gift_message": "For Grace Hopperton"}') AS order_id \gset
SELECT ecrm.record_order(:old, '[{"sku": "BUG-1", "quantity": 2}]', '2025-06-03') IS NOT NULL AS added;
SELECT ecrm.open_ticket(:grace, 'Invoice for Grace Hopperton', 'Please send it to grace.hopperton@navy.example or call +44 20 7946 2001') AS ticket \gset
SELECT ecrm.update_ticket(:ticket, comment => 'Sent to Grace Hopperton', author => 'sam') IS NOT NULL AS updated;
SELECT ecrm.record_consent(:grace, 'marketing_email', true, '2026-01-01', 'signup', '{"ip": "203.0.113.9", "email": "grace.hopperton@navy.example"}') IS NOT NULL AS added;
SELECT ecrm.record_consent(:old, 'marketing_email', false, '2025-06-01') IS NOT NULL AS added;
SELECT ecrm.create_campaign('Bugs', 'email') AS campaign \gset
SELECT ecrm.record_campaign_events(:campaign, 'sent', ARRAY[:grace], '2026-01-05', payload => '{"to": "grace.hopperton@navy.example"}') AS sent;
UPDATE ecrm.customer_profile SET lifecycle_stage = 'evangelist' WHERE customer_id = :grace;
UPDATE ecrm.customer_profile SET status = 'merged', merged_into = :grace WHERE customer_id = :old;
-- a rejected import row and a pending one that name her
INSERT INTO ecrm.stage_reject (stage, row_no, reason, row_data)
VALUES ('customer', 1, 'bad phone', '{"email": "Grace.Hopperton@navy.example", "phone": "call me"}');
INSERT INTO ecrm.stage_customer (external_id, first_name, email) VALUES ('X1', 'Grace', 'grace.hopperton@navy.example');
-- tables of another capability, registered: one deleted, one kept with its personal column anonymized
CREATE TABLE ecrm.tap_score (customer_id bigint NOT NULL, score double precision, reason text);
CREATE TABLE ecrm.tap_invoice (invoice_id int PRIMARY KEY, customer_id bigint NOT NULL, amount numeric NOT NULL,
                               billing_name text NOT NULL, billing_email text);
INSERT INTO ecrm.customer_table (relid, on_merge, on_erase, pii_columns) VALUES
    ('ecrm.tap_score', 'repoint', 'delete', '{reason}'),
    ('ecrm.tap_invoice', 'repoint', 'anonymize', '{billing_name,billing_email}');
INSERT INTO ecrm.tap_score VALUES (:grace, 0.93, 'Grace Hopperton opened every mail');
INSERT INTO ecrm.tap_invoice VALUES (1, :grace, 99.90, 'Grace Hopperton', 'grace.hopperton@navy.example'),
                                    (2, :old, 199.80, 'Gracie Hopperton', 'g.hopperton@oldmail.example');
-- statistics that hold her address
ANALYZE ecrm.customer_profile, ecrm.identity, ecrm.tap_invoice;

-- the strings that must be gone after erasure
CREATE FUNCTION pg_temp.personal(t text) RETURNS boolean LANGUAGE sql IMMUTABLE
    RETURN t ILIKE '%hopperton%' OR t ILIKE '%grace.h%' OR t LIKE '%7946 200%' OR t LIKE '%7946200%' OR t LIKE '%SHOP-GH-77%'
        OR t LIKE '%1986-12-09%' OR t LIKE '%Cobol%' OR t LIKE '%Amazing Grace%';
-- every row of every table and view of ecrm and ecrm_masked, as text
CREATE FUNCTION pg_temp.all_rows() RETURNS TABLE (relation text, row_text text) LANGUAGE plpgsql AS $$
DECLARE r regclass;
BEGIN
    FOR r IN SELECT c.oid FROM pg_class c WHERE c.relnamespace IN ('ecrm'::regnamespace, 'ecrm_masked'::regnamespace)
                AND c.relkind IN ('r', 'v', 'm', 'p') ORDER BY 1 LOOP
        RETURN QUERY EXECUTE format('SELECT %L, x::text FROM %s x', r::text, r);
    END LOOP;
END $$;

-- export: everything, across both profiles and every registered table
SELECT ecrm.export_customer(:old) AS doc \gset
SELECT is((:'doc'::jsonb ->> 'customer_id')::bigint, :grace::bigint, 'a merged id exports its survivor');
SELECT is(:'doc'::jsonb -> 'profile_ids', format('[%s, %s]', :grace, :old)::jsonb, 'with every profile merged into it');
SELECT is(:'doc'::jsonb #>> '{profile,email}', 'grace.hopperton@navy.example', 'the profile');
SELECT is(jsonb_array_length(:'doc'::jsonb #> '{data,identity}'), 5, 'identities of both profiles (2 emails, 2 phones, 1 shop id)');
SELECT is(jsonb_array_length(:'doc'::jsonb #> '{data,interaction}'), 2, 'interactions of both profiles');
SELECT is((SELECT sum((o ->> 'total')::numeric) FROM jsonb_array_elements(:'doc'::jsonb #> '{data,orders}') o), 299.70, 'orders of both profiles');
SELECT is(jsonb_array_length(:'doc'::jsonb #> '{data,order_line}'), 2, 'order lines');
SELECT is(jsonb_array_length(:'doc'::jsonb #> '{data,ticket}') + jsonb_array_length(:'doc'::jsonb #> '{data,ticket_event}'), 3, 'tickets and their history');
SELECT is(jsonb_array_length(:'doc'::jsonb #> '{data,consent_event}'), 2, 'every consent answer');
SELECT is(:'doc'::jsonb -> 'consents', '{"marketing_email": false}'::jsonb, 'and the consent in force (least permissive across profiles)');
SELECT is(jsonb_array_length(:'doc'::jsonb #> '{data,campaign_event}'), 1, 'campaign events');
SELECT ok(jsonb_array_length(:'doc'::jsonb #> '{data,lifecycle_change}') >= 1, 'lifecycle history');
SELECT is(:'doc'::jsonb #>> '{data,tap_score,0,reason}', 'Grace Hopperton opened every mail', 'scores of another capability, once registered');
SELECT is(jsonb_array_length(:'doc'::jsonb #> '{data,tap_invoice}'), 2, 'and its invoices');
SELECT throws_ok('SELECT ecrm.export_customer(424242)', '23503', 'customer 424242 does not exist', 'unknown customer');
SELECT throws_ok('SELECT ecrm.export_customer(NULL)', '22004', 'customer_id must not be null', 'NULL customer');

-- erasure is one transaction: a table it cannot erase stops it before anything changes
CREATE TABLE ecrm.tap_bad (customer_id bigint NOT NULL, age integer NOT NULL);
INSERT INTO ecrm.tap_bad VALUES (:grace, 40);
INSERT INTO ecrm.customer_table (relid, on_merge, on_erase, pii_columns) VALUES ('ecrm.tap_bad', 'repoint', 'anonymize', '{age}');
SELECT throws_ok(format('SELECT ecrm.erase_customer(%s)', :grace), '55000',
                 'cannot erase column ecrm.tap_bad.age (integer, NOT NULL without a default)', 'an impossible erasure is an error');
SELECT is((SELECT count(*) FROM pg_temp.all_rows() WHERE relation = 'ecrm.identity' AND pg_temp.personal(row_text)), 5::bigint,
          'and nothing was erased');
DELETE FROM ecrm.customer_table WHERE relid = 'ecrm.tap_bad'::regclass;
DROP TABLE ecrm.tap_bad;
SELECT throws_ok(format($$SELECT ecrm.erase_customer(%s, 'ticket for grace.hopperton@navy.example')$$, :grace), '22023',
                 'request_ref must be 1 to 100 letters, digits or . _ : / # -', 'a request reference cannot hold personal data');
SELECT throws_ok('SELECT ecrm.erase_customer(424242)', '23503', 'customer 424242 does not exist', 'unknown customer');

-- erase, through the merged id
SELECT ecrm.erase_customer(:old, 'GDPR-2026/17') AS result \gset
SELECT is(:'result'::jsonb ->> 'status', 'erased', 'erased');
SELECT is(:'result'::jsonb -> 'profile_ids', format('[%s, %s]', :grace, :old)::jsonb, 'both profiles');
SELECT is((SELECT count(*) FROM pg_temp.all_rows() r WHERE pg_temp.personal(r.row_text)), 0::bigint,
          'no table or view of ecrm or ecrm_masked holds her email, phone, name, shop id, birth date, street or attributes');
SELECT is((SELECT array_agg(DISTINCT status ORDER BY status) FROM ecrm.customer_profile WHERE customer_id IN (:grace, :old)),
          '{erased}'::ecrm.customer_status[], 'both profiles are erased shells');
SELECT is((SELECT count(*) FROM ecrm.customer_profile WHERE customer_id IN (:grace, :old) AND merged_into IS NOT NULL), 0::bigint,
          'no longer merged');
SELECT is((SELECT count(*) FROM ecrm.identity WHERE customer_id IN (:grace, :old)), 0::bigint, 'identities deleted');
SELECT is((SELECT count(*) FROM ecrm.interaction WHERE customer_id IN (:grace, :old)), 0::bigint, 'interactions deleted');
SELECT is((SELECT count(*) FROM ecrm.campaign_event WHERE customer_id IN (:grace, :old)), 0::bigint, 'campaign events deleted');
SELECT is((SELECT sum(total) FROM ecrm.orders WHERE customer_id IN (:grace, :old)), 299.70, 'order totals kept for accounting');
SELECT is((SELECT array_agg(DISTINCT attributes) FROM ecrm.orders WHERE customer_id IN (:grace, :old)), '{"{}"}'::jsonb[],
          'without their free text');
SELECT is((SELECT count(*) FROM ecrm.order_line WHERE customer_id IN (:grace, :old)), 2::bigint, 'order lines kept');
SELECT is((SELECT count(*) FROM ecrm.consent_event WHERE customer_id IN (:grace, :old) AND evidence = '{}'), 2::bigint,
          'proof of consent kept, its evidence anonymized');
SELECT is((SELECT count(*) FROM ecrm.tap_score), 0::bigint, 'a registered table with on_erase delete is emptied of her');
SELECT is((SELECT sum(amount) FROM ecrm.tap_invoice WHERE billing_name = '[erased]' AND billing_email IS NULL), 299.70,
          'a registered table with on_erase anonymize keeps amounts, not names');
SELECT is((SELECT count(*) FROM ecrm.stage_reject) + (SELECT count(*) FROM ecrm.stage_customer), 0::bigint, 'staged imports naming her are gone');
SELECT is((SELECT count(*) FROM pg_stats WHERE schemaname = 'ecrm'
             AND (most_common_vals::text ILIKE '%hopperton%' OR histogram_bounds::text ILIKE '%hopperton%')), 0::bigint,
          'planner statistics no longer hold her identifiers');
SELECT is((SELECT count(*) FROM ecrm.consent_state WHERE customer_id IN (:grace, :old)), 0::bigint, 'no consent state');
-- the log holds what was done, not who it was
SELECT is((SELECT request_ref || ' ' || array_to_string(profile_ids, ',') FROM ecrm.erasure_log WHERE customer_id = :grace),
          format('GDPR-2026/17 %s,%s', :grace, :old), 'the erasure is logged with its request reference');
SELECT is((SELECT (summary #>> '{identity,deleted}')::int FROM ecrm.erasure_log WHERE customer_id = :grace), 5, 'with what was done per table');
-- a second call says so and changes nothing
SET LOCAL client_min_messages = warning;
SELECT is(ecrm.erase_customer(:grace) ->> 'status', 'already_erased', 'a second erasure is a no-op that says so');
SELECT is((SELECT count(*) FROM ecrm.erasure_log), 1::bigint, 'and logs nothing');
SELECT throws_ok(format($$SELECT ecrm.record_interaction(%s, 'web', 'page_view')$$, :grace), '22023',
                 format('customer %s has been erased', :grace), 'an erased customer receives no new data');
SELECT is((SELECT count(*) FROM jsonb_each_text(ecrm.export_customer(:grace)) e WHERE pg_temp.personal(e.value)), 0::bigint,
          'an export after erasure holds nothing personal');

SELECT * FROM finish();
ROLLBACK;
