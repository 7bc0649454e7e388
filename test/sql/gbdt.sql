-- Gradient-boosted trees: the training aggregate, prediction, exact TreeSHAP, lead scoring with method gbdt.
SET client_min_messages = warning;
DROP EXTENSION ecrm CASCADE;
CREATE EXTENSION ecrm;
RESET client_min_messages;
\set SHOW_CONTEXT never
\pset null '(null)'
SET extra_float_digits = 0;

-- a deterministic data set: x3 is missing (NaN or NULL) on every 10th row, x4 is constant
CREATE TABLE d AS   -- not TEMP: parallel workers read it
SELECT i, (i * 37 % 101) / 100.0::float8 AS x1, (i * 53 % 97) / 96.0::float8 AS x2,
       CASE WHEN i % 20 = 0 THEN 'NaN'::float8 WHEN i % 20 = 10 THEN NULL ELSE (i * 71 % 89) / 88.0 END AS x3,
       1.0::float8 AS x4
  FROM generate_series(1, 3000) i;
ALTER TABLE d ADD y boolean;
UPDATE d SET y = x1 + x2 * x2 + coalesce(nullif(x3, 'NaN'), 0.9) + ((i * 7919 % 1000) / 1000.0 - 0.5) * 0.6 > 1.45;
SELECT count(*) AS rows, count(*) FILTER (WHERE y) AS positives, count(*) FILTER (WHERE x3 IS NULL OR x3 = 'NaN') AS missing_x3 FROM d;

CREATE TEMP TABLE m AS SELECT ecrm.gbdt_train(ARRAY[x1, x2, x3, x4], y, '{"max_depth": 4, "max_iter": 200, "seed": 7}') AS m FROM d;
SELECT m ->> 'type' AS type, m -> 'features' AS features, m -> 'rows' AS rows, m -> 'validation_rows' AS validation_rows,
       m -> 'iterations' AS rounds, m -> 'best_iteration' AS best, m -> 'early_stopped' AS early_stopped,
       (m ->> 'best_iteration')::int = jsonb_array_length(m -> 'trees') AS trees_kept_to_best
  FROM m;
-- the same rows give the same model, byte for byte
SELECT m = (SELECT ecrm.gbdt_train(ARRAY[x1, x2, x3, x4], y, '{"max_depth": 4, "max_iter": 200, "seed": 7}') FROM d) AS deterministic FROM m;
-- it learnt: AUC on its own data, probabilities in (0, 1)
SELECT round(ecrm.roc_auc(ecrm.gbdt_predict(m, ARRAY[x1, x2, x3, x4]), y)::numeric, 2) > 0.9 AS learnt,
       bool_and(ecrm.gbdt_predict(m, ARRAY[x1, x2, x3, x4]) BETWEEN 0 AND 1) AS probabilities
  FROM d, m;
-- the constant feature never splits; the feature with missing values does, with a learnt direction
SELECT bool_and(NOT (t -> 'feature') @> '3') AS constant_never_used, bool_or((t -> 'feature') @> '2') AS x3_used
  FROM m, jsonb_array_elements(m -> 'trees') t;
-- NaN and a NULL element are the same missing value; probability is the sigmoid of the log-odds
SELECT ecrm.gbdt_predict(m, '{0.5,0.5,NaN,1}') = ecrm.gbdt_predict(m, '{0.5,0.5,NULL,1}') AS nan_is_null,
       abs(ecrm.gbdt_predict(m, '{0.5,0.5,0.5,1}') - 1 / (1 + exp(-ecrm.gbdt_log_odds(m, '{0.5,0.5,0.5,1}')))) < 1e-15 AS sigmoid,
       ecrm.gbdt_predict(m, '{1e300,-1e300,Infinity,1}') BETWEEN 0 AND 1 AS extreme_values
  FROM m;
-- the model passed as a value, from a table, or as a parameter scores the same (the cached model is keyed by the value)
SELECT count(*) AS rows,
       bool_and(ecrm.gbdt_predict(m.m, ARRAY[x1, x2, x3, x4]) = ecrm.gbdt_predict((SELECT m FROM m), ARRAY[x1, x2, x3, x4])) AS same
  FROM d, m;
-- two models in one column: each row gets its own
CREATE TEMP TABLE two AS
SELECT 1 AS k, m FROM m UNION ALL
SELECT 2, ecrm.gbdt_train(ARRAY[x1, x2, x3, x4], NOT y, '{"max_depth": 2, "max_iter": 5, "validation_fraction": 0}') FROM d;
SELECT k, round(ecrm.gbdt_predict(m, '{0.9,0.9,0.9,1}')::numeric, 6) > 0.5 AS positive FROM two, generate_series(1, 3) ORDER BY k LIMIT 4;

-- TreeSHAP: base value + contributions = log-odds, to 1e-9, on every row and on rows with missing values
SELECT count(*) AS rows,
       max(abs(ecrm.gbdt_base_value(m) + (SELECT sum(c) FROM unnest(ecrm.gbdt_explain(m, ARRAY[x1, x2, x3, x4])) c)
               - ecrm.gbdt_log_odds(m, ARRAY[x1, x2, x3, x4]))) < 1e-9 AS adds_up
  FROM d, m WHERE d.i % 7 = 0;
SELECT ecrm.gbdt_base_value(m) = (m ->> 'baseline_logit')::float8 AS base_is_baseline_logit,
       (ecrm.gbdt_explain(m, '{0.3,0.6,0.2,1}'))[4] = 0 AS unused_feature_gets_zero
  FROM m;
-- ... and they are the exact Shapley values: brute force over every subset S of the features, with
-- v(S) = the cover-weighted expectation given the features in S (ecrm._gbdt_conditional_expectation)
CREATE TEMP TABLE small AS SELECT ecrm.gbdt_train(ARRAY[x1, x2, x3, x4, x1 * x2, x2 - x3], y,
                                 '{"max_depth": 3, "max_iter": 6, "min_samples_leaf": 5, "validation_fraction": 0, "learning_rate": 0.5}') AS m FROM d;
CREATE FUNCTION pg_temp.brute_shap(m jsonb, x float8[]) RETURNS float8[] LANGUAGE sql AS $$
    WITH s AS (SELECT mask, (SELECT count(*) FROM generate_series(1, cardinality(x)) j WHERE (mask >> (j - 1)) & 1 = 1) AS size,
                      ecrm._gbdt_conditional_expectation(m, x, ARRAY(SELECT (mask >> (j - 1)) & 1 = 1
                                                                       FROM generate_series(1, cardinality(x)) j ORDER BY j)) AS v
                 FROM generate_series(0, (1 << cardinality(x)) - 1) mask)
    SELECT array_agg(phi ORDER BY j) FROM (
        SELECT j.j, sum((factorial(s.size) * factorial(cardinality(x) - s.size - 1) / factorial(cardinality(x)))::float8 * (w.v - s.v)) AS phi
          FROM generate_series(1, cardinality(x)) j(j)
          JOIN s ON (s.mask >> (j.j - 1)) & 1 = 0
          JOIN s w ON w.mask = s.mask | (1 << (j.j - 1))
         GROUP BY j.j) p
$$;
SELECT count(*) AS rows,
       max((SELECT max(abs(a - b)) FROM unnest(ecrm.gbdt_explain(m, x), pg_temp.brute_shap(m, x)) u(a, b))) < 1e-9 AS exact,
       max((SELECT max(abs(a)) FROM unnest(ecrm.gbdt_explain(m, x)) a)) > 0.1 AS not_trivial
  FROM small, (SELECT ARRAY[x1, x2, x3, x4, x1 * x2, x2 - x3] AS x FROM d WHERE i % 97 = 0 OR i IN (20, 30)) r;
-- leaf-wise growth (max_leaf_nodes): at most that many leaves per tree, and the
-- same exact explanations
CREATE TEMP TABLE leafy AS SELECT ecrm.gbdt_train(ARRAY[x1, x2, x3, x4, x1 * x2, x2 - x3], y,
                                 '{"max_leaf_nodes": 5, "max_depth": 16, "max_iter": 6, "min_samples_leaf": 5, "validation_fraction": 0, "learning_rate": 0.5}') AS m FROM d;
SELECT max((SELECT count(*) FROM jsonb_array_elements(t -> 'feature') e WHERE e::int = -1)) AS most_leaves,
       m -> 'params' -> 'max_leaf_nodes' AS max_leaf_nodes
  FROM leafy, jsonb_array_elements(m -> 'trees') t GROUP BY m;
SELECT count(*) AS rows,
       max((SELECT max(abs(a - b)) FROM unnest(ecrm.gbdt_explain(m, x), pg_temp.brute_shap(m, x)) u(a, b))) < 1e-9 AS exact,
       max(abs(ecrm.gbdt_base_value(m) + (SELECT sum(c) FROM unnest(ecrm.gbdt_explain(m, x)) c) - ecrm.gbdt_log_odds(m, x))) < 1e-9 AS adds_up
  FROM leafy, (SELECT ARRAY[x1, x2, x3, x4, x1 * x2, x2 - x3] AS x FROM d WHERE i % 97 = 0 OR i IN (20, 30)) r;
SELECT round(ecrm.roc_auc(ecrm.gbdt_predict(m, ARRAY[x1, x2, x3, x4]), y)::numeric, 2) > 0.9 AS leafwise_learnt
  FROM d, (SELECT ecrm.gbdt_train(ARRAY[x1, x2, x3, x4], y, '{"max_leaf_nodes": 31, "max_depth": 16, "seed": 7}') AS m FROM d) z;
SELECT ecrm._gbdt_conditional_expectation(m, '{0.1,0.2,0.3,1,0.02,-0.1}', '{t,t,t,t,t,t}') = ecrm.gbdt_log_odds(m, '{0.1,0.2,0.3,1,0.02,-0.1}') AS all_known_is_prediction,
       abs(ecrm._gbdt_conditional_expectation(m, '{0.1,0.2,0.3,1,0.02,-0.1}', '{f,f,f,f,f,f}') - ecrm.gbdt_base_value(m)) < 1e-12 AS none_known_is_base
  FROM small;

-- in parallel, workers collect rows and the leader concatenates them (serialize, deserialize, combine):
-- every row arrives; with no validation part the split of rows does not matter and the trees learn the same
SET max_parallel_workers_per_gather = 2; SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0; SET parallel_leader_participation = off;
CREATE FUNCTION pg_temp.plan_text(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE p json; BEGIN EXECUTE 'EXPLAIN (ANALYZE, FORMAT JSON, COSTS OFF, TIMING OFF, SUMMARY OFF) ' || q INTO p; RETURN p::text; END $$;
SELECT p LIKE '%"Partial Mode": "Partial"%' AND p ~ '"Workers Launched": [1-9]' AS partial_in_workers
  FROM pg_temp.plan_text($$SELECT ecrm.gbdt_train(ARRAY[x1, x2, x3, x4], y, '{"validation_fraction": 0, "max_iter": 20}') FROM d$$) p;
SELECT (m ->> 'rows')::int AS rows, (m ->> 'positives')::int AS positives,
       round(ecrm.roc_auc(ecrm.gbdt_predict(m, ARRAY[x1, x2, x3, x4]), y)::numeric, 3) =
       round((SELECT ecrm.roc_auc(ecrm.gbdt_predict(s, ARRAY[x1, x2, x3, x4]), y)
                FROM d, (SELECT ecrm.gbdt_train(ARRAY[x1, x2, x3, x4], y, '{"validation_fraction": 0, "max_iter": 20}' ORDER BY i) s FROM d) z)::numeric, 3) AS same_auc_as_serial
  FROM d, (SELECT ecrm.gbdt_train(ARRAY[x1, x2, x3, x4], y, '{"validation_fraction": 0, "max_iter": 20}') AS m FROM d) z
 GROUP BY m;
RESET max_parallel_workers_per_gather; RESET parallel_setup_cost; RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size; RESET parallel_leader_participation;

-- labels as 0/1 numbers train the same model as booleans
SELECT (SELECT ecrm.gbdt_train(ARRAY[x1, x2], y::int::float8, '{"max_iter": 3}') FROM d) = (SELECT ecrm.gbdt_train(ARRAY[x1, x2], y, '{"max_iter": 3}') FROM d) AS same;
-- defaults (no parameters) work
SELECT (m -> 'params' ->> 'max_depth')::int AS max_depth, (m -> 'params' ->> 'learning_rate')::float8 AS learning_rate
  FROM (SELECT ecrm.gbdt_train(ARRAY[x1, x2], y) AS m FROM d) z;

-- bad input: each a clear error
SELECT ecrm.gbdt_train(ARRAY[x1], y) FROM d WHERE false;
SELECT ecrm.gbdt_train(ARRAY[x1], true) FROM d;
-- four rows, two to validation: the training part holds both classes, no split is possible (min_samples_leaf 20)
SELECT m -> 'rows' AS rows, m -> 'validation_rows' AS validation_rows, m -> 'nodes' AS nodes, m -> 'best_iteration' AS best
  FROM (SELECT ecrm.gbdt_train(ARRAY[x1], y, '{"validation_fraction": 0.5}') AS m FROM d WHERE i <= 4) z;
SELECT ecrm.gbdt_train(ARRAY[i::float8], i % 2 = 0, '{"validation_fraction": 0.5, "seed": 3}') FROM generate_series(1, 4) i;
SELECT ecrm.gbdt_train(ARRAY[x1], CASE WHEN i = 5 THEN 'NaN'::float8 ELSE y::int END) FROM d;
SELECT ecrm.gbdt_train(ARRAY[x1], CASE WHEN i = 5 THEN 2 ELSE y::int END::float8) FROM d;
SELECT ecrm.gbdt_train(ARRAY[x1], CASE WHEN i = 5 THEN NULL ELSE y END) FROM d;
SELECT ecrm.gbdt_train(CASE WHEN i = 5 THEN NULL ELSE ARRAY[x1] END, y) FROM d;
SELECT ecrm.gbdt_train('{}'::float8[], y) FROM d;
SELECT ecrm.gbdt_train(CASE WHEN i = 5 THEN ARRAY[x1] ELSE ARRAY[x1, x2] END, y) FROM d;
SELECT ecrm.gbdt_train(ARRAY[[x1, x2]], y) FROM d;
SELECT ecrm.gbdt_train(ARRAY[CASE WHEN i = 5 THEN 'Infinity' ELSE x1 END], y) FROM d;
SELECT ecrm.gbdt_train(ARRAY[x1], y, '{"max_depth": 17}') FROM d;
SELECT ecrm.gbdt_train(ARRAY[x1], y, '{"max_depth": 1000000000000}') FROM d;
SELECT ecrm.gbdt_train(ARRAY[x1], y, '{"learning_rate": 0}') FROM d;
SELECT ecrm.gbdt_train(ARRAY[x1], y, '{"learning_rate": 1.5}') FROM d;
SELECT ecrm.gbdt_train(ARRAY[x1], y, '{"max_bins": 256}') FROM d;
SELECT ecrm.gbdt_train(ARRAY[x1], y, '{"max_iter": 2.5}') FROM d;
SELECT ecrm.gbdt_train(ARRAY[x1], y, '{"l2": -1}') FROM d;
SELECT ecrm.gbdt_train(ARRAY[x1], y, '{"min_samples_leaf": "20"}') FROM d;
SELECT ecrm.gbdt_train(ARRAY[x1], y, '{"maxdepth": 3}') FROM d;
SELECT ecrm.gbdt_train(ARRAY[x1], y, '{"max_leaf_nodes": 1}') FROM d;
SELECT ecrm.gbdt_train(ARRAY[x1], y, '{"max_leaf_nodes": 257}') FROM d;
SELECT ecrm.gbdt_train(ARRAY[x1], y, '[1]') FROM d;
SELECT ecrm.gbdt_train(ARRAY[x1], y, '{"validation_fraction": 0.9}') FROM d;
-- a NULL parameter object means the defaults
SELECT ecrm.gbdt_train(ARRAY[x1], y, NULL) IS NOT NULL AS defaults FROM d;

-- prediction input
SELECT ecrm.gbdt_predict(m, NULL) AS strict_null, ecrm.gbdt_predict(NULL, '{1,2,3,4}') AS strict_null_model FROM m;
SELECT ecrm.gbdt_predict(m, '{1,2,3}') FROM m;
SELECT ecrm.gbdt_predict(m, '{}') FROM m;
SELECT ecrm.gbdt_explain(m, '{{1,2},{3,4}}') FROM m;
SELECT ecrm.gbdt_predict('{"type": "logistic_regression"}', '{1}');
SELECT ecrm.gbdt_predict('[]', '{1}');
SELECT ecrm.gbdt_predict(jsonb_set(m, '{base_score}', '1'), '{1,2,3,4}') FROM m;
SELECT ecrm.gbdt_predict(m - 'fingerprint' || '{"base_score": 1}', '{1,2,3,4}') > 0 AS unfingerprinted_ok FROM m;
-- hand-made trees: children must come after their parent and have one parent each (no cycles, no shared subtrees)
SELECT ecrm.gbdt_predict('{"type": "gradient_boosted_trees", "format": 1, "features": 1, "base_score": 0, "trees": [
  {"feature": [0, -1, -1], "threshold": [0.5, 0, 0], "missing_left": [true, false, false], "left": [1, -1, -1], "right": [2, -1, -1],
   "value": [0, -1, 1], "cover": [2, 1, 1]}]}', ARRAY[v]) AS p
  FROM unnest('{0, 1, NaN}'::float8[]) v;
SELECT ecrm.gbdt_predict('{"type": "gradient_boosted_trees", "format": 1, "features": 1, "base_score": 0, "trees": [
  {"feature": [0, 0, -1], "threshold": [0.5, 0, 0], "missing_left": [true, false, false], "left": [1, 0, -1], "right": [2, 2, -1],
   "value": [0, 0, 1], "cover": [2, 1, 1]}]}', '{1}');
SELECT ecrm.gbdt_predict('{"type": "gradient_boosted_trees", "format": 1, "features": 1, "base_score": 0, "trees": [
  {"feature": [0, 0, -1], "threshold": [0.5, 0, 0], "missing_left": [true, false, false], "left": [1, 2, -1], "right": [2, 2, -1],
   "value": [0, 0, 1], "cover": [2, 1, 1]}]}', '{1}');
SELECT ecrm.gbdt_predict('{"type": "gradient_boosted_trees", "format": 1, "features": 1, "base_score": 0, "trees": [
  {"feature": [3], "threshold": [0], "missing_left": [true], "left": [1], "right": [2], "value": [0], "cover": [1]}]}', '{1}');
SELECT ecrm.gbdt_predict('{"type": "gradient_boosted_trees", "format": 1, "features": 1, "base_score": 0, "trees": [
  {"feature": [-1], "threshold": [0], "missing_left": [false], "left": [-1], "right": [-1], "value": [1], "cover": [0]}]}', '{1}');
SELECT ecrm.gbdt_predict('{"type": "gradient_boosted_trees", "format": 1, "features": 1, "base_score": 0, "trees": [
  {"feature": [-1, -1], "threshold": [0], "missing_left": [false], "left": [-1], "right": [-1], "value": [1], "cover": [1]}]}', '{1}');

-- lead scoring with method => 'gbdt' beside logistic regression
SELECT count(*) > 0 AS generated FROM ecrm.generate_demo_data(600, 7, '2025-01-01');
CREATE TEMP TABLE train AS SELECT * FROM ecrm.lead_features_at('2024-10-01', '90 days');
SELECT ecrm.train_lead_model('conversion', 'train', exclude => '{orders,revenue,days_since_last_order}', method => 'gbdt',
                             params => '{"max_depth": 3, "min_samples_leaf": 10, "seed": 1}', mql_threshold => 0.2, sql_threshold => 0.5) AS gm \gset
SELECT name, version, kind, status, metrics -> 'holdout' -> 'rows' AS holdout_rows,
       (metrics -> 'holdout' ->> 'auc')::float8 > 0.5 AS better_than_chance, metrics -> 'holdout' ? 'log_loss' AS has_log_loss,
       jsonb_array_length(metrics -> 'holdout' -> 'calibration_by_decile') > 0 AS has_calibration,
       (metrics -> 'training' ->> 'best_iteration')::int = jsonb_array_length(model -> 'trees') AS best_round_reported
  FROM ecrm.scoring_model WHERE model_id = :gm;
-- the holdout AUC is that of the stored model's predictions
SELECT round(ecrm.roc_auc(p, converted)::numeric, 6) = round((metrics -> 'holdout' ->> 'auc')::numeric, 6) AS auc_matches
  FROM (SELECT ecrm.gbdt_predict(s.model, ecrm.encode_features(s.feature_spec, to_jsonb(t))) AS p, t.converted, s.metrics
          FROM train t, ecrm.scoring_model s WHERE s.model_id = :gm AND abs(hashint8(t.customer_id) % 1000) < 200) e
 GROUP BY metrics;
SELECT ecrm.activate_model(:gm) AS scored;
SELECT count(*) AS rows, bool_and(score BETWEEN 0 AND 1) AS probabilities FROM ecrm.lead_score WHERE model_id = :gm;
-- explain_score: the TreeSHAP contributions per attribute and the base value add up to the logit of the stored score
SELECT customer_id AS c FROM ecrm.leads ORDER BY conversion_probability DESC, customer_id LIMIT 1 \gset
SELECT count(*) > 1 AS has_factors, bool_or(kind = 'baseline') AS has_baseline,
       abs(sum(contribution) - (SELECT ln(score / (1 - score)) FROM ecrm.lead_score WHERE customer_id = :c AND model_id = :gm)) < 1e-9 AS adds_up
  FROM ecrm.explain_score(:c, 'conversion');
-- real time: an interaction rescores the tree model; the stored score equals a fresh computation
SELECT computed_at AS before FROM ecrm.lead_score WHERE customer_id = :c AND model_id = :gm \gset
SELECT pg_sleep(0.01), ecrm.record_interaction(:c, 'web', 'page_view') > 0 AS recorded;
SELECT computed_at > :'before' AS rescored FROM ecrm.lead_score WHERE customer_id = :c AND model_id = :gm;
SELECT abs(l.score - s.score) < 1e-12 AS same_as_recomputed
  FROM ecrm.lead_score l, ecrm.score_customers(:gm, l.computed_at, ARRAY[:c]) s WHERE l.customer_id = :c AND l.model_id = :gm;
SELECT count(*) AS customers, bool_and(abs(a.score - b.score) < 1e-12) AS same
  FROM ecrm.score_customers(:gm, '2025-01-01', ARRAY(SELECT customer_id FROM ecrm.customers ORDER BY customer_id LIMIT 20)) a
  JOIN ecrm.score_customers(:gm, '2025-01-01') b USING (customer_id);
-- the next version may go back to logistic regression (still the default method)
SELECT ecrm.train_lead_model('conversion', 'train', exclude => '{orders,revenue,days_since_last_order}') AS lm \gset
SELECT version, kind, based_on = :gm AS based_on_gbdt FROM ecrm.scoring_model WHERE model_id = :lm;
-- without a validation part, a notice says so
SELECT ecrm.train_lead_model('conversion', 'train', method => 'gbdt', params => '{"validation_fraction": 0, "max_iter": 3}') IS NOT NULL AS trained;
-- bad input
SELECT ecrm.train_lead_model('conversion', 'train', method => 'forest');
SELECT ecrm.train_lead_model('conversion', 'train', method => NULL);
SELECT ecrm.train_lead_model('conversion', 'train', params => '{"max_depth": 3}');
SELECT ecrm.train_lead_model('conversion', 'train', method => 'gbdt', params => '{"max_depth": 40}');
CREATE TEMP TABLE one_class AS SELECT * FROM train WHERE NOT converted;
SELECT ecrm.train_lead_model('conversion', 'one_class', method => 'gbdt');
SELECT ecrm.new_model_version('conversion');
DROP TABLE d;
