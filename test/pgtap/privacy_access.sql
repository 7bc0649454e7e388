-- A masked role has no path to raw personal data: the tables, the views' base columns, functions,
-- security_barrier leaks through a leaky function in WHERE, error messages, EXPLAIN, pg_stats,
-- cursors and COPY (COPY TO STDOUT is checked in test/sql/mask_access.sql: PL/pgSQL cannot run it).
BEGIN;
SELECT plan(57);
SET LOCAL ecrm.pseudonym_key = 'pgtap-privacy-key-0001';

SELECT ecrm.upsert_customer('{"first_name": "Ada", "last_name": "Lovelace", "email": "ada.lovelace@analytical.org",
                              "phone": "+44 20 7946 0001", "birth_date": "1985-12-10", "city": "London", "country": "GB",
                              "attributes": {"industry": "computing", "secret_note": "Byron"}}') AS ada \gset
SELECT ecrm.upsert_customer('{"first_name": "Bob", "last_name": "Refuser", "email": "bob.refuser@example.com",
                              "phone": "+44 20 7946 0002", "city": "Leeds", "country": "GB"}') AS bob \gset
SELECT ecrm.record_consent(:ada, 'profiling', true, '2026-01-01');
SELECT ecrm.record_consent(:bob, 'profiling', false, '2026-01-01');
SELECT ecrm.record_interaction(:ada, 'web', 'page_view', '2026-01-02', '{"url": "/account?email=ada.lovelace@analytical.org"}');
SELECT ecrm.open_ticket(:ada, 'Call me on +44 20 7946 0001', 'I am Ada Lovelace, my card is 4111 1111 1111 1111') AS t1 \gset
-- issue 11: an email and a phone under the keys the timeline keeps, free text in a consent's source
SELECT ecrm.record_interaction(:ada, 'email', 'email_received', '2026-01-03', '{"from": "A Sender <sender.one@example.org>", "to": "+44 20 7946 0001"}');
SELECT ecrm.record_consent(:ada, 'sms', true, '2026-01-03', 'call with Lovelace, sender.one@example.org +441632960983');
SELECT ecrm.define_static_segment('tap_vip', ecrm.idset(ARRAY[:ada, :bob]::bigint[]));
SELECT context AS secret FROM ecrm.mask_secret \gset
ANALYZE ecrm.customer_profile;

CREATE ROLE tap_masked;
SELECT ecrm.mask_role('tap_masked');
-- the strings that must never reach the masked role
CREATE FUNCTION pg_temp.raw_seen(t text) RETURNS boolean LANGUAGE sql IMMUTABLE
    RETURN t ILIKE '%lovelace%' OR t ILIKE '%refuser%' OR t LIKE '%7946 0001%' OR t LIKE '%79460001%'
        OR t LIKE '%4111 1111%' OR t LIKE '%Byron%' OR t ILIKE '%1985-12-10%';
-- the error a statement raises (SQLSTATE, message, detail), or 'no error'
CREATE FUNCTION pg_temp.error_of(sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE st text; msg text; det text;
BEGIN
    EXECUTE sql;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL;
    RETURN st || ': ' || msg || ' ' || coalesce(det, '');
END $$;
CREATE FUNCTION pg_temp.explain(sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE r text; o text := '';
BEGIN
    FOR r IN EXECUTE 'EXPLAIN (VERBOSE, ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) ' || sql LOOP
        o := o || r || E'\n';
    END LOOP;
    RETURN o;
END $$;
-- every row of every masked twin, as text, seen by the current role
CREATE FUNCTION pg_temp.twin_rows() RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE v text;
BEGIN
    FOR v IN SELECT c.relname FROM pg_class c WHERE c.relnamespace = 'ecrm_masked'::regnamespace ORDER BY 1 LOOP
        RETURN QUERY EXECUTE format('SELECT x::text FROM ecrm_masked.%I x', v);
    END LOOP;
END $$;

-- sanity: the detector sees the raw data as the admin does
SELECT ok((SELECT bool_or(pg_temp.raw_seen(x::text)) FROM ecrm.customers x), 'the raw view holds the data the tests look for');

SET LOCAL ROLE tap_masked;

-- 1. the tables and the raw views
SELECT throws_ok('SELECT * FROM ecrm.customer_profile', '42501', 'permission denied for table customer_profile', 'no access to the profile table');
SELECT throws_ok('SELECT value FROM ecrm.identity', '42501', 'permission denied for table identity', 'no access to the identity table');
SELECT throws_ok('SELECT payload FROM ecrm.interaction', '42501', 'permission denied for table interaction', 'no access to interactions');
SELECT throws_ok('SELECT body FROM ecrm.ticket', '42501', 'permission denied for table ticket', 'no access to tickets');
SELECT throws_ok('SELECT email FROM ecrm.customers', '42501', 'permission denied for view customers', 'no access to the raw view');
SELECT throws_ok('SELECT identities FROM ecrm.customer_360', '42501', 'permission denied for view customer_360', 'no access to the raw 360 view');
SELECT throws_ok('SELECT * FROM ecrm.consent_event', '42501', 'permission denied for table consent_event', 'no access to consent evidence');
SELECT throws_ok('SELECT * FROM ecrm.mask_secret', '42501', 'permission denied for table mask_secret', 'no access to the pseudonym context');

-- 2. the twins: same names through the search_path (SET ROLE does not apply the role's settings,
--    a login does), masked values only, in every view
SELECT is((SELECT setconfig FROM pg_db_role_setting WHERE setrole = 'tap_masked'::regrole),
          '{"search_path=ecrm_masked, \"$user\", public"}', 'mask_role sets the role''s search_path in this database');
SET LOCAL search_path = ecrm_masked, "$user", public;
SELECT is((SELECT email FROM customers WHERE customer_id = :ada), 'a***@***.org', 'customers resolves to the masked twin and masks the email');
SELECT is((SELECT full_name || ' ' || phone || ' ' || birth_date::text FROM ecrm_masked.customers WHERE customer_id = :ada),
          'A. L. +44********01 1985-01-01', 'name, phone and date of birth are masked');
SELECT is((SELECT attributes FROM ecrm_masked.customers WHERE customer_id = :ada), '{"industry": "computing"}'::jsonb,
          'only allow-listed attributes are shown');
SELECT is((SELECT count(*) FROM pg_temp.twin_rows() r WHERE pg_temp.raw_seen(r)), 0::bigint,
          'no row of any masked twin holds a raw name, email, phone, card, date of birth or attribute');
SELECT ok((SELECT count(*) FROM pg_temp.twin_rows()) > 0, 'the twins are readable');
SELECT is((SELECT subject FROM ecrm_masked.ticket_queue WHERE ticket_id = :t1), '[redacted]',
          'free text is redacted whole (redact_text would leave names in prose)');
-- consent: the customer who refused profiling is left out of analytics, masked in the customer list
SELECT is((SELECT count(*) FROM ecrm_masked.customer_360 WHERE customer_id = :bob), 0::bigint, 'a refuser is left out of customer_360');
SELECT is((SELECT count(*) FROM ecrm_masked.customers WHERE customer_id IS NULL AND email IS NULL AND city IS NULL), 1::bigint,
          'a refuser stays counted in customers, with nothing shown');
SELECT is((SELECT details FROM ecrm_masked.customer_timeline WHERE customer_id = :ada AND kind = 'email_received'),
          '{"to": "***", "from": "***"}'::jsonb, 'a kept key of a payload shows no email or phone (only values of its vocabulary)');
SELECT is((SELECT count(*) FROM ecrm_masked.customer_timeline WHERE details::text ~ 'sender|7946|1632'), 0::bigint,
          'no payload value of the timeline holds the address or the numbers');
SELECT is((SELECT array_agg(DISTINCT source) FROM ecrm_masked.consents WHERE customer_id = :ada AND purpose = 'sms'), '{***}'::text[],
          'a consent source in free text is masked');
SELECT is(ecrm._segment_names_of(:ada), '{tap_vip}'::text[], 'the twin''s segment lookup works for a customer it shows');
SELECT is(ecrm._segment_names_of(:bob), '{}'::text[], 'and tells nothing of a customer who refused profiling (issue 11, finding 7)');

-- 3. functions: none gives raw data, none with SECURITY DEFINER is callable
SELECT throws_ok(format('SELECT ecrm.export_customer(%s)', :ada), '42501', 'permission denied for function export_customer', 'no export');
SELECT throws_ok($$SELECT ecrm.find_customer('email', 'ada.lovelace@analytical.org')$$, '42501',
                 'permission denied for function find_customer', 'no identity lookup (a membership oracle)');
SELECT throws_ok(format('SELECT ecrm.erase_customer(%s)', :ada), '42501', 'permission denied for function erase_customer', 'no erasure');
SELECT throws_ok('SELECT ecrm.refresh_masked_views()', '42501', 'permission denied for function refresh_masked_views', 'no regeneration');
SELECT throws_ok($$SELECT ecrm.add_mask_policy('ecrm.customer_profile', 'email', 'raw')$$, '42501',
                 'permission denied for function add_mask_policy', 'no policy changes');
SELECT throws_ok($$SELECT ecrm.mask_role('tap_masked')$$, '42501', 'permission denied for function mask_role', 'no role changes');
-- Reviewed exceptions: two return aggregates only (per day, per campaign) for the analytics views; one
-- returns the segment names of a customer id for the masked customer_360, and nothing for a customer that
-- twin leaves out (test/shell/masking_canary.py checks every function an analyst may call).
SELECT is(ARRAY(SELECT p.oid::regprocedure::text FROM pg_proc p
                 WHERE p.pronamespace = 'ecrm'::regnamespace AND p.prosecdef
                   AND has_function_privilege(p.oid, 'EXECUTE')
                   AND p.oid::regprocedure::text NOT IN ('ecrm._kpi_daily()', 'ecrm.campaign_attribution_in(interval,text)',
                                                         'ecrm._segment_names_visible(bigint)')
                 ORDER BY 1),
          '{}'::text[], 'the masked role may execute no SECURITY DEFINER function of ecrm but the reviewed aggregate ones');
SELECT is(ARRAY(SELECT p.oid::regprocedure::text || ' returns ' || a.name FROM pg_proc p,
                       unnest(p.proargnames, p.proargmodes) a(name, mode)
                 WHERE p.oid IN ('ecrm._kpi_daily()'::regprocedure, 'ecrm.campaign_attribution_in(interval,text)'::regprocedure)
                   AND a.mode = 't'
                   AND a.name ~ '^(customer_id|email|phone|first_name|last_name|full_name|birth_date|street|address|postal_code|ip|identities)$'
                 ORDER BY 1),
          '{}'::text[], 'the reviewed SECURITY DEFINER functions return no customer-level column');
SELECT is(ARRAY(SELECT p.oid::regprocedure::text FROM pg_proc p
                 WHERE p.pronamespace = 'ecrm'::regnamespace AND has_function_privilege(p.oid, 'EXECUTE')
                   AND p.proname IN ('resolve_customer', 'has_consent', 'effective_consents', 'campaign_audience',
                                     'upsert_customer', 'discover_pii', 'create_masked_copy', 'masked_view_plan')
                 ORDER BY 1),
          '{}'::text[], 'nor any function that looks customers up or reads tables');

-- 4. the key and the pseudonym context
SELECT throws_ok('SHOW ecrm.pseudonym_key', '42501',
                 'must be superuser or have privileges of pg_read_all_settings to examine "ecrm.pseudonym_key"', 'SHOW is refused');
SELECT throws_ok($$SELECT current_setting('ecrm.pseudonym_key', true)$$, '42501',
                 'must be superuser or have privileges of pg_read_all_settings to examine "ecrm.pseudonym_key"', 'current_setting is refused');
SELECT is((SELECT count(*) FROM pg_settings WHERE name = 'ecrm.pseudonym_key'), 0::bigint, 'pg_settings hides it');
SELECT is((SELECT count(*) FROM pg_db_role_setting WHERE array_to_string(setconfig, ' ') LIKE '%pgtap-privacy-key%'), 0::bigint,
          'pg_db_role_setting does not hold it');
SELECT throws_ok($$SET ecrm.pseudonym_key = 'attacker-chosen-key-123'$$, '42501',
                 'permission denied to set parameter "ecrm.pseudonym_key"', 'a masked role cannot choose the key');
RESET ROLE;
SELECT ecrm.alter_mask_policy('ecrm.customer_profile', 'email', 'pseudonym_email');
SET LOCAL ROLE tap_masked;
SELECT alike((SELECT email FROM ecrm_masked.customers WHERE customer_id = :ada), '%@example.___', 'a pseudonym policy gives a fake address');
SELECT isnt((SELECT email FROM ecrm_masked.customers WHERE customer_id = :ada), ecrm.pseudonym_email('ada.lovelace@analytical.org'),
            'a guessed address cannot be pseudonymised and looked up (the views use a secret context)');
SELECT isnt((SELECT email FROM ecrm_masked.customers WHERE customer_id = :ada), ecrm.pseudonym_email('ada.lovelace@analytical.org', ''),
            'not with an empty context either');

-- 5. a leaky function in WHERE sees masked values only, and never rows the view leaves out
CREATE FUNCTION pg_temp.leak(t text) RETURNS boolean LANGUAGE plpgsql IMMUTABLE COST 0.000001 AS $$
BEGIN
    IF pg_temp.raw_seen(t) THEN RAISE EXCEPTION 'leaked: %', t; END IF;
    RETURN true;
END $$;
CREATE FUNCTION pg_temp.leak_id(id bigint, bad bigint) RETURNS boolean LANGUAGE plpgsql IMMUTABLE COST 0.000001 AS $$
BEGIN
    IF id = bad THEN RAISE EXCEPTION 'leaked customer %', id; END IF;
    RETURN true;
END $$;
SELECT lives_ok('SELECT count(*) FROM ecrm_masked.customers WHERE pg_temp.leak(email) AND pg_temp.leak(full_name) AND pg_temp.leak(phone)',
                'a cheap leaky function in WHERE sees masked values only');
SELECT lives_ok('SELECT count(*) FROM ecrm_masked.customer_360 WHERE pg_temp.leak(identities::text)', 'nor identities');
SELECT lives_ok(format('SELECT count(*) FROM ecrm_masked.customer_360 WHERE pg_temp.leak_id(customer_id, %s)', :bob),
                'nor the rows of a customer that the view leaves out');
SELECT lives_ok('SELECT count(*) FROM ecrm_masked.customer_timeline WHERE pg_temp.leak(details::text)', 'nor timeline details');
RESET ROLE;
SELECT throws_ok('SELECT count(*) FROM ecrm.customers WHERE pg_temp.leak(email)', 'P0001', NULL,
                 'the same function does catch raw values (the test is meaningful)');
SET LOCAL ROLE tap_masked;

-- 6. error messages show masked values only
SELECT is(pg_temp.error_of(format('SELECT phone::int FROM ecrm_masked.customers WHERE customer_id = %s', :ada)),
          '22P02: invalid input syntax for type integer: "+44********01" ', 'a cast error quotes the masked value');
SELECT ok(NOT pg_temp.raw_seen(pg_temp.error_of('SELECT 1 / (length(email) - length(email)) FROM ecrm_masked.customers')),
          'a division error says nothing');

-- 7. EXPLAIN shows the plan, not the data and not the secret
SELECT ok(NOT pg_temp.raw_seen(pg_temp.explain($$SELECT * FROM ecrm_masked.customers WHERE email LIKE 'a%'$$))
          AND strpos(pg_temp.explain($$SELECT * FROM ecrm_masked.customers WHERE email LIKE 'a%'$$), :'secret') = 0,
          'EXPLAIN ANALYZE VERBOSE of a twin shows neither raw values nor the pseudonym context');
SELECT is(pg_temp.error_of('EXPLAIN SELECT * FROM ecrm.customer_profile'), '42501: permission denied for table customer_profile ',
          'EXPLAIN of a table is refused');

-- 8. planner statistics
SELECT is((SELECT count(*) FROM pg_stats WHERE schemaname = 'ecrm' AND tablename = 'customer_profile'), 0::bigint,
          'pg_stats shows no statistics of the profile table');
SELECT throws_ok('SELECT * FROM pg_statistic', '42501', 'permission denied for table pg_statistic', 'pg_statistic is refused');

-- 9. cursors and COPY
SELECT is(pg_temp.error_of('DO $c$ DECLARE c refcursor; BEGIN OPEN c FOR SELECT * FROM ecrm.customer_profile; END $c$'),
          '42501: permission denied for table customer_profile ', 'a cursor over the table is refused');
CREATE FUNCTION pg_temp.cursor_rows() RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE c refcursor; r record;
BEGIN
    OPEN c FOR SELECT x::text AS t FROM ecrm_masked.customers x;
    LOOP FETCH c INTO r; EXIT WHEN NOT FOUND; RETURN NEXT r.t; END LOOP;
    CLOSE c;
END $$;
SELECT is((SELECT count(*) FROM pg_temp.cursor_rows() r WHERE pg_temp.raw_seen(r)), 0::bigint, 'a cursor over a twin fetches masked rows');
SELECT alike(pg_temp.error_of($$COPY ecrm.customer_profile TO '/tmp/ecrm_leak.csv'$$), '42501:%', 'COPY of the table to a file is refused');
SELECT alike(pg_temp.error_of($$COPY (SELECT email FROM ecrm.customers) TO '/tmp/ecrm_leak.csv'$$), '42501:%', 'COPY of a query to a file is refused');

RESET ROLE;
-- masking is only for roles that cannot read the tables anyway
CREATE ROLE tap_agent IN ROLE ecrm_agent;
SELECT throws_ok($$SELECT ecrm.mask_role('tap_agent')$$, '42501', 'role tap_agent can read the raw customer tables', 'an agent cannot be "masked"');
SELECT is((SELECT reads_raw_tables FROM ecrm.masked_roles WHERE role_name = 'tap_masked'), false, 'the masked role reads no raw table');

SELECT * FROM finish();
ROLLBACK;
