-- Scoring kernel: decay, logistic regression, feature encoding, evaluation aggregates.
\set SHOW_CONTEXT never
\pset null '(null)'
SET extra_float_digits = 0;

-- decay_weight: halves every half-life; 0 after as_of and at -infinity
SELECT ecrm.decay_weight('2025-01-01', '2025-01-01', '14 days') AS now_,
       ecrm.decay_weight('2025-01-01', '2025-01-15', '14 days') AS one_half_life,
       ecrm.decay_weight('2025-01-01', '2025-01-29', '14 days') AS two,
       ecrm.decay_weight('2025-01-01', '2025-01-02', '1 day') AS one_day,
       ecrm.decay_weight('2025-01-01', '2025-02-01', '1 mon') AS one_month_is_30_days,
       ecrm.decay_weight('2025-01-02', '2025-01-01', '14 days') AS future,
       ecrm.decay_weight('-infinity', '2025-01-01', '14 days') AS minus_inf,
       ecrm.decay_weight('infinity', '2025-01-01', '14 days') AS plus_inf,
       ecrm.decay_weight('4713-01-01 BC', '294276-12-31', '1 microsecond') AS extremes;
SELECT ecrm.decay_weight(NULL, '2025-01-01', '1 day');
SELECT ecrm.decay_weight('2025-01-01', '2025-01-02', '0 days');
SELECT ecrm.decay_weight('2025-01-01', '2025-01-02', '-1 day');
SELECT ecrm.decay_weight('2025-01-01', '2025-01-02', '1 day -25 hours');
SELECT ecrm.decay_weight('2025-01-01', 'infinity', '1 day');

-- decayed_sum
SELECT ecrm.decayed_sum(v, t, '2025-01-15', '14 days')
  FROM (VALUES (10, '2025-01-15'::timestamptz), (4, '2025-01-01'), (8, '2024-12-18'), (100, '2025-01-16')) x(v, t);
SELECT ecrm.decayed_sum(v, t, '2025-01-15', '14 days') FROM (VALUES (NULL::float8, '2025-01-01'::timestamptz), (2, NULL)) x(v, t);
SELECT ecrm.decayed_sum(1, t, '2025-01-15', '14 days') FROM (SELECT '2025-01-01'::timestamptz WHERE false) x(t);
SELECT ecrm.decayed_sum(1, '2025-02-01', '2025-01-15', '14 days');   -- only future events: 0, not NULL
SELECT ecrm.decayed_sum(-3, '2025-01-15', '2025-01-15', '1 day');
SELECT ecrm.decayed_sum(v, '2025-01-01', '2025-01-15', '14 days') FROM (VALUES ('NaN'::float8)) x(v);
SELECT ecrm.decayed_sum(v, '2025-01-01', '2025-01-15', '14 days') FROM (VALUES ('-Infinity'::float8)) x(v);
SELECT ecrm.decayed_sum(1e308, '2025-01-15', '2025-01-15', '14 days') FROM generate_series(1, 2);
SELECT ecrm.decayed_sum(1, '2025-01-01', '2025-01-15', '0 s');
SELECT ecrm.decayed_sum(1, '2025-01-01', '-infinity', '1 day');
-- grouped, and the same as the formula written in plain SQL
CREATE TABLE scoring_ev AS
SELECT (i % 7) AS customer_id, timestamptz '2025-01-01' + i * interval '37 minutes' AS at, (i % 5)::float8 AS v
  FROM generate_series(1, 20000) i;
SELECT bool_and(abs(d - p) < 1e-9 * greatest(1, abs(p))) AS same_as_sql
  FROM (SELECT customer_id, ecrm.decayed_sum(v, at, '2025-02-01', '10 days') AS d,
               sum(v * power(0.5, extract(epoch FROM timestamptz '2025-02-01' - at) / 864000)) FILTER (WHERE at <= '2025-02-01') AS p
          FROM scoring_ev GROUP BY customer_id) x;
-- it parallelises: partial sums combine
SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0; SET max_parallel_workers_per_gather = 2;
EXPLAIN (COSTS OFF) SELECT ecrm.decayed_sum(v, at, '2025-02-01', '10 days') FROM scoring_ev;
SELECT round(ecrm.decayed_sum(v, at, '2025-02-01', '10 days')::numeric, 6) FROM scoring_ev;
RESET parallel_setup_cost; RESET parallel_tuple_cost; RESET min_parallel_table_scan_size; RESET max_parallel_workers_per_gather;

-- logistic regression on a small deterministic data set
CREATE TABLE scoring_lr AS
SELECT i, ARRAY[(i % 10)::float8, ((i * 7) % 13)::float8 / 13, (i % 3 = 0)::int::float8] AS f,
       ((i % 10) + 3 * (i % 3 = 0)::int + ((i * 31) % 11) / 2.0) > 8 AS y
  FROM generate_series(1, 2000) i;
CREATE TEMP TABLE lrm AS SELECT ecrm.logreg_train(f, y) AS m, ecrm.logreg_train(f, y, 0.001) AS m0 FROM scoring_lr;
SELECT m ->> 'type' AS type, m -> 'features' AS features, m -> 'rows' AS rows, m -> 'positives' AS positives,
       m -> 'converged' AS converged, (m ->> 'iterations')::int < 20 AS few_iterations,
       round((m ->> 'intercept')::numeric, 4) AS intercept,
       (SELECT array_agg(round(c::numeric, 4)) FROM jsonb_array_elements_text(m -> 'coef') c) AS coef,
       (SELECT array_agg(round(c::numeric, 4)) FROM jsonb_array_elements_text(m -> 'mean') c) AS mean
  FROM lrm;
-- less regularisation: larger coefficients
SELECT abs((m0 -> 'coef' ->> 0)::float8) > abs((m -> 'coef' ->> 0)::float8) AS l2_shrinks FROM lrm;
-- the gradient of the objective is zero at the optimum (checked in SQL)
SELECT max(abs(g)) < 1e-6 AS optimal
  FROM (SELECT sum((ecrm.logreg_predict(m, f) - y::int) * ((f[j] - (m -> 'mean' ->> (j - 1))::float8) / (m -> 'scale' ->> (j - 1))::float8))
               + (m -> 'std_coef' ->> (j - 1))::float8 AS g
          FROM scoring_lr, lrm, generate_series(1, 3) j GROUP BY j, m) x;
SELECT round(ecrm.logreg_predict(m, '{0,0,0}')::numeric, 6) AS p_low, round(ecrm.logreg_predict(m, '{9,1,1}')::numeric, 6) AS p_high FROM lrm;
-- contributions + baseline add up to the logit
SELECT abs((m ->> 'baseline_logit')::float8 + (SELECT sum(c) FROM unnest(ecrm.logreg_contributions(m, '{9,0.5,1}')) c)
           - ln(p / (1 - p))) < 1e-9 AS adds_up
  FROM lrm, LATERAL (SELECT ecrm.logreg_predict(m, '{9,0.5,1}') AS p) x;
-- huge features saturate, never NaN
SELECT ecrm.logreg_predict(m, '{1e300,0,0}') AS saturated_high, ecrm.logreg_predict(m, '{-1e300,0,0}') AS saturated_low FROM lrm;
-- rows with a NULL features array or label are skipped and counted
SELECT m -> 'rows' AS rows, m -> 'skipped' AS skipped
  FROM (SELECT ecrm.logreg_train(f, y) AS m FROM (SELECT f, y FROM scoring_lr UNION ALL VALUES (NULL::float8[], true), ('{1,2,3}', NULL)) x) z;
-- a constant feature gets weight 0
SELECT (ecrm.logreg_train(f || 5.0::float8, y) -> 'coef' ->> 3)::float8 AS constant_weight FROM scoring_lr;
-- parallel training gives the same model
SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0; SET max_parallel_workers_per_gather = 2;
EXPLAIN (COSTS OFF) SELECT ecrm.logreg_train(f, y) FROM scoring_lr;
SELECT abs((ecrm.logreg_train(f, y) ->> 'intercept')::float8 - (SELECT (m ->> 'intercept')::float8 FROM lrm)) < 1e-9 AS same FROM scoring_lr;
RESET parallel_setup_cost; RESET parallel_tuple_cost; RESET min_parallel_table_scan_size; RESET max_parallel_workers_per_gather;

-- bad training input
SELECT ecrm.logreg_train(f, y) FROM (VALUES ('{1,2}'::float8[], true), ('{1,2,3}', false)) x(f, y);
SELECT ecrm.logreg_train(f, y) FROM (VALUES ('{1,NaN}'::float8[], true)) x(f, y);
SELECT ecrm.logreg_train(f, y) FROM (VALUES ('{1,Infinity}'::float8[], true)) x(f, y);
SELECT ecrm.logreg_train(f, y) FROM (VALUES ('{1,NULL}'::float8[], true)) x(f, y);
SELECT ecrm.logreg_train(f, y) FROM (VALUES ('{}'::float8[], true)) x(f, y);
SELECT ecrm.logreg_train(f, y) FROM (VALUES ('{{1,2},{3,4}}'::float8[], true)) x(f, y);
SELECT ecrm.logreg_train(f, y) FROM (VALUES ('{1}'::float8[], true), ('{2}', true)) x(f, y);
SELECT ecrm.logreg_train(f, y) FROM (VALUES ('{1}'::float8[], false)) x(f, y);
SELECT ecrm.logreg_train(f, y) FROM scoring_lr WHERE false;
SELECT ecrm.logreg_train(f, y) FROM (VALUES (NULL::float8[], true)) x(f, y);
SELECT ecrm.logreg_train(f, y, -1) FROM scoring_lr;
SELECT ecrm.logreg_train(f, y, 'NaN') FROM scoring_lr;
SELECT ecrm.logreg_train(f, y, NULL) FROM scoring_lr;
SELECT ecrm.logreg_train(f, y, (i % 2)::float8) FROM scoring_lr;
SELECT ecrm.logreg_train(array_fill(1.0::float8, ARRAY[1001]), true);
-- separable data without regularisation: a warning, finite coefficients
SELECT (m -> 'coef' ->> 0)::float8 > 10 AS steep, ecrm.logreg_predict(m, '{5}') < 0.01 AS p5, ecrm.logreg_predict(m, '{6}') > 0.99 AS p6
  FROM (SELECT ecrm.logreg_train(ARRAY[x::float8], x > 5, 0) AS m FROM generate_series(1, 10) x) z;
-- duplicated features without regularisation: a tiny ridge splits the weight between them
SELECT round(((m -> 'coef' ->> 0)::float8 + (m -> 'coef' ->> 1)::float8)::numeric, 4) AS total_weight, m -> 'converged' AS converged
  FROM (SELECT ecrm.logreg_train(ARRAY[(i % 7)::float8, (i % 7)::float8], i % 3 = 0, 0) AS m FROM generate_series(1, 100) i) z;
SELECT round((ecrm.logreg_train(ARRAY[(i % 7)::float8], i % 3 = 0, 0) -> 'coef' ->> 0)::numeric, 4) AS single_weight FROM generate_series(1, 100) i;

-- bad prediction input
SELECT ecrm.logreg_predict(m, '{1,2}') FROM lrm;
SELECT ecrm.logreg_predict(m, '{1,2,NaN}') FROM lrm;
SELECT ecrm.logreg_predict(m, '{1,2,NULL}') FROM lrm;
SELECT ecrm.logreg_predict('{}', '{1}');
SELECT ecrm.logreg_predict('[1,2]', '{1}');
SELECT ecrm.logreg_predict('{"type": "logistic_regression", "intercept": 0, "coef": []}', '{}');
SELECT ecrm.logreg_predict('{"type": "logistic_regression", "intercept": "x", "coef": [1]}', '{1}');
SELECT ecrm.logreg_predict('{"type": "logistic_regression", "intercept": 0, "coef": [1, "a"]}', '{1,2}');
SELECT ecrm.logreg_predict('{"type": "logistic_regression", "intercept": 1e400, "coef": [1]}', '{1}');
SELECT ecrm.logreg_predict('{"type": "logistic_regression", "intercept": 0, "coef": [1e300, -1e300]}', '{1e300,1e300}');
SELECT ecrm.logreg_predict('{"type": "logistic_regression", "intercept": 0.5, "coef": [2]}', '{1}') AS hand_made;
SELECT ecrm.logreg_contributions('{"type": "logistic_regression", "intercept": 0.5, "coef": [2]}', '{1}');
SELECT ecrm.logreg_predict(NULL, '{1}'), ecrm.logreg_predict('{}', NULL);

-- feature encoding
SELECT ecrm.encode_features(s, a)
  FROM (VALUES ('{"features": [{"name": "age", "type": "numeric", "impute": 40},
                               {"name": "job", "type": "categorical", "levels": ["admin.", "blue-collar", "ünïcödé"]},
                               {"name": "vip", "type": "numeric"}]}'::jsonb)) s(s),
       (VALUES ('{"age": 31, "job": "blue-collar", "vip": true}'::jsonb), ('{"job": "ünïcödé", "vip": false}'),
               ('{"age": null, "job": "pilot", "vip": 0}'), ('{"age": 1.5e10, "job": null, "vip": -2}'),
               ('{"age": 3, "job": 7, "vip": 1, "extra": [1]}')) a(a);
SELECT ecrm.feature_names('{"features": [{"name": "age", "type": "numeric"}, {"name": "job", "type": "categorical", "levels": ["a", "b"]}]}');
SELECT ecrm.encode_features('{"features": [{"name": "n", "type": "categorical", "levels": ["1", "2.5", "true"]}]}', a)
  FROM (VALUES ('{"n": 2.5}'::jsonb), ('{"n": true}'), ('{"n": 1}')) x(a);
SELECT ecrm.encode_features('{"features": [{"name": "age", "type": "numeric"}]}', '{}');
SELECT ecrm.encode_features('{"features": [{"name": "age", "type": "numeric"}]}', '{"age": "31"}');
SELECT ecrm.encode_features('{"features": [{"name": "age", "type": "numeric"}]}', to_jsonb(t)) FROM (SELECT 'NaN'::float8 AS age) t;
SELECT ecrm.encode_features('{"features": [{"name": "age", "type": "numeric"}]}', '{"age": 1e400}');
SELECT ecrm.encode_features('{"features": [{"name": "age", "type": "numeric"}]}', '[1]');
SELECT ecrm.encode_features('{"features": [{"name": "job", "type": "categorical", "levels": ["a"]}]}', '{"job": {"x": 1}}');
SELECT ecrm.encode_features('[]', '{}');
SELECT ecrm.encode_features('{"features": []}', '{}');
SELECT ecrm.encode_features('{"features": [{"name": "a", "type": "date"}]}', '{}');
SELECT ecrm.encode_features('{"features": [{"name": "a", "type": "numeric"}, {"name": "a", "type": "numeric"}]}', '{}');
SELECT ecrm.encode_features('{"features": [{"name": "a", "type": "categorical", "levels": []}]}', '{}');
SELECT ecrm.encode_features('{"features": [{"name": "a", "type": "categorical", "levels": [1]}]}', '{}');
SELECT ecrm.encode_features('{"features": [{"name": "", "type": "numeric"}]}', '{}');
SELECT ecrm.encode_features(jsonb_build_object('features', (SELECT jsonb_agg(jsonb_build_object('name', 'f' || i, 'type', 'numeric', 'impute', 0))
                                                              FROM generate_series(1, 1001) i)), '{}');

-- feature_spec from a table
CREATE TEMP TABLE people (id int, age int, income numeric, job text, vip boolean, joined date, y boolean);
INSERT INTO people VALUES (1, 30, 1000, 'a', true, '2020-01-01', true), (2, NULL, 3000, 'b', false, NULL, false),
                          (3, 50, NULL, 'a', NULL, NULL, false), (4, 40, 2000, NULL, true, NULL, true);
SELECT ecrm.feature_spec('people', '{id,y,joined}');
SELECT ecrm.feature_spec('people', '{id,y,joined}', 1);
SELECT ecrm.feature_spec('people', '{id,y}');
SELECT ecrm.feature_spec('people', '{id,y,joined,nope}');
SELECT ecrm.feature_spec('people', '{id,y,joined,age,income,job,vip}');
SELECT ecrm.feature_spec('people', '{}', 0);
SELECT ecrm.encode_features(ecrm.feature_spec('people', '{id,y,joined}'), to_jsonb(p)) FROM people p ORDER BY id;

-- evaluation: AUC (ties count half), log loss, lift and calibration
SELECT ecrm.roc_auc(s, y) FROM (VALUES (0.9, true), (0.8, false), (0.7, true), (0.1, false)) x(s, y);
SELECT ecrm.roc_auc(s, y) FROM (VALUES (0.5, true), (0.5, false)) x(s, y);
SELECT ecrm.roc_auc(s, y) FROM (VALUES (0.1, true), (0.9, false)) x(s, y);
SELECT ecrm.roc_auc(s, y) FROM (VALUES (0.1, true), (NULL, false), (0.3, NULL), (0.0, false)) x(s, y);
SELECT ecrm.roc_auc(s, y) FROM (VALUES (0.1, true), (0.9, true)) x(s, y);
SELECT ecrm.roc_auc(s, y) FROM (VALUES ('NaN'::float8, true), (0.9, false)) x(s, y);
SELECT ecrm.roc_auc(s, y) FROM (VALUES (1.0, true)) x(s, y) WHERE false;
SELECT round(ecrm.log_loss(p, y)::numeric, 6) FROM (VALUES (0.9, true), (0.2, false)) x(p, y);
SELECT round(ecrm.log_loss(p, y)::numeric, 4) AS clipped FROM (VALUES (0.0, true)) x(p, y);
SELECT ecrm.log_loss(p, y) FROM (VALUES (1.5, true)) x(p, y);
SELECT ecrm.log_loss(p, y) FROM (VALUES ('NaN'::float8, true)) x(p, y);
SELECT ecrm.log_loss(p, y) FROM (VALUES (0.5, true)) x(p, y) WHERE false;
SELECT * FROM unnest((SELECT ecrm.lift_by_decile(i::float8, i % 4 = 0 OR i > 90) FROM generate_series(1, 100) i));
SELECT * FROM unnest((SELECT ecrm.lift_by_decile(i::float8, false) FROM generate_series(1, 5) i));
SELECT * FROM unnest((SELECT ecrm.calibration_by_decile(i / 101.0, i % 3 = 0) FROM generate_series(1, 100) i));
SELECT ecrm.calibration_by_decile(p, true) FROM (VALUES (1.2)) x(p);
SELECT ecrm.lift_by_decile(s, true) FROM (VALUES (1.2)) x(s) WHERE false;
-- the evaluation aggregates run in parallel too
SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0; SET max_parallel_workers_per_gather = 2;
EXPLAIN (COSTS OFF) SELECT ecrm.roc_auc(f[1], y), ecrm.log_loss(f[2], y) FROM scoring_lr;
SELECT round(ecrm.roc_auc(f[1], y)::numeric, 6), round(ecrm.log_loss(f[2], y)::numeric, 6) FROM scoring_lr;
RESET parallel_setup_cost; RESET parallel_tuple_cost; RESET min_parallel_table_scan_size; RESET max_parallel_workers_per_gather;
SELECT round(ecrm.roc_auc(f[1], y)::numeric, 6), round(ecrm.log_loss(f[2], y)::numeric, 6) FROM scoring_lr;
DROP TABLE scoring_ev, scoring_lr;
