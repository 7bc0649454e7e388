-- The demo generator: deterministic, realistic, refuses a non-empty CRM.
\pset null '(null)'
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP EXTENSION ecrm CASCADE;
CREATE EXTENSION ecrm;
RESET client_min_messages;
SELECT ecrm.generate_demo_data(5);
SELECT ecrm.generate_demo_data(1000000000);
SELECT ecrm.generate_demo_data(100, NULL);
SELECT ecrm.generate_demo_data(100, 1, '2999-01-01');
SELECT * FROM ecrm.generate_demo_data(300, 11, '2026-03-01 00:00:00+00');
SELECT ecrm.generate_demo_data(300, 11, '2026-03-01 00:00:00+00');
-- deterministic: a fingerprint of the generated shop
SELECT md5(string_agg(concat_ws('|', customer_id, first_name, last_name, email, phone, country, lifecycle_stage, created_at), ',' ORDER BY customer_id)) AS profiles_md5
  FROM ecrm.customer_profile;
SELECT md5(string_agg(concat_ws('|', order_id, customer_id, ordered_at, total), ',' ORDER BY order_id)) AS orders_md5 FROM ecrm.orders;
-- realistic: every channel, every lifecycle stage, every campaign event kind, duplicates with known truth
SELECT count(DISTINCT channel) AS channels FROM ecrm.interaction;
SELECT count(DISTINCT lifecycle_stage) AS stages FROM ecrm.customer_profile;
SELECT count(DISTINCT kind) AS campaign_event_kinds FROM ecrm.campaign_event;
SELECT count(*) AS people_with_duplicates FROM (SELECT attributes->>'demo_person' FROM ecrm.customer_profile GROUP BY 1 HAVING count(*) > 1) d;
SELECT count(*) AS profiles_with_non_ascii_names FROM ecrm.customer_profile WHERE first_name || last_name ~ '[^ -~]';
SELECT bool_and(ecrm.normalize_email(email) IS NOT NULL) FILTER (WHERE email IS NOT NULL) AS emails_valid, bool_and(phone ~ '^\+[1-9][0-9]{6,14}$') AS phones_e164
  FROM ecrm.customer_profile;
SELECT bool_and(total = (SELECT sum(amount) FROM ecrm.order_line l WHERE l.order_id = o.order_id)) AS totals_agree FROM ecrm.orders o;
SELECT bool_and(occurred_at <= '2026-03-01') AS nothing_after_as_of FROM ecrm.customer_timeline;
-- consistent with consent: no campaign message to someone without consent for its purpose at the time
SELECT count(*) AS sends_without_consent FROM ecrm.consent_violations;
