-- Lead scoring: privileges, errors with their SQLSTATE, real-time invariants.
BEGIN;
SELECT plan(46);

-- objects exist with the agreed interface
SELECT has_table('ecrm', 'lead_score', 'ecrm.lead_score exists');
SELECT col_is_pk('ecrm', 'lead_score', ARRAY['customer_id', 'model_id'], 'lead_score is keyed by (customer_id, model_id)');
SELECT has_column('ecrm', 'lead_score', 'computed_at', 'lead_score has computed_at');
SELECT has_column('ecrm', 'leads', 'score', 'the leads view shows the score');
SELECT has_function('ecrm', 'decayed_sum', ARRAY['double precision', 'timestamp with time zone', 'timestamp with time zone', 'interval'], 'decayed_sum aggregate');
SELECT is((SELECT aggcombinefn::text FROM pg_aggregate WHERE aggfnoid = 'ecrm.decayed_sum'::regproc), 'float8pl', 'decayed_sum combines partial sums');
SELECT is((SELECT count(*) FROM pg_aggregate a JOIN pg_proc p ON p.oid = a.aggfnoid JOIN pg_namespace n ON n.oid = p.pronamespace
            WHERE n.nspname = 'ecrm' AND a.aggcombinefn = 0), 0::bigint, 'every ecrm aggregate has a combine function');
SELECT is((SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
            WHERE n.nspname = 'ecrm' AND p.proname IN ('logreg_train', 'roc_auc', 'log_loss', 'lift_by_decile', 'calibration_by_decile', 'decayed_sum')
              AND p.proparallel <> 's'), 0::bigint, 'scoring aggregates are parallel safe');

-- privileges
SELECT ok(has_table_privilege('ecrm_agent', 'ecrm.lead_score', 'SELECT'), 'agent reads scores');
SELECT ok(NOT has_table_privilege('ecrm_agent', 'ecrm.scoring_rule', 'INSERT'), 'agent cannot change rules');
SELECT ok(NOT has_function_privilege('ecrm_agent', 'ecrm.activate_model(bigint)', 'EXECUTE'), 'agent cannot activate models');
SELECT ok(has_function_privilege('ecrm_agent', 'ecrm.explain_score(bigint, text, timestamptz)', 'EXECUTE'), 'agent explains scores');
SELECT ok(NOT has_table_privilege('ecrm_analyst', 'ecrm.lead_score', 'SELECT'), 'analyst cannot read per-customer scores');
SELECT ok(NOT has_table_privilege('ecrm_analyst', 'ecrm.lead_features', 'SELECT'), 'analyst cannot read per-customer features');
SELECT ok(has_table_privilege('ecrm_analyst', 'ecrm.scoring_rule', 'SELECT'), 'analyst reads the rules');
SELECT ok(has_function_privilege('ecrm_analyst', 'ecrm.roc_auc(double precision, boolean)', 'EXECUTE'), 'analyst evaluates with roc_auc');
SELECT ok(has_function_privilege('ecrm_agent', 'ecrm.decayed_sum(double precision, timestamptz, timestamptz, interval)', 'EXECUTE'),
          'agent runs decayed_sum (the rescoring trigger does)');
SELECT is((SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace,
                  aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
            WHERE n.nspname = 'ecrm' AND a.grantee = 0), 0::bigint, 'no scoring function is executable by PUBLIC');
SELECT ok(NOT has_table_privilege('ecrm_agent', 'ecrm.scoring_model', 'UPDATE'), 'agent cannot change models (nor their rescoring statement)');
SELECT is((SELECT prosecdef FROM pg_proc WHERE oid = 'ecrm._mark_lead_scores_incomplete()'::regprocedure), true,
          'marking scores incomplete is SECURITY DEFINER (agents load profiles)');
SELECT is((SELECT proconfig FROM pg_proc WHERE oid = 'ecrm._mark_lead_scores_incomplete()'::regprocedure),
          '{"search_path=pg_catalog, pg_temp"}'::text[], '... with a fixed search_path');
SELECT is((SELECT proconfig FROM pg_proc WHERE oid = 'ecrm._rescore(bigint[])'::regprocedure),
          '{"search_path=pg_catalog, pg_temp"}'::text[], 'rescoring runs its statements with a fixed search_path');

-- a model, a lead, an agent recording an interaction
SELECT ecrm.upsert_customer('{"first_name": "Tap", "email": "tap@corp.example", "company": "Corp", "lifecycle_stage": "lead"}') AS cid \gset
SELECT ecrm.create_scoring_model('default', half_life => '30 days', mql_threshold => 20) AS mid \gset
INSERT INTO ecrm.scoring_rule (model_id, name, kind, points, source, event_kind) VALUES (:mid, 'Webinar', 'engagement', 15, 'interaction', 'webinar');
INSERT INTO ecrm.scoring_rule (model_id, name, kind, points, field, op) VALUES (:mid, 'Company', 'fit', 10, 'company', 'exists');
SELECT is(ecrm.activate_model(:mid) >= 1, true, 'activation scores customers');
SELECT is((SELECT score FROM ecrm.lead_score WHERE customer_id = :cid AND model_id = :mid), 10::float8, 'fit points stored at activation');
SET LOCAL ROLE ecrm_agent;
SELECT lives_ok(format($$SELECT ecrm.record_interaction(%s, 'web', 'webinar')$$, :cid), 'an agent records an interaction (the trigger rescores)');
SELECT is((SELECT round(score::numeric, 6) FROM ecrm.lead_score WHERE customer_id = :cid AND model_id = :mid), 25::numeric, 'score updated in the same transaction');
SELECT is((SELECT lifecycle_stage::text FROM ecrm.customer_profile WHERE customer_id = :cid), 'marketing_qualified', 'lead promoted past the threshold');
SELECT throws_ok($$INSERT INTO ecrm.scoring_rule (model_id, name, kind, points, field, op) VALUES (1, 'x', 'fit', 1, 'company', 'exists')$$,
                 '42501', NULL, 'agent cannot add rules');
SELECT lives_ok(format($$SELECT count(ecrm.record_interaction(%s, 'web', 'webinar')) FROM generate_series(1, 12)$$, :cid),
                'an agent records one interaction after another (the kept plan)');
SELECT is((SELECT round(score::numeric, 6) FROM ecrm.lead_score WHERE customer_id = :cid AND model_id = :mid), 205::numeric,
          'every one counted');
SELECT is((SELECT count(*) FROM ecrm.leads WHERE customer_id = :cid AND score IS NOT NULL), 1::bigint, 'agent reads the score in the leads view');
-- loading a lead with ecrm.score_on_write off: no score yet, the view still lists the lead
SET LOCAL ecrm.score_on_write = off;
SELECT lives_ok($$SELECT ecrm.upsert_customer('{"first_name": "Bulk", "lifecycle_stage": "lead"}')$$, 'an agent loads a lead with scoring off');
RESET ecrm.score_on_write;
RESET ROLE;
SELECT is((SELECT scores_complete FROM ecrm.scoring_model WHERE model_id = :mid), false, 'the model''s scores are marked incomplete');
SELECT is((SELECT count(*) FROM ecrm.leads WHERE full_name = 'Bulk' AND score IS NULL), 1::bigint, 'the unscored lead is in the leads view');
SELECT lives_ok($$SELECT ecrm.refresh_lead_scores()$$, 'refresh');
SELECT is((SELECT scores_complete FROM ecrm.scoring_model WHERE model_id = :mid), true, 'complete again after refresh_lead_scores()');

-- errors name what is wrong, with specific SQLSTATEs
SELECT throws_ok($$SELECT ecrm.logreg_train(f, true) FROM (VALUES ('{1,2}'::float8[]), ('{1}')) x(f)$$,
                 '22023', 'feature arrays have different lengths', 'different lengths');
SELECT throws_ok($$SELECT ecrm.logreg_train('{1}'::float8[], true)$$, '22023', 'training data has only one class', 'one class');
SELECT throws_ok($$SELECT ecrm.logreg_train('{1}'::float8[], true) WHERE false$$, '22023', 'no training rows', 'no rows');
SELECT throws_ok($$SELECT ecrm.logreg_train('{NaN}'::float8[], true)$$, '22023', 'features must hold finite numbers, but element 1 is NaN', 'NaN feature');
SELECT throws_ok($$SELECT ecrm.logreg_predict('{"type": "logistic_regression", "intercept": 0, "coef": [1, 2]}', '{1}')$$,
                 '22023', 'model expects 2 features, not 1', 'wrong shape');
SELECT throws_ok($$SELECT * FROM ecrm.score_customers(987654)$$, 'P0002', 'scoring model 987654 does not exist', 'unknown model');
SELECT throws_ok($$SELECT * FROM ecrm.explain_score(1, 'nosuch')$$, 'P0002', 'scoring model "nosuch" has no active version', 'unknown model name');
SELECT throws_ok(format($$UPDATE ecrm.scoring_rule SET points = 1 WHERE model_id = %s$$, :mid), '55000', NULL, 'active model is frozen');
SELECT throws_ok($$SELECT ecrm.decay_weight(now(), now(), '0 s')$$, '22023', 'half-life must be positive', 'zero half-life');
SELECT throws_ok($$SELECT ecrm.roc_auc(s, true) FROM (VALUES (0.1), (0.2)) x(s)$$, '22023', 'ROC AUC is undefined when every label is true', 'AUC of one class');

SELECT * FROM finish();
ROLLBACK;
