-- Identity resolution: labels, privileges, the registry, and errors with their SQLSTATEs.
BEGIN;
SELECT plan(46);

-- kernel functions are labelled honestly
SELECT volatility_is('ecrm', 'jaro_winkler', ARRAY['text', 'text', 'double precision'], 'immutable');
SELECT volatility_is('ecrm', 'normalize_name', ARRAY['text', 'boolean'], 'immutable');
SELECT volatility_is('ecrm', 'comparison_level', ARRAY['text', 'text', 'text', 'double precision[]'], 'immutable');
SELECT volatility_is('ecrm', 'merge_customers', ARRAY['bigint[]', 'bigint', 'jsonb', 'text'], 'volatile');
SELECT is_strict('ecrm', 'jaro_winkler', ARRAY['text', 'text', 'double precision']);
SELECT isnt_strict('ecrm', 'comparison_level', ARRAY['text', 'text', 'text', 'double precision[]']);
SELECT is_aggregate('ecrm', 'connected_components', ARRAY['bigint', 'bigint', 'boolean']);
SELECT is_definer('ecrm', 'merge_customers', ARRAY['bigint[]', 'bigint', 'jsonb', 'text']);
SELECT isnt_definer('ecrm', 'dedupe', ARRAY['boolean', 'text', 'integer']);

-- the ledger is registered: merges re-point it, erasure deletes it
SELECT is((SELECT on_erase FROM ecrm.customer_table WHERE relid = 'ecrm.merge_image'::regclass), 'delete', 'erasure purges the before-images');
SELECT is((SELECT on_erase FROM ecrm.customer_table WHERE relid = 'ecrm.merge_event'::regclass), 'delete', 'erasure purges the merge history');
SELECT is((SELECT on_merge FROM ecrm.customer_table WHERE relid = 'ecrm.merge_image'::regclass), 'repoint', 'the ledger follows later merges');
SELECT ok((SELECT 'ecrm.merge_image'::regclass::oid = ANY (extconfig) FROM pg_extension WHERE extname = 'ecrm'), 'pg_dump keeps the ledger');
SELECT ok((SELECT 'ecrm.match_candidate'::regclass::oid = ANY (extconfig) FROM pg_extension WHERE extname = 'ecrm'), 'pg_dump keeps review decisions');
SELECT is((SELECT count(*)::int FROM pg_indexes WHERE schemaname = 'ecrm' AND indexname LIKE 'customer_profile_match_key%'), 7,
          'one index per blocking key of the customer model');

-- privileges
SELECT ok(has_function_privilege('ecrm_agent', 'ecrm.merge_customers(bigint[], bigint, jsonb, text)', 'EXECUTE'), 'agent merges');
SELECT ok(has_function_privilege('ecrm_agent', 'ecrm.unmerge(bigint, boolean)', 'EXECUTE'), 'agent unmerges');
SELECT ok(has_table_privilege('ecrm_agent', 'ecrm.merge_review_queue', 'SELECT'), 'agent reads the review queue');
SELECT ok(NOT has_function_privilege('ecrm_agent', 'ecrm.dedupe(boolean, text, integer)', 'EXECUTE'), 'agent does not run dedupe');
SELECT ok(NOT has_function_privilege('ecrm_agent', 'ecrm.train_match_model(text, regclass, name, bigint, integer, integer)', 'EXECUTE'),
          'agent does not train models');
SELECT ok(NOT has_table_privilege('ecrm_agent', 'ecrm.merge_image', 'SELECT'), 'agent cannot read before-images');
SELECT ok(NOT has_table_privilege('ecrm_agent', 'ecrm.interaction', 'UPDATE'), 'agent cannot re-point rows by hand');
SELECT ok(has_function_privilege('ecrm_analyst', 'ecrm.jaro_winkler(text, text, double precision)', 'EXECUTE'), 'analyst uses the kernel');
SELECT ok(NOT has_function_privilege('ecrm_analyst', 'ecrm.merge_customers(bigint[], bigint, jsonb, text)', 'EXECUTE'), 'analyst cannot merge');
SELECT ok(NOT has_table_privilege('ecrm_analyst', 'ecrm.merge_review_queue', 'SELECT'), 'analyst cannot see names in the review queue');
SELECT ok(NOT has_function_privilege('ecrm_analyst', 'ecrm.find_matches(jsonb, integer)', 'EXECUTE'), 'analyst cannot probe for profiles');

-- an agent merges and unmerges through the API alone
SET LOCAL ecrm.realtime_resolution = 'off';
SELECT ecrm.upsert_customer('{"first_name": "Tap", "last_name": "One", "email": "tap.one@example.com"}') AS a \gset
SELECT ecrm.upsert_customer('{"first_name": "Tap", "last_name": "Uno", "email": "tap.uno@example.com"}') AS b \gset
SELECT ecrm.record_interaction(:b, 'web', 'page_view') AS i \gset
SET LOCAL ROLE ecrm_agent;
SELECT lives_ok(format('SELECT ecrm.merge_preview(ARRAY[%s, %s])', :a, :b), 'agent previews a merge');
SELECT lives_ok(format('SELECT ecrm.merge_customers(ARRAY[%s, %s])', :a, :b), 'agent merges');
SELECT is((SELECT customer_id FROM ecrm.interaction WHERE interaction_id = :i), :a::bigint, 'the interaction moved to the survivor');
SELECT lives_ok(format('SELECT ecrm.unmerge((SELECT max(merge_id) FROM ecrm.merge_history WHERE survivor_id = %s))', :a), 'agent unmerges');
SELECT is((SELECT customer_id FROM ecrm.interaction WHERE interaction_id = :i), :b::bigint, 'the interaction went back');
RESET ROLE;
SET LOCAL ROLE ecrm_analyst;
SELECT throws_ok(format('SELECT ecrm.merge_customers(ARRAY[%s, %s])', :a, :b), '42501', NULL, 'analyst cannot merge');
RESET ROLE;

-- errors and their SQLSTATEs
SELECT throws_ok(format('SELECT ecrm.merge_customers(ARRAY[%s, %s])', :a, :a), '22023', format('cannot merge customer %s into itself', :a),
                 'merging a profile into itself');
SELECT throws_ok(format('SELECT ecrm.merge_customers(ARRAY[%s, 0])', :a), '23503', 'customer 0 does not exist', 'an unknown id');
SELECT throws_ok('SELECT ecrm.unmerge(0)', 'P0002', 'merge 0 does not exist', 'an unknown merge');
SELECT throws_ok('SELECT ecrm.decide_match(1, ''later'')', '22023', 'decision must be merge or reject, not "later"', 'a bad decision');
SELECT throws_ok('SELECT ecrm.set_match_thresholds(''customer'', 0.99, 0.5)', '22023',
                 'review_threshold (0.99) must not be above auto_merge_threshold (0.5)', 'thresholds out of order');
SELECT throws_ok('SELECT ecrm.set_match_thresholds(''customer'', 0, 0.5)', '22023',
                 'review_threshold must be a probability strictly between 0 and 1, not 0', 'a threshold out of range');
SELECT throws_ok('SELECT ecrm.match_weight(''{1}'', ''{{0,1}}'', 2)', '22023',
                 'prior must be a probability strictly between 0 and 1, not 2', 'a prior that is not a probability');
SELECT throws_ok('SELECT ecrm.level_weights(''{{0.5,1.5}}'', ''{{0.5,0.5}}'')', '22023', 'm and u must be probabilities between 0 and 1',
                 'weights that are not probabilities');
SELECT throws_ok('SELECT ecrm.jaro_winkler(''a'', ''b'', 0.5)', '22023', 'prefix_scale must be between 0 and 0.25, not 0.5', 'a bad prefix scale');
SELECT throws_ok('SELECT ecrm.damerau_levenshtein(repeat(''a'', 5000), ''b'')', '54000',
                 'first string is too long for this comparison (5000 characters)', 'a string too long for the matrix');
SELECT throws_ok('SELECT ecrm.comparison_level(''a'', ''b'', ''phonetic'')', '22023', 'unknown comparison kind "phonetic"', 'an unknown kind');
SELECT throws_ok('SELECT ecrm.normalize_date(''1/2/2024'', ''DDMM'')', '22023', 'invalid date field order "DDMM"', 'a bad field order');
SELECT throws_ok('SELECT ecrm.predict_matches(''nope'', ''pg_class'')', 'P0002', 'match model "nope" does not exist', 'an unknown model');
SELECT throws_ok('SELECT ecrm.components(''{{1,NULL}}'')', '22023', NULL, 'a malformed components array');
-- (REPEATABLE READ is refused too: see test/sql/matching_crm.sql; it cannot be set inside this transaction)

SELECT * FROM finish();
ROLLBACK;
