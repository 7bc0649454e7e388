-- Gradient-boosted trees: labels, privileges, errors with their SQLSTATE.
BEGIN;
SELECT plan(27);

CREATE TEMP TABLE g AS SELECT i, ARRAY[(i % 7)::float8, (i % 3)::float8] AS f, i % 7 > 3 AS y FROM generate_series(1, 200) i;

-- honest labels
SELECT is((SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
            WHERE n.nspname = 'ecrm' AND p.proname IN ('gbdt_predict', 'gbdt_log_odds', 'gbdt_explain', 'gbdt_base_value')
              AND p.provolatile = 'i' AND p.proisstrict AND p.proparallel = 's'), 4::bigint,
          'prediction and explanation functions are IMMUTABLE STRICT PARALLEL SAFE');
SELECT is((SELECT count(*) FROM pg_aggregate a JOIN pg_proc p ON p.oid = a.aggfnoid
            WHERE p.oid::regproc::text = 'ecrm.gbdt_train' AND a.aggcombinefn <> 0 AND a.aggserialfn <> 0 AND p.proparallel = 's'),
          4::bigint, 'the four gbdt_train aggregates are parallel safe with combine and serial functions');

-- privileges: analysts and agents may train and score (no personal data in a model), PUBLIC may not
SELECT ok(has_function_privilege('ecrm_analyst', 'ecrm.gbdt_predict(jsonb, double precision[])', 'EXECUTE'), 'analyst scores');
SELECT ok(has_function_privilege('ecrm_agent', 'ecrm.gbdt_explain(jsonb, double precision[])', 'EXECUTE'), 'agent explains');
SELECT ok(NOT has_function_privilege('public', 'ecrm.gbdt_predict(jsonb, double precision[])', 'EXECUTE'), 'PUBLIC cannot');

-- training errors
SELECT throws_ok($$SELECT ecrm.gbdt_train(f, y) FROM g WHERE false$$, 'P0002', 'no training rows', 'zero rows');
SELECT throws_ok($$SELECT ecrm.gbdt_train(f, true) FROM g$$, '22023', 'all 200 training rows have label true', 'one class');
SELECT throws_ok($$SELECT ecrm.gbdt_train(f, CASE WHEN i = 9 THEN 'NaN'::float8 ELSE y::int END) FROM g$$, '22023',
                 'label of training row 9 is NaN, not 0 or 1', 'NaN label');
SELECT throws_ok($$SELECT ecrm.gbdt_train(f, CASE WHEN i = 9 THEN NULL ELSE y END) FROM g$$, '22004',
                 'label of training row 9 is NULL', 'NULL label');
SELECT throws_ok($$SELECT ecrm.gbdt_train(CASE WHEN i = 9 THEN NULL ELSE f END, y) FROM g$$, '22004',
                 'features of training row 9 are NULL', 'NULL features');
SELECT throws_ok($$SELECT ecrm.gbdt_train('{}'::float8[], y) FROM g$$, '2202E', 'features must not be empty', 'empty features');
SELECT throws_ok($$SELECT ecrm.gbdt_train(CASE WHEN i = 9 THEN f[1:1] ELSE f END, y) FROM g$$, '2202E',
                 'features has 1 elements, the model has 2 features', 'mismatched lengths');
SELECT throws_ok($$SELECT ecrm.gbdt_train(array_fill(1::float8, ARRAY[1001]), y) FROM g$$, '54000',
                 'at most 1000 features, not 1001', 'too many features');
SELECT throws_ok($$SELECT ecrm.gbdt_train(ARRAY['Infinity'::float8], y) FROM g$$, '22023',
                 'feature 1 of training row 1 is infinite', 'infinite feature');
SELECT throws_ok($$SELECT ecrm.gbdt_train(f, y, '{"max_depth": 17}') FROM g$$, '22023',
                 'gbdt parameter "max_depth" must be an integer between 1 and 16', 'depth > 16');
SELECT throws_ok($$SELECT ecrm.gbdt_train(f, y, '{"learning_rate": 0}') FROM g$$, '22023',
                 'gbdt parameter "learning_rate" must be greater than 0 and at most 1', 'learning rate 0');
SELECT throws_ok($$SELECT ecrm.gbdt_train(f, y, '{"learning_rate": 2}') FROM g$$, '22023',
                 'gbdt parameter "learning_rate" must be greater than 0 and at most 1', 'learning rate > 1');
SELECT throws_ok($$SELECT ecrm.gbdt_train(f, y, '{"max_iter": 100000}') FROM g$$, '22023',
                 'gbdt parameter "max_iter" must be an integer between 1 and 10000', 'absurd rounds');
SELECT throws_ok($$SELECT ecrm.gbdt_train(f, y, '{"depth": 3}') FROM g$$, '22023', 'unknown gbdt parameter "depth"', 'misspelt parameter');

-- prediction errors
SELECT throws_ok($$SELECT ecrm.gbdt_predict(m, '{1}') FROM (SELECT ecrm.gbdt_train(f, y, '{"max_iter": 2}') AS m FROM g) z$$, '2202E',
                 'features has 1 elements, the model has 2 features', 'predict with the wrong length');
SELECT throws_ok($$SELECT ecrm.gbdt_predict('{"type": "logistic_regression"}', '{1}')$$, '22023',
                 'invalid gradient-boosted trees model', 'not a tree model');
SELECT throws_ok($$SELECT ecrm.gbdt_explain(jsonb_set(m, '{base_score}', '3'), '{1,2}') FROM (SELECT ecrm.gbdt_train(f, y, '{"max_iter": 2}') AS m FROM g) z$$,
                 '22023', 'invalid gradient-boosted trees model', 'a changed model is refused by its fingerprint');

-- lead scoring
SELECT throws_ok($$SELECT ecrm.train_lead_model('x', 'ecrm.lead_features', method => 'forest')$$, '22023',
                 'unknown training method "forest"', 'unknown method');
SELECT throws_ok($$SELECT ecrm.train_lead_model('x', 'ecrm.lead_features', params => '{}')$$, '22023',
                 'params apply to method gbdt only', 'params with logistic regression');
SELECT ok((SELECT pg_get_constraintdef(c.oid) ~ 'gbdt' FROM pg_constraint c WHERE c.conname = 'scoring_model_kind_check'),
          'a scoring model may be of kind gbdt');
SELECT is(ecrm._predict_function('gbdt'), 'ecrm.gbdt_predict', 'tree models score with gbdt_predict');
SELECT is(ecrm._predict_function('logistic'), 'ecrm.logreg_predict', 'logistic models score with logreg_predict');

SELECT * FROM finish();
ROLLBACK;
