-- Segments: privileges, errors with their SQLSTATE, behaviour through the roles.
BEGIN;
SELECT plan(28);

SELECT has_type('ecrm', 'idset', 'type idset exists');
SELECT has_table('ecrm', 'segment_event', 'segment_event exists');
SELECT has_view('ecrm', 'rfm', 'view rfm exists');
SELECT has_view('ecrm', 'segment_overlap', 'view segment_overlap exists');
SELECT ok(EXISTS (SELECT FROM ecrm.customer_table WHERE relid = 'ecrm.segment_event'::regclass AND on_erase = 'delete'),
          'segment_event is registered for merge and erasure');
SELECT ok(EXISTS (SELECT FROM ecrm.customer_table WHERE relid = 'ecrm.segment_delta'::regclass AND on_merge = 'delete'),
          'segment_delta is registered for merge and erasure');

SELECT ecrm.upsert_customer('{"first_name": "Ada", "email": "ada@example.org", "country": "GB"}');
SELECT ecrm.define_segment('tap_gb', '{"attribute": "country", "op": "=", "value": "GB"}');

SELECT throws_ok($$SELECT '{1,,2}'::ecrm.idset$$, '22P02', 'invalid input syntax for type idset: "{1,,2}"', 'malformed idset text');
SELECT throws_ok($$SELECT '{99999999999999999999}'::ecrm.idset$$, '22003', NULL, 'id out of range');
SELECT throws_ok($$SELECT ecrm.idset('\x0100'::bytea)$$, '22P03', 'invalid binary idset', 'truncated binary idset');
SELECT throws_ok($$SELECT ecrm.in_segment(1, 'no such segment')$$, 'P0002', 'segment "no such segment" does not exist', 'unknown segment');
SELECT throws_ok($$SELECT ecrm.define_segment('tap_gb', '{"segment": "tap_gb"}')$$, '42P17', NULL, 'a cycle is rejected');
SELECT throws_ok($$SELECT ecrm.define_segment('tap_x', '{"bought": {"within": "soon"}}')$$, '22023', NULL, 'a bad rule is rejected');
SELECT throws_ok($$SELECT ecrm.kmeans(ARRAY[1.0::float8], 0)$$, '22023', 'k must be between 1 and 10000, not 0', 'bad k');

SELECT ok(ecrm.in_segment(ecrm.find_customer('email', 'ada@example.org'), 'tap_gb'), 'Ada is in tap_gb');

-- memory is bounded before CRoaring allocates it
SELECT throws_ok($$SELECT ecrm.idset_range(0, 1099511627775)$$, '54000', 'range 0-1099511627775 covers too many ids', 'a huge range is refused before it is built');
SET LOCAL ecrm.idset_max_memory = '1MB';
SELECT throws_ok($$SELECT ecrm.idset_agg(g * 65536) FROM generate_series(0, 99999::bigint) g$$, '54000', 'idset is too large to build',
                 'a set growing past ecrm.idset_max_memory is refused');
RESET ecrm.idset_max_memory;
SELECT throws_ok($$SET ecrm.idset_max_memory = '100kB'$$, '22023', NULL, 'the bound cannot be set below 1 MB');

-- agents read memberships, analysts only aggregates, nobody else anything
SELECT ok(has_function_privilege('ecrm_agent', 'ecrm.in_segment(bigint, text)', 'EXECUTE'), 'agent tests membership');
SELECT ok(NOT has_function_privilege('ecrm_agent', 'ecrm.define_segment(text, jsonb, text, boolean)', 'EXECUTE'), 'agent cannot define segments');
SELECT ok(NOT has_table_privilege('ecrm_analyst', 'ecrm.rfm', 'SELECT'), 'analyst cannot read per-customer RFM');
SELECT ok(has_table_privilege('ecrm_analyst', 'ecrm.rfm_summary', 'SELECT'), 'analyst reads the RFM summary');
SELECT ok(NOT has_table_privilege('ecrm_analyst', 'ecrm.segment_membership', 'SELECT'), 'analyst cannot list members');

SET LOCAL ROLE ecrm_agent;
SELECT lives_ok($$SELECT ecrm.upsert_customer('{"first_name": "Bo", "email": "bo@example.org", "country": "GB"}')$$,
                'an agent writing a customer keeps segments current');
SELECT ok(ecrm.in_segment(ecrm.find_customer('email', 'bo@example.org'), 'tap_gb'), 'the new customer entered tap_gb in real time');
SELECT is((SELECT segments FROM ecrm.customer_360 WHERE customer_id = ecrm.find_customer('email', 'bo@example.org')),
          ARRAY['tap_gb'], 'an agent sees the segments of a customer in customer_360');
RESET ROLE;
SELECT ok(has_function_privilege('ecrm_agent', 'ecrm._segment_names_of(bigint)', 'EXECUTE'), 'agent may run the customer_360 segments lookup');
SELECT ok(has_function_privilege('ecrm_analyst', 'ecrm._segment_names_of(bigint)', 'EXECUTE'), 'analyst may too (the masked customer_360 shows segments)');
SET LOCAL ROLE ecrm_analyst;
SELECT throws_ok($$SELECT * FROM ecrm.segment_membership$$, '42501', NULL, 'analyst read of memberships is refused');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
