-- The tour of privacy: masking functions, what an analyst sees, consent, PII discovery,
-- export and erasure, static masking.
\pset footer off
-- A key for this demo session only.  In production a superuser puts it in postgresql.conf or runs
-- LOAD 'ecrm'; ALTER SYSTEM SET ecrm.pseudonym_key = '...'; SELECT pg_reload_conf();
SET ecrm.pseudonym_key = 'demo-only-key-never-use-in-production';

\echo
\echo '== Masking functions: the person goes, what analysts need stays =='
SELECT ecrm.mask_email('Jane.Doe@Gmail.com') AS email, ecrm.mask_email('ops@acme-corp.co.uk') AS company_email,
       ecrm.mask_phone('+44 20 7946 0958') AS phone, ecrm.mask_name('Jean-Paul Sartre') AS name,
       ecrm.mask_address('221B Baker Street, London') AS street, ecrm.mask_postal_code('SW1A 1AA') AS postcode;
SELECT ecrm.mask_card('4111 1111 1111 1111') AS card, ecrm.mask_card('4111 1111 1111 1112') AS bad_card,
       ecrm.mask_iban('GB82 WEST 1234 5698 7654 32') AS iban, ecrm.mask_national_id('123-45-6789', 'us_ssn') AS ssn,
       ecrm.mask_ip('203.0.113.77') AS ip, ecrm.mask_date('1985-12-10', 'year') AS born, ecrm.mask_range(37, 10) AS age;
\echo '-- pseudonyms: deterministic (joins and counts work), realistic, keyed'
SELECT ecrm.pseudonym('jane.doe@gmail.com') AS token, ecrm.pseudonym_email('Jane.Doe+news@gmail.com') AS fake_email,
       ecrm.pseudonym_phone('+44 20 7946 0958') AS fake_phone, ecrm.pseudonym_name('Jane Doe') AS fake_name;

\echo
\echo '== What an analyst sees: the masked twin of every view (schema ecrm_masked, same names) =='
DO $$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'demo_analyst') THEN CREATE ROLE demo_analyst; END IF;
END $$;
SELECT ecrm.mask_role('demo_analyst');
SET ROLE demo_analyst;
SET search_path = ecrm_masked, public;   -- what mask_role gives the role at login
SELECT customer_id, full_name, email, phone, country, order_count, revenue, identities
  FROM customer_360 ORDER BY revenue DESC LIMIT 5;
\echo '-- no path to the raw data:'
\set ON_ERROR_STOP 0
SELECT email FROM ecrm.customer_profile LIMIT 1;
SELECT email FROM ecrm.customers LIMIT 1;
SELECT ecrm.export_customer(1);
SHOW ecrm.pseudonym_key;
\set ON_ERROR_STOP 1
RESET ROLE;
RESET search_path;
\echo '-- how each column of the twin is masked, and why'
SELECT column_name, strategy, decided_by FROM ecrm.masked_view_plan('ecrm.customer_360') WHERE strategy <> 'raw';

\echo
\echo '== A policy change regenerates the twins: fake but consistent addresses for analysts =='
SELECT ecrm.alter_mask_policy('ecrm.customer_profile', 'email', 'pseudonym_email');
SET ROLE demo_analyst;
SELECT customer_id, full_name, email FROM ecrm_masked.customers WHERE customer_id IS NOT NULL ORDER BY customer_id LIMIT 3;
RESET ROLE;
SELECT ecrm.alter_mask_policy('ecrm.customer_profile', 'email', 'email', '{"keep": "provider"}');

\echo
\echo '== Consent: customers who withdrew profiling are left out of analytics (masked in the customer list) =='
SELECT (SELECT count(*) FROM ecrm.customers) AS customers,
       (SELECT count(*) FROM ecrm.consent_state WHERE purpose = 'profiling' AND NOT granted) AS refused_profiling,
       (SELECT count(*) FROM ecrm_masked.customer_360) AS analysts_see_in_360,
       (SELECT count(*) FROM ecrm_masked.customers WHERE customer_id IS NULL) AS masked_rows_in_customers;
\echo '-- who an email campaign may contact, and sends recorded without consent (an audit)'
SELECT c.name, (SELECT count(*) FROM ecrm.campaign_audience(c.campaign_id)) AS may_contact_now,
       (SELECT count(*) FROM ecrm.consent_violations v WHERE v.campaign_id = c.campaign_id) AS sent_without_consent
  FROM ecrm.campaign c WHERE c.channel = 'email' ORDER BY c.starts_at DESC LIMIT 4;

\echo
\echo '== PII discovery: which columns of a table hold personal data =='
SELECT column_name, kind, share, suggested_strategy FROM ecrm.discover_pii('ecrm.customer_profile') ORDER BY column_name;

\echo
\echo '== GDPR: export everything about one customer, then erase them everywhere =='
SELECT customer_id AS chosen FROM ecrm.customer_360 WHERE order_count > 0 AND open_tickets >= 0 ORDER BY revenue DESC LIMIT 1 \gset
SELECT key AS table_name, jsonb_array_length(value) AS rows
  FROM jsonb_each(ecrm.export_customer(:chosen) -> 'data') WHERE jsonb_array_length(value) > 0 ORDER BY 1;
SELECT t.key AS table_name, t.value AS erased FROM jsonb_each(ecrm.erase_customer(:chosen, 'DEMO-REQUEST-1') -> 'tables') t ORDER BY 1;
SELECT customer_id, status, first_name, email, phone FROM ecrm.customer_profile WHERE customer_id = :chosen;
SELECT count(*) AS orders_kept_for_accounting, sum(total) AS their_total FROM ecrm.orders WHERE customer_id = :chosen;
SELECT ecrm.erase_customer(:chosen) ->> 'status' AS second_call;

\echo
\echo '== Static masking: a masked copy of the whole CRM for development =='
SELECT table_name, row_count, masked_columns FROM ecrm.create_masked_copy('ecrm_demo_copy', replace => true)
 WHERE cardinality(masked_columns) > 0;
SELECT customer_id, first_name, last_name, email, phone, birth_date FROM ecrm_demo_copy.customer_profile ORDER BY customer_id LIMIT 3;
RESET ecrm.pseudonym_key;
