--
-- NaN and infinities at every numeric entry point, generated from the catalog.
--
-- Every function of schema ecrm with a real, double precision or numeric parameter (or an array of them)
-- is called with NaN, Infinity and -Infinity in each such position, the other arguments plausible
-- (the table below).  Each call must fail with 22023, unless the allow-list says why the value means
-- something there.  A function added later without plausible arguments fails the test, so new entry
-- points cannot skip the check.  Functions with an internal argument (aggregate transition functions) are
-- reached through their aggregates.  Cut points and thresholds out of order are tested at the end.
--
SET client_min_messages = warning;
SET ecrm.pseudonym_key = 'regression-test-key-0001';
SET ecrm.realtime_resolution = 'off';
CREATE TEMP TABLE nf_ids AS
SELECT ecrm.upsert_customer('{"email": "nan.one@example.org", "first_name": "Ann"}') AS c1,
       ecrm.upsert_customer('{"email": "nan.two@example.org", "first_name": "Bob"}') AS c2,
       ecrm.create_campaign('nonfinite campaign', 'email') AS camp;
SELECT ecrm.create_scoring_model('nonfinite_scoring') IS NOT NULL AS scoring_model;
CREATE TABLE nf_points (customer_id bigint, x double precision, converted boolean);
INSERT INTO nf_points SELECT c1, 1, true FROM nf_ids UNION ALL SELECT c2, 2, false FROM nf_ids;
CREATE TEMP TABLE nf_gbdt AS
SELECT ecrm.gbdt_train(f, l, '{"min_samples_leaf": 1, "max_iter": 3}') AS m
  FROM (VALUES ('{1,2}'::float8[], true), ('{2,1}', false), ('{1,1}', true), ('{2,2}', false)) v(f, l);

-- One call per function: a SQL template whose $k is the k-th argument, and the k-th argument's
-- plausible value.  The default template is "SELECT f($1, ..., $n)"; aggregates give their own.
CREATE TEMP TABLE plausible (fn regprocedure PRIMARY KEY, args text[] NOT NULL, template text);
INSERT INTO plausible VALUES
 ('ecrm._als_candidates(bigint,integer,bigint[],bigint[],bigint[],bigint[],bigint[],double precision[],boolean[],bigint[],double precision[],text[])',
  '{0,5,"''{1}''::bigint[]",NULL,NULL,"''{1}''::bigint[]","''{1}''::bigint[]","''{1.0}''::float8[]","''{f}''::boolean[]","''{1}''::bigint[]","''{1.0}''::float8[]",NULL}', NULL),
 ('ecrm._item_candidates(bigint,integer,bigint[],bigint[],bigint[],bigint[],bigint[],double precision[],boolean[],bigint[],double precision[],text[])',
  '{0,5,"''{1}''::bigint[]",NULL,NULL,"''{1}''::bigint[]","''{1}''::bigint[]","''{1.0}''::float8[]","''{f}''::boolean[]","''{1}''::bigint[]","''{1.0}''::float8[]",NULL}', NULL),
 ('ecrm._check_thresholds(double precision,double precision)', '{0.8,0.99}', NULL),
 ('ecrm._finite(double precision,text)', '{1,"''x''"}', NULL),
 ('ecrm._finite(numeric,text)', '{1,"''x''"}', NULL),
 ('ecrm._decayed_sum_trans(double precision,double precision,timestamp with time zone,timestamp with time zone,interval)',
  '{0,1,"''2026-01-01''::timestamptz","''2026-02-01''::timestamptz","''30 days''::interval"}', NULL),
 ('ecrm._demo_typo(text,double precision)', '{"''anna''",0.5}', NULL),
 ('ecrm._implied_stage(ecrm.scoring_model,double precision)',
  '{"(SELECT m FROM ecrm.scoring_model m WHERE m.name = ''nonfinite_scoring'')",10}', NULL),
 ('ecrm._log_loss_combine(double precision[],double precision[])', '{"''{1,0.5}''::float8[]","''{1,0.5}''::float8[]"}', NULL),
 ('ecrm._log_loss_final(double precision[])', '{"''{2,1.2}''::float8[]"}', NULL),
 ('ecrm._log_loss_trans(double precision[],double precision,boolean)', '{"''{1,0.5}''::float8[]",0.3,true}', NULL),
 ('ecrm._merge_one(bigint[],bigint,jsonb,text,text,double precision)',
  '{"(SELECT ARRAY[c1, c2] FROM nf_ids)","(SELECT c1 FROM nf_ids)","''{}''::jsonb","''test''","''manual''",0.99}', NULL),
 ('ecrm._rec_decay(double precision,timestamp with time zone,timestamp with time zone,interval)',
  '{1,"''2026-01-01''::timestamptz","''2026-02-01''::timestamptz","''30 days''::interval"}', NULL),
 ('ecrm._rule_number(jsonb,text,text,numeric,numeric,boolean,boolean)',
  '{"''{\"x\": 3}''::jsonb","''x''","''rule''",0,10,false,false}', NULL),
 ('ecrm.als_train(text,integer,integer,double precision,double precision,bigint,text,integer)',
  '{"''SELECT 1::bigint, 1::bigint, 1.0::float8''",2,1,0.1,10,42,"''cg''",3}', NULL),
 ('ecrm.bgnbd_expected_purchases(double precision,double precision,double precision,double precision,double precision,double precision,double precision,double precision)',
  '{1,2,1,2,3,10,20,30}', NULL),
 ('ecrm.bgnbd_fit(double precision,double precision,double precision)', '{2,10,20}',
  'SELECT ecrm.bgnbd_fit(f, r, t) FROM (VALUES ($1::float8, $2::float8, $3::float8), (0, 0, 20), (1, 5, 20), (3, 15, 20)) v(f, r, t)'),
 ('ecrm.bgnbd_log_likelihood(double precision,double precision,double precision,double precision,double precision,double precision,double precision)',
  '{1,2,1,2,3,10,20}', NULL),
 ('ecrm.bgnbd_p_alive(double precision,double precision,double precision,double precision,double precision,double precision,double precision)',
  '{1,2,1,2,3,10,20}', NULL),
 ('ecrm.calibration_by_decile(double precision,boolean)', '{0.3,true}',
  'SELECT ecrm.calibration_by_decile(p, l) FROM (VALUES ($1::float8, $2), (0.7, false)) v(p, l)'),
 ('ecrm.clv_predict(double precision,double precision,double precision,double precision,double precision,double precision,double precision,double precision,integer,double precision,double precision)',
  '{1,2,1,2,3,10,20,50,12,0.01,30}', NULL),
 ('ecrm.comparison_level(date,date,text,double precision[])',
  '{"''2000-01-01''::date","''2000-01-02''::date","''date''","''{1,5}''::float8[]"}', NULL),
 ('ecrm.comparison_level(double precision,double precision,text,double precision[])',
  '{1,2,"''numeric''","''{1,5}''::float8[]"}', NULL),
 ('ecrm.comparison_level(text,text,text,double precision[])',
  '{"''anna''","''anne''","''jaro_winkler''","''{0.9,0.8}''::float8[]"}', NULL),
 ('ecrm.comparison_level_count(text,double precision[])', '{"''jaro_winkler''","''{0.9,0.8}''::float8[]"}', NULL),
 ('ecrm.create_campaign(text,text,text,timestamp with time zone,timestamp with time zone,text,numeric,jsonb)',
  '{"''nf campaign 2''","''email''","''marketing_email''",NULL,NULL,"''draft''",100,"''{}''::jsonb"}', NULL),
 ('ecrm.create_match_model(text,jsonb,jsonb,double precision,double precision,double precision,integer,text)',
  '{"''nf_model''","(SELECT m.comparisons FROM ecrm.match_model m WHERE m.name = ''customer'')","(SELECT m.blocking FROM ecrm.match_model m WHERE m.name = ''customer'')",0.0001,0.8,0.99,1000,NULL}', NULL),
 ('ecrm.create_scoring_model(text,interval,double precision,double precision,double precision,text)',
  '{"''nf_scoring_2''",NULL,100,20,50,NULL}', NULL),
 ('ecrm.decayed_sum(double precision,timestamp with time zone,timestamp with time zone,interval)',
  '{1,"''2026-01-01''::timestamptz","''2026-02-01''::timestamptz","''30 days''::interval"}',
  'SELECT ecrm.decayed_sum(v, $2, $3, $4) FROM (VALUES ($1::float8), (2)) x(v)'),
 ('ecrm.discover_pii(regclass,integer,double precision)', '{"''ecrm.customer_profile''::regclass",100,0.5}', NULL),
 ('ecrm.discover_pii_schema(name,integer,double precision)', '{"''ecrm''",100,0.5}', NULL),
 ('ecrm.fit_clv(timestamp with time zone,text,double precision)', '{"''2026-06-01''::timestamptz","''day''",0.01}', NULL),
 ('ecrm.fs_em(smallint[],double precision[],double precision[],double precision[],double precision,boolean,integer,double precision)',
  '{"''{{1,1},{0,0}}''::smallint[]","''{5,20}''::float8[]","''{{0.1,0.9},{0.2,0.8}}''::float8[]","''{{0.9,0.1},{0.8,0.2}}''::float8[]",0.1,true,10,0.000001}', NULL),
 ('ecrm.gamma_gamma_expected_value(double precision,double precision,double precision,double precision,double precision)',
  '{6,4,15,3,40}', NULL),
 ('ecrm.gamma_gamma_fit(double precision,double precision)', '{3,40}',
  'SELECT ecrm.gamma_gamma_fit(f, m) FROM (VALUES ($1::float8, $2::float8), (2, 20), (5, 35), (1, 60)) v(f, m)'),
 ('ecrm.hyp2f1(double precision,double precision,double precision,double precision)', '{1,1,2,0.5}', NULL),
 ('ecrm.item_knn(text,integer,double precision,double precision,double precision,integer)',
  '{"''SELECT 1::bigint, 1::bigint, 1.0::float8''",5,0,0.5,0,1}', NULL),
 ('ecrm.jaro_winkler(text,text,double precision)', '{"''anna''","''anne''",0.1}', NULL),
 ('ecrm.kmeans(double precision[],integer)', '{"''{1,2}''::float8[]",1}',
  'SELECT ecrm.kmeans(f, $2) FROM (VALUES ($1::float8[]), (''{2,1}'')) v(f)'),
 ('ecrm.kmeans(double precision[],integer,integer,integer)', '{"''{1,2}''::float8[]",1,10,1}',
  'SELECT ecrm.kmeans(f, $2, $3, $4) FROM (VALUES ($1::float8[]), (''{2,1}'')) v(f)'),
 ('ecrm.kmeans_assign(double precision[],double precision[])', '{"''{1,2}''::float8[]","''{{1,2},{3,4}}''::float8[]"}', NULL),
 ('ecrm.level_weights(double precision[],double precision[])',
  '{"''{{0.1,0.9},{0.2,0.8}}''::float8[]","''{{0.9,0.1},{0.8,0.2}}''::float8[]"}', NULL),
 ('ecrm.lift_by_decile(double precision,boolean)', '{0.3,true}',
  'SELECT ecrm.lift_by_decile(p, l) FROM (VALUES ($1::float8, $2), (0.7, false)) v(p, l)'),
 ('ecrm.log_loss(double precision,boolean)', '{0.3,true}',
  'SELECT ecrm.log_loss(p, l) FROM (VALUES ($1::float8, $2), (0.7, false)) v(p, l)'),
 ('ecrm.logreg_contributions(jsonb,double precision[])',
  '{"''{\"l2\": 1, \"coef\": [-2.0, 0.5], \"mean\": [1.5, 1.5], \"rows\": 4, \"type\": \"logistic_regression\", \"scale\": [0.5, 0.5], \"format\": 1, \"skipped\": 0, \"features\": 2, \"std_coef\": [-1.0, 0.25], \"converged\": true, \"intercept\": 3.1, \"objective\": 1.75, \"positives\": 2, \"iterations\": 5, \"baseline_logit\": 0}''::jsonb","''{1,2}''::float8[]"}', NULL),
 ('ecrm.logreg_predict(jsonb,double precision[])',
  '{"''{\"l2\": 1, \"coef\": [-2.0, 0.5], \"mean\": [1.5, 1.5], \"rows\": 4, \"type\": \"logistic_regression\", \"scale\": [0.5, 0.5], \"format\": 1, \"skipped\": 0, \"features\": 2, \"std_coef\": [-1.0, 0.25], \"converged\": true, \"intercept\": 3.1, \"objective\": 1.75, \"positives\": 2, \"iterations\": 5, \"baseline_logit\": 0}''::jsonb","''{1,2}''::float8[]"}', NULL),
 ('ecrm.logreg_train(double precision[],boolean)', '{"''{1,2}''::float8[]",true}',
  'SELECT ecrm.logreg_train(f, l) FROM (VALUES ($1::float8[], $2), (''{2,1}'', false), (''{1,1}'', true), (''{2,2}'', false)) v(f, l)'),
 ('ecrm.logreg_train(double precision[],boolean,double precision)', '{"''{1,2}''::float8[]",true,1}',
  'SELECT ecrm.logreg_train(f, l, $3) FROM (VALUES ($1::float8[], $2), (''{2,1}'', false), (''{1,1}'', true), (''{2,2}'', false)) v(f, l)'),
 ('ecrm.mask_noise(double precision,double precision)', '{100,0.1}', NULL),
 ('ecrm.mask_noise(double precision,double precision,text,text)', '{100,0.1,"''seed''",NULL}', NULL),
 ('ecrm.mask_noise(numeric,double precision,text,text)', '{100,0.1,"''seed''",NULL}', NULL),
 ('ecrm.mask_range(numeric,numeric)', '{42,10}', NULL),
 ('ecrm.match_clusters(text,regclass,name,double precision)', '{"''customer''",NULL,NULL,0.5}', NULL),
 ('ecrm.match_probability(double precision)', '{3}', NULL),
 ('ecrm.match_weight(smallint[],double precision[],double precision)',
  '{"''{0,1}''::smallint[]","''{{-3,4},{-2,2}}''::float8[]",0.001}', NULL),
 ('ecrm.numeric_closeness(double precision,double precision,double precision)', '{1,2,10}', NULL),
 ('ecrm.predict_matches(text,regclass,name,double precision)', '{"''customer''",NULL,NULL,0.5}', NULL),
 ('ecrm.record_campaign_event(bigint,bigint,text,timestamp with time zone,numeric,bigint,jsonb)',
  '{"(SELECT camp FROM nf_ids)","(SELECT c1 FROM nf_ids)","''sent''","''2026-01-01''::timestamptz",0,NULL,"''{}''::jsonb"}', NULL),
 ('ecrm.record_campaign_events(bigint,text,bigint[],timestamp with time zone,numeric,bigint,jsonb)',
  '{"(SELECT camp FROM nf_ids)","''sent''","(SELECT ARRAY[c1] FROM nf_ids)","''2026-01-01''::timestamptz",0,NULL,"''{}''::jsonb"}', NULL),
 ('ecrm.rfm_score(double precision,double precision[],boolean)', '{3,"''{1,2,3,4}''::float8[]",false}', NULL),
 ('ecrm.roc_auc(double precision,boolean)', '{0.3,true}',
  'SELECT ecrm.roc_auc(p, l) FROM (VALUES ($1::float8, $2), (0.7, false)) v(p, l)'),
 ('ecrm.save_routing_rule(text,text,text,text[],text[],text[],numeric,text,text,integer,boolean)',
  '{"''nf rule''","''support''",NULL,NULL,NULL,NULL,100,NULL,NULL,100,true}', NULL),
 ('ecrm.set_match_thresholds(text,double precision,double precision)', '{"''customer''",0.8,0.99}', NULL),
 ('ecrm.set_signal_weight(text,double precision,text)', '{"''email_open''",2,NULL}', NULL),
 ('ecrm.train_als_model(text,timestamp with time zone,integer,integer,double precision,double precision,interval,interval,text,integer,bigint)',
  '{"''nf_als''",NULL,2,1,10,2,"''90 days''::interval","''30 days''::interval","''cg''",3,42}', NULL),
 ('ecrm.train_item_model(text,timestamp with time zone,integer,double precision,double precision,double precision,double precision,double precision,interval,interval,integer)',
  '{"''nf_item''",NULL,30,0,0.4,0.5,2,0.5,"''90 days''::interval","''30 days''::interval",1}', NULL),
 ('ecrm.train_lead_model(text,regclass,text,double precision,double precision,text[],regclass,double precision,double precision,text,text,jsonb)',
  '{"''nf_lead''","''nf_points''::regclass","''converted''",1.0,0.2,"''{}''::text[]",NULL,NULL,NULL,NULL,"''logistic''",NULL}', NULL),
 ('ecrm.gbdt_train(double precision[],boolean)', '{"''{1,2}''::float8[]",true}',
  'SELECT ecrm.gbdt_train(f, l) FROM (VALUES ($1::float8[], $2), (''{2,1}'', false), (''{1,1}'', true), (''{2,2}'', false)) v(f, l)'),
 ('ecrm.gbdt_train(double precision[],boolean,jsonb)', '{"''{1,2}''::float8[]",true,"''{\"min_samples_leaf\": 1}''::jsonb"}',
  'SELECT ecrm.gbdt_train(f, l, $3) FROM (VALUES ($1::float8[], $2), (''{2,1}'', false), (''{1,1}'', true), (''{2,2}'', false)) v(f, l)'),
 ('ecrm.gbdt_train(double precision[],double precision)', '{"''{1,2}''::float8[]",1}',
  'SELECT ecrm.gbdt_train(f, l) FROM (VALUES ($1::float8[], $2::float8), (''{2,1}'', 0), (''{1,1}'', 1), (''{2,2}'', 0)) v(f, l)'),
 ('ecrm.gbdt_train(double precision[],double precision,jsonb)', '{"''{1,2}''::float8[]",1,"''{\"min_samples_leaf\": 1}''::jsonb"}',
  'SELECT ecrm.gbdt_train(f, l, $3) FROM (VALUES ($1::float8[], $2::float8), (''{2,1}'', 0), (''{1,1}'', 1), (''{2,2}'', 0)) v(f, l)'),
 ('ecrm.gbdt_predict(jsonb,double precision[])', '{"(SELECT m FROM nf_gbdt)","''{1,2}''::float8[]"}', NULL),
 ('ecrm.gbdt_log_odds(jsonb,double precision[])', '{"(SELECT m FROM nf_gbdt)","''{1,2}''::float8[]"}', NULL),
 ('ecrm.gbdt_explain(jsonb,double precision[])', '{"(SELECT m FROM nf_gbdt)","''{1,2}''::float8[]"}', NULL),
 ('ecrm._gbdt_conditional_expectation(jsonb,double precision[],boolean[])',
  '{"(SELECT m FROM nf_gbdt)","''{1,2}''::float8[]","''{t,t}''::boolean[]"}', NULL),
 ('ecrm.upsert_product(text,text,text,numeric,boolean,jsonb)', '{"''nf-sku''","''Thing''",NULL,9.99,true,"''{}''::jsonb"}', NULL);

-- Where a non-finite value means something; every other position must refuse it with 22023.
CREATE TEMP TABLE nonfinite_allowed (fn regprocedure, pos int, value text, why text, PRIMARY KEY (fn, pos, value));
INSERT INTO nonfinite_allowed VALUES
 -- the weight of a certain non-match or match: probabilities 0 and 1
 ('ecrm.match_probability(double precision)', 1, '-Infinity', 'a certain non-match: probability 0'),
 ('ecrm.match_probability(double precision)', 1, 'Infinity', 'a certain match: probability 1'),
 -- masking reads the values of user tables: a non-finite value hides nothing and is shown as it is,
 -- so that one such row cannot make a whole masked view fail
 ('ecrm.mask_noise(double precision,double precision)', 1, 'NaN', 'data value passed through'),
 ('ecrm.mask_noise(double precision,double precision)', 1, 'Infinity', 'data value passed through'),
 ('ecrm.mask_noise(double precision,double precision)', 1, '-Infinity', 'data value passed through'),
 ('ecrm.mask_noise(double precision,double precision,text,text)', 1, 'NaN', 'data value passed through'),
 ('ecrm.mask_noise(double precision,double precision,text,text)', 1, 'Infinity', 'data value passed through'),
 ('ecrm.mask_noise(double precision,double precision,text,text)', 1, '-Infinity', 'data value passed through'),
 ('ecrm.mask_noise(numeric,double precision,text,text)', 1, 'NaN', 'data value passed through'),
 ('ecrm.mask_noise(numeric,double precision,text,text)', 1, 'Infinity', 'data value passed through'),
 ('ecrm.mask_noise(numeric,double precision,text,text)', 1, '-Infinity', 'data value passed through'),
 ('ecrm.mask_range(numeric,numeric)', 1, 'NaN', 'no range: NULL'),
 ('ecrm.mask_range(numeric,numeric)', 1, 'Infinity', 'no range: NULL'),
 ('ecrm.mask_range(numeric,numeric)', 1, '-Infinity', 'no range: NULL'),
 -- two values compared by matching: NaN is a missing value (level -1, closeness NULL) as NULL is, and
 -- infinities are numbers equal only to themselves
 ('ecrm.comparison_level(double precision,double precision,text,double precision[])', 1, 'NaN', 'missing'),
 ('ecrm.comparison_level(double precision,double precision,text,double precision[])', 1, 'Infinity', 'a number'),
 ('ecrm.comparison_level(double precision,double precision,text,double precision[])', 1, '-Infinity', 'a number'),
 ('ecrm.comparison_level(double precision,double precision,text,double precision[])', 2, 'NaN', 'missing'),
 ('ecrm.comparison_level(double precision,double precision,text,double precision[])', 2, 'Infinity', 'a number'),
 ('ecrm.comparison_level(double precision,double precision,text,double precision[])', 2, '-Infinity', 'a number'),
 ('ecrm.numeric_closeness(double precision,double precision,double precision)', 1, 'NaN', 'missing'),
 ('ecrm.numeric_closeness(double precision,double precision,double precision)', 1, 'Infinity', 'a number'),
 ('ecrm.numeric_closeness(double precision,double precision,double precision)', 1, '-Infinity', 'a number'),
 ('ecrm.numeric_closeness(double precision,double precision,double precision)', 2, 'NaN', 'missing'),
 ('ecrm.numeric_closeness(double precision,double precision,double precision)', 2, 'Infinity', 'a number'),
 ('ecrm.numeric_closeness(double precision,double precision,double precision)', 2, '-Infinity', 'a number'),
 -- trees: a NaN feature is a missing value (training learns where it goes), and scoring compares an
 -- infinite feature with the thresholds like any number; training refuses infinite features (binning)
 ('ecrm._gbdt_conditional_expectation(jsonb,double precision[],boolean[])', 2, 'NaN', 'a missing feature: the learnt default direction'),
 ('ecrm._gbdt_conditional_expectation(jsonb,double precision[],boolean[])', 2, 'Infinity', 'a feature above every threshold'),
 ('ecrm._gbdt_conditional_expectation(jsonb,double precision[],boolean[])', 2, '-Infinity', 'a feature below every threshold'),
 ('ecrm.gbdt_explain(jsonb,double precision[])', 2, 'NaN', 'a missing feature: the learnt default direction'),
 ('ecrm.gbdt_explain(jsonb,double precision[])', 2, 'Infinity', 'a feature above every threshold'),
 ('ecrm.gbdt_explain(jsonb,double precision[])', 2, '-Infinity', 'a feature below every threshold'),
 ('ecrm.gbdt_log_odds(jsonb,double precision[])', 2, 'NaN', 'a missing feature: the learnt default direction'),
 ('ecrm.gbdt_log_odds(jsonb,double precision[])', 2, 'Infinity', 'a feature above every threshold'),
 ('ecrm.gbdt_log_odds(jsonb,double precision[])', 2, '-Infinity', 'a feature below every threshold'),
 ('ecrm.gbdt_predict(jsonb,double precision[])', 2, 'NaN', 'a missing feature: the learnt default direction'),
 ('ecrm.gbdt_predict(jsonb,double precision[])', 2, 'Infinity', 'a feature above every threshold'),
 ('ecrm.gbdt_predict(jsonb,double precision[])', 2, '-Infinity', 'a feature below every threshold'),
 ('ecrm.gbdt_train(double precision[],boolean)', 1, 'NaN', 'a missing feature: each split learns where missing values go'),
 ('ecrm.gbdt_train(double precision[],boolean,jsonb)', 1, 'NaN', 'a missing feature: each split learns where missing values go'),
 ('ecrm.gbdt_train(double precision[],double precision)', 1, 'NaN', 'a missing feature: each split learns where missing values go'),
 ('ecrm.gbdt_train(double precision[],double precision,jsonb)', 1, 'NaN', 'a missing feature: each split learns where missing values go'),
 -- the bounds of a number read from a rule: infinite bounds are open ones
 ('ecrm._rule_number(jsonb,text,text,numeric,numeric,boolean,boolean)', 4, '-Infinity', 'no lower bound'),
 ('ecrm._rule_number(jsonb,text,text,numeric,numeric,boolean,boolean)', 5, 'Infinity', 'no upper bound');

CREATE FUNCTION pg_temp.nf_call(tmpl text, args text[]) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    q text := tmpl;
    st text;
BEGIN
    FOR k IN REVERSE coalesce(array_length(args, 1), 0) .. 1 LOOP
        q := replace(q, '$' || k, coalesce('(' || args[k] || ')', 'NULL'));
    END LOOP;
    BEGIN
        EXECUTE q;
        RAISE EXCEPTION USING ERRCODE = 'P0099';   -- roll back what the call wrote
    EXCEPTION WHEN OTHERS THEN
        st := SQLSTATE;
    END;
    RETURN CASE st WHEN 'P0099' THEN 'ok' ELSE st END;
END
$$;

CREATE TEMP TABLE nf_result AS
WITH f AS (
    SELECT p.oid::regprocedure AS fn, ARRAY(SELECT unnest(p.proargtypes::oid[])) AS types, p.pronargs AS n, p.prokind
      FROM pg_proc p
     WHERE p.pronamespace = 'ecrm'::regnamespace
       AND NOT 'internal'::regtype = ANY (p.proargtypes::oid[])
       AND p.proargtypes::oid[] && ARRAY['real', 'double precision', 'numeric', 'real[]',
                                         'double precision[]', 'numeric[]']::regtype[]::oid[]
), calls AS (
    SELECT f.fn, f.n, f.types, pl.args,
           coalesce(pl.template, 'SELECT ' || f.fn::oid::regproc::text || '('
                    || (SELECT string_agg('$' || k, ', ' ORDER BY k) FROM generate_series(1, f.n) k) || ')') AS tmpl
      FROM f LEFT JOIN plausible pl ON pl.fn = f.fn
)
SELECT c.fn, NULL::int AS pos, NULL::text AS value,
       CASE WHEN c.args IS NULL THEN 'no plausible arguments' ELSE pg_temp.nf_call(c.tmpl, c.args) END AS outcome
  FROM calls c
UNION ALL
SELECT c.fn, k, v.value,
       pg_temp.nf_call(c.tmpl, c.args[:k - 1]
                       || CASE WHEN c.types[k] IN ('real'::regtype, 'double precision'::regtype, 'numeric'::regtype)
                               THEN format('%L::%s', v.value, c.types[k]::regtype)
                               -- an array: its first element becomes the value
                               ELSE regexp_replace(c.args[k], '-?[0-9][0-9.e]*', v.value) END
                       || c.args[k + 1:])
  FROM calls c
  CROSS JOIN LATERAL generate_series(1, c.n) k
  CROSS JOIN (VALUES ('NaN'), ('Infinity'), ('-Infinity')) v(value)
 WHERE c.args IS NOT NULL
   AND c.types[k] IN ('real'::regtype, 'double precision'::regtype, 'numeric'::regtype, 'real[]'::regtype,
                      'double precision[]'::regtype, 'numeric[]'::regtype);

-- Every function has plausible arguments, and they pass its argument checks (so a refusal below is about
-- the value).  A few plausible calls fail later, for want of data (orders, a trained model) that earlier
-- tests may or may not have left; the checks come first, so their refusals below count all the same.
SELECT fn, outcome FROM nf_result WHERE pos IS NULL AND outcome IN ('22023', 'no plausible arguments') ORDER BY fn::text;
-- Every non-finite value is refused with 22023, except where allowed.
SELECT r.fn, r.pos, r.value, r.outcome
  FROM nf_result r LEFT JOIN nonfinite_allowed a USING (fn, pos, value)
 WHERE r.pos IS NOT NULL AND r.outcome <> '22023' AND a.fn IS NULL
 ORDER BY r.fn::text, r.pos, r.value;
-- The allowed ones are accepted, and none is stale.
SELECT a.fn, a.pos, a.value, r.outcome
  FROM nonfinite_allowed a LEFT JOIN nf_result r USING (fn, pos, value)
 WHERE r.outcome IS DISTINCT FROM 'ok'
 ORDER BY a.fn::text, a.pos, a.value;
SELECT count(DISTINCT fn) >= 60 AS functions_checked, count(*) FILTER (WHERE pos IS NOT NULL) >= 300 AS calls_checked
  FROM nf_result;

-- The messages, and cut points and thresholds out of order (ties are fine).
\set VERBOSITY default
\set SHOW_CONTEXT never
SELECT ecrm.rfm_score('NaN', '{1,2,3,4}');
SELECT ecrm.rfm_score('-Infinity', '{1,2,3,4}', true);
SELECT ecrm.rfm_score(3, '{1,3,2,4}');
SELECT ecrm.rfm_score(3, '{1,2,Infinity,4}');
SELECT ecrm.rfm_score(3, '{1,2,NULL,4}');
SELECT ecrm.rfm_score(3, '{{1,2},{3,4}}');
SELECT ecrm.rfm_score(5, '{1,2,3,4}') AS five, ecrm.rfm_score(2, '{1,2,2,4}') AS tie, ecrm.rfm_score(NULL, '{1,2,3,4}') AS null_scores_1,
       ecrm.rfm_score(3, NULL) AS no_cut_points;
SELECT ecrm.comparison_level('anna', 'anne', 'jaro_winkler', '{0.8,0.9}');
SELECT ecrm.comparison_level(1::float8, 2, 'numeric', '{5,1}');
SELECT ecrm.upsert_product('nf-sku', 'Thing', NULL, 'NaN');
SELECT ecrm.create_campaign('nf_budget', 'email', budget => 'Infinity');
SELECT ecrm.decayed_sum(v, '2026-01-01', '2026-02-01', '30 days') FROM (VALUES (1.0::float8), ('-Infinity')) x(v);
SELECT ecrm.kmeans_assign('{1,2}', '{{1,2},{NaN,4}}');
-- allowed: certain matches and non-matches, missing and infinite values compared, data passed through masking
SELECT ecrm.match_probability('Infinity') AS certain, ecrm.match_probability('-Infinity') AS impossible;
SELECT ecrm.comparison_level('NaN'::float8, 1, 'numeric', '{1,5}') AS nan_is_missing,
       ecrm.comparison_level('Infinity'::float8, 'Infinity', 'numeric', '{1,5}') AS inf_equals_inf,
       ecrm.numeric_closeness('NaN', 1, 10) AS nan_closeness;
SELECT ecrm.mask_noise('NaN'::float8, 0.1, 'seed') AS nan, ecrm.mask_noise('Infinity'::numeric, 0.1, 'seed') AS inf,
       ecrm.mask_range('-Infinity'::numeric, 10) AS range;
