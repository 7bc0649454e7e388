-- Roles and privileges of the foundation: what each role can and cannot read and write.
BEGIN;
SELECT plan(28);

SELECT has_role('ecrm_admin');
SELECT has_role('ecrm_agent');
SELECT has_role('ecrm_analyst');

-- nothing in schema ecrm is granted to PUBLIC
SELECT is((SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace,
                  aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) a
            WHERE n.nspname = 'ecrm' AND a.grantee = 0), 0::bigint, 'no table, view or sequence is granted to PUBLIC');
SELECT is((SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace,
                  aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
            WHERE n.nspname = 'ecrm' AND a.grantee = 0), 0::bigint, 'no function is executable by PUBLIC');
SELECT ok(NOT has_schema_privilege('public', 'ecrm', 'USAGE'), 'PUBLIC has no usage on schema ecrm');

-- admin: everything
SELECT ok(has_table_privilege('ecrm_admin', 'ecrm.customer_profile', 'SELECT, INSERT, UPDATE, DELETE'), 'admin writes profiles');
SELECT ok(has_function_privilege('ecrm_admin', 'ecrm.generate_demo_data(integer, integer, timestamptz)', 'EXECUTE'), 'admin runs the demo generator');

-- agent: reads and writes customers, tickets, interactions; never deletes; cannot change the registry
SELECT ok(has_table_privilege('ecrm_agent', 'ecrm.customer_profile', 'SELECT, INSERT, UPDATE'), 'agent reads and writes profiles');
SELECT ok(NOT has_table_privilege('ecrm_agent', 'ecrm.customer_profile', 'DELETE'), 'agent cannot delete profiles');
SELECT ok(has_table_privilege('ecrm_agent', 'ecrm.ticket', 'SELECT, INSERT, UPDATE'), 'agent reads and writes tickets');
SELECT ok(has_table_privilege('ecrm_agent', 'ecrm.interaction', 'SELECT, INSERT'), 'agent records interactions');
SELECT ok(NOT has_table_privilege('ecrm_agent', 'ecrm.customer_table', 'INSERT'), 'agent cannot change the registry');
SELECT ok(has_table_privilege('ecrm_agent', 'ecrm.customer_360', 'SELECT'), 'agent reads customer_360');
SELECT ok(NOT has_function_privilege('ecrm_agent', 'ecrm.generate_demo_data(integer, integer, timestamptz)', 'EXECUTE'),
          'agent cannot generate demo data');
SELECT ok(NOT has_function_privilege('ecrm_agent', 'ecrm.load_staged(boolean)', 'EXECUTE'), 'agent cannot bulk-load');

-- analyst: no raw personal data
SELECT ok(NOT has_table_privilege('ecrm_analyst', 'ecrm.customer_profile', 'SELECT'), 'analyst cannot read profiles');
SELECT ok(NOT has_table_privilege('ecrm_analyst', 'ecrm.identity', 'SELECT'), 'analyst cannot read identities');
SELECT ok(NOT has_table_privilege('ecrm_analyst', 'ecrm.customer_360', 'SELECT'), 'analyst cannot read the raw customer_360');
SELECT ok(NOT has_table_privilege('ecrm_analyst', 'ecrm.customer_timeline', 'SELECT'), 'analyst cannot read the raw timeline');
SELECT ok(has_table_privilege('ecrm_analyst', 'ecrm.campaign_performance', 'SELECT'), 'analyst reads campaign_performance');
SELECT ok(has_table_privilege('ecrm_analyst', 'ecrm.kpi_daily', 'SELECT'), 'analyst reads kpi_daily');
SELECT ok(NOT has_function_privilege('ecrm_analyst', 'ecrm.upsert_customer(jsonb)', 'EXECUTE'), 'analyst cannot write customers');

-- and the privileges hold in practice
SET LOCAL ROLE ecrm_agent;
SELECT lives_ok($$SELECT ecrm.upsert_customer('{"first_name": "Ada", "email": "ada@example.org", "country": "GB"}')$$,
                'agent creates a customer through the API');
SELECT lives_ok($$SELECT ecrm.open_ticket(ecrm.find_customer('email', 'ada@example.org'), 'Help')$$, 'agent opens a ticket');
SELECT throws_ok($$DELETE FROM ecrm.customer_profile$$, '42501', NULL, 'agent delete is refused');
RESET ROLE;
SET LOCAL ROLE ecrm_analyst;
SELECT throws_ok($$SELECT * FROM ecrm.customer_profile$$, '42501', NULL, 'analyst read of profiles is refused');
SELECT lives_ok($$SELECT * FROM ecrm.kpi_daily$$, 'analyst reads kpi_daily');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
