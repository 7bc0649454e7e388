-- Masking policies, the masked twins generated from view lineage, COPY as a masked role,
-- static masking and PII discovery.
SET client_min_messages = warning;
DROP EXTENSION ecrm CASCADE;
CREATE EXTENSION ecrm;
RESET client_min_messages;
\set SHOW_CONTEXT never
SET ecrm.pseudonym_key = 'regression-test-key-0001';

DROP TABLE IF EXISTS ecrm.regress_loyalty CASCADE;
SELECT ecrm.upsert_customer('{"first_name": "Ada", "last_name": "Lovelace", "email": "Ada.Lovelace@gmail.com", "phone": "+44 20 7946 0001",
                              "birth_date": "1985-12-10", "street": "12 St James''s Square", "city": "London", "postal_code": "SW1Y 4JH",
                              "country": "GB", "company": "Analytical Engines Ltd", "created_at": "2026-01-01 10:00:00+00"}') AS ada \gset
SELECT ecrm.upsert_customer('{"first_name": "Bob", "last_name": "Refuser", "email": "bob@refuser.co.uk", "phone": "+44 20 7946 0002",
                              "city": "Leeds", "country": "GB", "created_at": "2026-01-01 11:00:00+00"}') AS bob \gset
SELECT ecrm.record_consent(:bob, 'profiling', false, '2026-01-02 00:00:00+00') > 0 AS refused;

-- lineage: every view column and the table columns it is computed from
SELECT column_name, source_table, source_column, direct FROM ecrm.view_column_sources('ecrm.customers')
 WHERE column_name IN ('customer_id', 'full_name', 'email') ORDER BY 1, 2, 3;
SELECT column_name, string_agg(source_table || '.' || coalesce(source_column::text, '*'), ', '
                                ORDER BY source_table::text, source_column) AS sources, bool_or(direct) AS direct
  FROM ecrm.view_column_sources('ecrm.customer_360')
 WHERE column_name IN ('identities', 'order_count', 'last_touch_channel', 'consents', 'full_name') GROUP BY 1 ORDER BY 1;
SELECT DISTINCT source_table::text FROM ecrm.view_column_sources('ecrm.customer_timeline') WHERE column_name = 'details' ORDER BY 1;
SELECT * FROM ecrm.view_column_sources('ecrm.kpi_daily') WHERE column_name = 'day' ORDER BY source_table::text;
SELECT ecrm.view_column_sources('ecrm.customer_profile');
SELECT ecrm.view_column_sources(NULL);

-- the plan of a twin: what decided each column
SELECT column_name, strategy, decided_by, consent_masked FROM ecrm.masked_view_plan('ecrm.customers') ORDER BY 1;
SELECT column_name, strategy, decided_by FROM ecrm.masked_view_plan('ecrm.customer_360') WHERE strategy <> 'raw' ORDER BY 1;
SELECT view_name, count(*) AS columns, count(*) FILTER (WHERE strategy <> 'raw') AS masked
  FROM ecrm.masked_columns GROUP BY 1 ORDER BY view_name::text;
SELECT relname FROM pg_class WHERE relnamespace = 'ecrm_masked'::regnamespace ORDER BY 1;

-- what a masked role reads
CREATE ROLE regress_masked;
SELECT ecrm.mask_role('regress_masked');
SET ROLE regress_masked;
SELECT customer_id, full_name, email, phone, birth_date, street, city, postal_code, company FROM ecrm_masked.customers ORDER BY created_at;
SELECT customer_id, full_name, email, identities FROM ecrm_masked.customer_360 ORDER BY customer_id;
-- COPY: the table and the raw view are refused, a twin is masked
COPY ecrm.customer_profile TO STDOUT;
COPY (SELECT email FROM ecrm.customers) TO STDOUT;
COPY ecrm_masked.customers TO STDOUT;
COPY (SELECT customer_id, email, phone FROM ecrm_masked.customers WHERE customer_id IS NOT NULL ORDER BY 1) TO STDOUT WITH (FORMAT csv);
RESET ROLE;
-- a new secret context changes every pseudonym analysts see, and nothing else
SELECT ecrm.alter_mask_policy('ecrm.customer_profile', 'phone', 'pseudonym_phone');
SELECT phone AS before_rotation FROM ecrm_masked.customers WHERE customer_id = :ada \gset
SELECT ecrm.rotate_mask_secret();
SELECT phone <> :'before_rotation' AS pseudonym_changed, phone ~ '^\+44[0-9]{10}$' AS still_a_uk_number,
       email AS email_unchanged FROM ecrm_masked.customers WHERE customer_id = :ada;
SELECT ecrm.alter_mask_policy('ecrm.customer_profile', 'phone', 'phone', '{"keep_last": 2}');
-- unmasking a role, and the mistakes
SELECT role_name, reads_raw_tables, settings FROM ecrm.masked_roles ORDER BY 1;
SELECT ecrm.unmask_role('regress_masked');
SELECT role_name FROM ecrm.masked_roles ORDER BY 1;
SELECT ecrm.unmask_role('regress_masked');
SELECT ecrm.unmask_role(NULL);
SELECT ecrm.mask_role('ecrm_agent');
SELECT ecrm.mask_role(NULL);
SELECT ecrm.mask_role('regress_masked');

-- policies: add, change, drop, and every mistake
SELECT ecrm.alter_mask_policy('ecrm.customer_profile', 'email', options => '{"keep": "domain"}');
SELECT ecrm.add_mask_policy('ecrm.customer_profile', 'company', 'partial', '{"prefix": 3, "padding": "…"}', note => 'B2B analytics');
SELECT ecrm.add_mask_policy('ecrm.customer_profile', 'phone', 'raw', raw_roles => '{ecrm_agent}');
SELECT relid, column_name, strategy, options, raw_roles, builtin, installed FROM ecrm.mask_policy
 WHERE column_name IN ('email', 'company', 'phone') ORDER BY 1, 2;
SET ROLE regress_masked;
SELECT email, company FROM ecrm_masked.customers WHERE customer_id = :ada;
RESET ROLE;
SELECT ecrm.drop_mask_policy('ecrm.customer_profile', 'company');
SELECT ecrm.drop_mask_policy('ecrm.customer_profile', 'email');
SELECT column_name, strategy, note, builtin, installed FROM ecrm.mask_policy WHERE relid = 'ecrm.customer_profile'::regclass
   AND column_name IN ('email', 'company') ORDER BY 1;
SELECT strategy, decided_by FROM ecrm.masked_view_plan('ecrm.customers') WHERE column_name IN ('email', 'company') ORDER BY column_name;
SELECT ecrm.add_mask_policy('ecrm.customer_profile', 'email', 'email');
SELECT ecrm.drop_mask_policy('ecrm.customer_profile', 'company');
SELECT ecrm.alter_mask_policy('ecrm.customer_profile', 'company', 'null');
SELECT ecrm.add_mask_policy('ecrm.customer_profile', 'email', 'email');
SELECT ecrm.add_mask_policy('ecrm.customer_profile', 'email_address', 'email');
SELECT ecrm.add_mask_policy('ecrm.customer_profile', 'job_title', 'scramble');
SELECT ecrm.add_mask_policy('ecrm.customer_profile', 'birth_date', 'email');
SELECT ecrm.add_mask_policy('ecrm.orders', 'total', 'range', '{"step": -10}');
SELECT ecrm.add_mask_policy('ecrm.orders', 'total', 'noise');
SELECT ecrm.add_mask_policy('ecrm.orders', 'total', 'noise', '{"ratio": 0.1, "seed_column": "nope"}');
SELECT ecrm.add_mask_policy('ecrm.customer_profile', 'job_title', 'partial', '{"prefix": "two"}');
SELECT ecrm.add_mask_policy('ecrm.customer_profile', 'job_title', 'partial', '[1]');
SELECT ecrm.add_mask_policy('ecrm.customer_profile', 'job_title', 'name', '{"keep": "all"}');
SELECT ecrm.add_mask_policy('ecrm.customer_profile', 'job_title', 'national_id', '{"kind": "xx"}');
SELECT ecrm.add_mask_policy('ecrm.customer_profile', 'job_title', 'raw', raw_roles => '{nobody_at_all}');
SELECT ecrm.add_mask_policy('ecrm.customer_profile', 'job_title', 'null', raw_roles => '{ecrm_analyst}');
SELECT ecrm.add_mask_policy('ecrm.customer_profile', 'job_title', 'function', '{"function": "public.no_such_mask"}');
SELECT ecrm.add_mask_policy('ecrm.orders', 'total', 'range', '{"step": 100}', raw_roles => '{ecrm_agent}');
SELECT ecrm.add_mask_policy('ecrm.customer_profile_id_seq', 'x', 'null');
SELECT ecrm.add_mask_policy(NULL, 'x', 'null');
SELECT ecrm.alter_mask_policy('ecrm.orders', 'total', 'null');
SELECT ecrm.drop_mask_policy('ecrm.orders', 'total');
-- a function of your own
CREATE FUNCTION public.regress_title_mask(t text) RETURNS text LANGUAGE sql IMMUTABLE RETURN upper(left(t, 1)) || '.';
SELECT ecrm.add_mask_policy('ecrm.customer_profile', 'job_title', 'function', '{"function": "public.regress_title_mask"}');
SELECT expression FROM ecrm.masked_view_plan('ecrm.customers') WHERE column_name = 'job_title';

-- a view added later by another capability gets a twin, and an unknown personal column is hidden
CREATE TABLE ecrm.regress_loyalty (customer_id bigint NOT NULL, card_number text, points integer, note jsonb);
INSERT INTO ecrm.regress_loyalty VALUES (:ada, '4111 1111 1111 1111', 120, '{"said": "call me on +44 20 7946 0001"}'), (:bob, '5555 5555 5555 4444', 30, NULL);
CREATE VIEW ecrm.regress_loyalty_view AS
SELECT l.customer_id, l.card_number, l.points, l.note, c.first_name || ' ' || c.last_name AS holder, c.country
  FROM ecrm.regress_loyalty l JOIN ecrm.customer_profile c ON c.customer_id = l.customer_id;
SELECT ecrm.refresh_masked_views() > 0 AS refreshed;
SELECT column_name, strategy, decided_by FROM ecrm.masked_view_plan('ecrm.regress_loyalty_view') ORDER BY 1;
SET ROLE regress_masked;
SELECT * FROM ecrm_masked.regress_loyalty_view ORDER BY customer_id;
RESET ROLE;
-- registered, with a policy for its card numbers: regenerated by itself
INSERT INTO ecrm.customer_table (relid, on_merge, on_erase, pii_columns) VALUES ('ecrm.regress_loyalty', 'repoint', 'delete', '{card_number,note}');
SELECT ecrm.add_mask_policy('ecrm.regress_loyalty', 'card_number', 'card');
SET ROLE regress_masked;
SELECT * FROM ecrm_masked.regress_loyalty_view ORDER BY customer_id;
RESET ROLE;
-- view rules: consent masking instead of exclusion, and no twin at all
SELECT ecrm.set_masked_view_rule('ecrm.regress_loyalty_view', consent_action => 'mask');
SET ROLE regress_masked;
SELECT customer_id, card_number, points, holder, country FROM ecrm_masked.regress_loyalty_view ORDER BY customer_id NULLS LAST;
RESET ROLE;
SELECT ecrm.set_masked_view_rule('ecrm.regress_loyalty_view', twin => false);
SELECT to_regclass('ecrm_masked.regress_loyalty_view');
SELECT ecrm.set_masked_view_rule('ecrm.regress_loyalty_view', consent_action => 'forget');
SELECT ecrm.set_masked_view_rule('ecrm.regress_loyalty_view', consent_purpose => 'telepathy');
SELECT ecrm.set_masked_view_rule('ecrm.regress_loyalty_view', customer_column => 'client');
SELECT ecrm.set_masked_view_rule('ecrm.regress_loyalty', consent_action => 'none');
SELECT ecrm.set_masked_view_rule('ecrm.regress_loyalty_view', twin => true, consent_action => 'none');
SELECT count(*) AS rules FROM ecrm.masked_view_rule WHERE view_name = 'ecrm.regress_loyalty_view'::regclass;
DROP VIEW ecrm.regress_loyalty_view;
DROP VIEW ecrm.regress_loyalty_view CASCADE;
DELETE FROM ecrm.customer_table WHERE relid = 'ecrm.regress_loyalty'::regclass;
ALTER TABLE ecrm.regress_loyalty DROP COLUMN card_number;
SELECT count(*) AS policies_left FROM ecrm.mask_policy WHERE relid = 'ecrm.regress_loyalty'::regclass;
DROP TABLE ecrm.regress_loyalty;
SELECT (SELECT count(*) FROM ecrm.mask_policy WHERE NOT EXISTS (SELECT FROM pg_class c WHERE c.oid = relid)) AS stale_policies,
       (SELECT count(*) FROM ecrm.masked_view_rule WHERE NOT EXISTS (SELECT FROM pg_class c WHERE c.oid = view_name)) AS stale_rules;

-- static masking: a masked copy, and in place only when asked
SELECT table_name, row_count, masked_columns FROM ecrm.create_masked_copy('regress_copy')
 WHERE table_name IN ('regress_copy.customer_profile', 'regress_copy.identity', 'regress_copy.orders', 'regress_copy.product') ORDER BY 1;
SELECT customer_id, first_name, last_name, email, phone, birth_date, street, postal_code, company FROM regress_copy.customer_profile ORDER BY 1;
SELECT i.kind, i.value LIKE '%@example.___' AS fake_email, i.value ~ '^\+44[0-9]{10}$' AS fake_phone, i.raw_value
  FROM regress_copy.identity i ORDER BY i.identity_id;
SELECT count(*) AS mask_secret_copied FROM pg_class WHERE relname = 'mask_secret' AND relnamespace = 'regress_copy'::regnamespace;
SELECT conname FROM pg_constraint WHERE conrelid = 'regress_copy.customer_profile'::regclass;
SELECT count(*) FROM ecrm.create_masked_copy('regress_copy');
SELECT count(*) FROM ecrm.create_masked_copy('regress_copy', replace => true);
CREATE SCHEMA regress_mine;
CREATE TABLE regress_mine.t (x int);
SELECT count(*) FROM ecrm.create_masked_copy('regress_mine', replace => true);
SELECT count(*) FROM ecrm.create_masked_copy('ecrm_masked');
SELECT count(*) FROM ecrm.create_masked_copy('ecrm');
SELECT count(*) FROM ecrm.create_masked_copy(NULL);
DROP SCHEMA regress_copy CASCADE;
DROP SCHEMA regress_mine CASCADE;

-- PII discovery over a table of one's own
CREATE TABLE public.regress_contacts (id serial PRIMARY KEY, email text, mobile text, card text, iban text, ip inet, client text,
                                      born date, notes text, amount numeric, shipped date);
INSERT INTO public.regress_contacts (email, mobile, card, iban, ip, client, born, notes, amount, shipped)
SELECT 'user' || i || '@example.org', '+44 20 7946 ' || lpad(i::text, 4, '0'),
       CASE WHEN i % 2 = 0 THEN '4111 1111 1111 1111' ELSE '5555 5555 5555 4444' END,
       CASE WHEN i % 3 = 0 THEN 'GB82 WEST 1234 5698 7654 32' ELSE 'DE89 3704 0044 0532 0130 00' END,
       ('192.0.2.' || i)::inet, (ARRAY['Ada Lovelace', 'Grace Hopper', 'Alan Turing', 'Emma Jensen'])[1 + i % 4],
       date '1950-01-01' + i * 97, CASE WHEN i % 10 = 0 THEN 'customer asked to be called on +44 20 7946 0958 after 5pm' ELSE 'left at the door, no answer' END,
       i * 1.5, date '2026-01-01' + i
  FROM generate_series(1, 200) i;
SELECT column_name, data_type, kind, sampled, matched, share, name_hint, suggested_strategy, suggested_options
  FROM ecrm.discover_pii('public.regress_contacts') ORDER BY column_name;
SELECT suggestion FROM ecrm.discover_pii('public.regress_contacts') WHERE column_name IN ('email', 'born') ORDER BY 1;
SELECT column_name, kind FROM ecrm.discover_pii('public.regress_contacts', 1000, 0.99) ORDER BY 1;
SELECT count(*) > 0 AS found_in_schema FROM ecrm.discover_pii_schema('public') WHERE table_name = 'public.regress_contacts'::regclass;
SELECT * FROM ecrm.discover_pii('public.regress_contacts', 0);
SELECT * FROM ecrm.discover_pii('public.regress_contacts', 10, 1.5);
SELECT * FROM ecrm.discover_pii('public.regress_contacts_id_seq');
SELECT * FROM ecrm.discover_pii_schema('no_such_schema');
DROP TABLE public.regress_contacts;
-- a function of your own is kept while a policy uses it
DROP FUNCTION public.regress_title_mask(text);
SELECT ecrm.drop_mask_policy('ecrm.customer_profile', 'job_title');
DROP FUNCTION public.regress_title_mask(text);

-- in place, on a copy of production only (this store is a throwaway one)
SELECT table_name, row_count, masked_columns FROM ecrm.create_masked_copy('ecrm', allow_live => true)
 WHERE table_name IN ('ecrm.customer_profile', 'ecrm.identity') ORDER BY 1;
SELECT customer_id, first_name, email, phone, birth_date, street, company, status FROM ecrm.customer_profile ORDER BY 1;
SELECT count(*) AS raw_left FROM ecrm.identity WHERE value ILIKE '%lovelace%' OR value LIKE '%79460001%';
SELECT count(*) AS stats_with_raw FROM pg_stats WHERE schemaname = 'ecrm' AND (most_common_vals::text ILIKE '%lovelace%' OR histogram_bounds::text ILIKE '%lovelace%');
DROP ROLE regress_masked;
