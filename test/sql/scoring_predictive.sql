-- Predictive lead scoring: CRM features, training a versioned model, evaluation, explanations, real time.
SET client_min_messages = warning;
DROP EXTENSION ecrm CASCADE;
CREATE EXTENSION ecrm;
RESET client_min_messages;
\set SHOW_CONTEXT never
\pset null '(null)'
SET extra_float_digits = 0;
SELECT count(*) > 0 AS generated FROM ecrm.generate_demo_data(600, 7, '2025-01-01');

-- features as of a past time use only data up to then
SELECT count(*) AS customers, sum(orders) AS orders, sum(interactions_90d) AS interactions_90d,
       round(avg(tenure_days)::numeric, 2) AS avg_tenure, count(days_since_last_touch) AS touched
  FROM ecrm.crm_features('2024-10-01');
SELECT count(*) AS leads, count(*) FILTER (WHERE converted) AS converted, bool_and(orders = 0) AS no_order_yet
  FROM ecrm.lead_features_at('2024-10-01', '90 days');
-- the view is the same features as of now, with whether the customer converted
SELECT count(*) = (SELECT count(*) FROM ecrm.customers) AS every_customer, count(*) FILTER (WHERE converted) > 0 AS some_converted
  FROM ecrm.lead_features;
-- one customer: the filter reaches the grouped subqueries (index scans, no full aggregation)
CREATE FUNCTION pg_temp.plan_lines(q text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE l text; BEGIN FOR l IN EXECUTE 'EXPLAIN (COSTS OFF) ' || q LOOP RETURN NEXT l; END LOOP; END $$;
SELECT count(*) FILTER (WHERE l ~ 'Index Cond: \(\(customer_id = 42\)') AS index_lookups, count(*) FILTER (WHERE l ~ 'Seq Scan') AS seq_scans
  FROM pg_temp.plan_lines($$SELECT * FROM ecrm.crm_features('2024-10-01') WHERE customer_id = 42$$) l;

-- train a versioned model on the leads of 2024-10-01 and whether they ordered in the next 90 days
CREATE TEMP TABLE train AS SELECT * FROM ecrm.lead_features_at('2024-10-01', '90 days');
SELECT ecrm.train_lead_model('conversion', 'train', mql_threshold => 0.2, sql_threshold => 0.5,
                             exclude => '{orders,revenue,days_since_last_order}') AS pm \gset
SELECT name, version, kind, status, feature_source,
       jsonb_array_length(feature_spec -> 'features') AS features, model -> 'converged' AS converged,
       metrics -> 'holdout' -> 'rows' AS holdout_rows, (metrics -> 'holdout' ->> 'auc')::float8 > 0.5 AS better_than_chance,
       jsonb_array_length(metrics -> 'holdout' -> 'lift_by_decile') AS deciles
  FROM ecrm.scoring_model WHERE model_id = :pm;
SELECT ecrm.feature_names(feature_spec) FROM ecrm.scoring_model WHERE model_id = :pm;
-- the same model again from the kernel, on the same 80%: identical coefficients
SELECT abs((m.model ->> 'intercept')::float8 - (k.m ->> 'intercept')::float8) < 1e-12 AS same_model
  FROM ecrm.scoring_model m,
       (SELECT ecrm.logreg_train(ecrm.encode_features(s.feature_spec, to_jsonb(t)), t.converted) AS m
          FROM train t, ecrm.scoring_model s
         WHERE s.model_id = :pm AND abs(hashint8(t.customer_id) % 1000) >= 200) k
 WHERE m.model_id = :pm;
-- evaluation aggregates over the model's predictions
SELECT round(ecrm.roc_auc(p, converted)::numeric, 4) = round((metrics -> 'holdout' ->> 'auc')::numeric, 4) AS auc_matches,
       ecrm.log_loss(p, converted) < 0.693 AS beats_coin
  FROM (SELECT ecrm.logreg_predict(s.model, ecrm.encode_features(s.feature_spec, to_jsonb(t))) AS p, t.converted, s.metrics
          FROM train t, ecrm.scoring_model s WHERE s.model_id = :pm AND abs(hashint8(t.customer_id) % 1000) < 200) e
 GROUP BY metrics;
SELECT decile, rows, positives FROM jsonb_to_recordset((SELECT metrics -> 'holdout' -> 'lift_by_decile' FROM ecrm.scoring_model WHERE model_id = :pm))
       AS x(decile int, rows int, positives int);

-- activation scores every active customer from ecrm.crm_features(now()); probabilities, never NaN
SELECT ecrm.activate_model(:pm) AS scored;
SELECT count(*) AS rows, bool_and(score BETWEEN 0 AND 1) AS probabilities, bool_and(score = score) AS no_nan
  FROM ecrm.lead_score WHERE model_id = :pm;
SELECT count(conversion_probability) = count(*) AS leads_view_shows_it FROM ecrm.leads;
-- an explanation: the baseline and each attribute's contribution add up to the logit of the probability
SELECT customer_id AS c FROM ecrm.leads ORDER BY conversion_probability DESC, customer_id LIMIT 1 \gset
SELECT count(*) > 1 AS has_factors, bool_or(kind = 'baseline') AS has_baseline,
       abs(sum(contribution) - (SELECT ln(score / (1 - score)) FROM ecrm.lead_score WHERE customer_id = :c AND model_id = :pm)) < 1e-6 AS adds_up
  FROM ecrm.explain_score(:c, 'conversion');
-- real time: an interaction rescores the predictive model too
SELECT computed_at AS before FROM ecrm.lead_score WHERE customer_id = :c AND model_id = :pm \gset
SELECT pg_sleep(0.01), ecrm.record_interaction(:c, 'web', 'page_view') > 0 AS recorded;
SELECT computed_at > :'before' AS rescored FROM ecrm.lead_score WHERE customer_id = :c AND model_id = :pm;
SELECT abs(l.score - s.score) < 1e-12 AS same_as_recomputed
  FROM ecrm.lead_score l, ecrm.score_customers(:pm, l.computed_at, ARRAY[:c]) s WHERE l.customer_id = :c AND l.model_id = :pm;
-- the rescoring statement's generic plan (kept per session) reaches one customer's events by index
\set ECHO none
SELECT format('PREPARE rescore_pm(timestamptz, bigint) AS %s', rescore_sql) FROM ecrm.scoring_model WHERE model_id = :pm \gexec
\set ECHO all
SET plan_cache_mode = force_generic_plan;
SELECT count(*) FILTER (WHERE l ~ 'Index.* on (interaction|campaign_event|orders) ') AS index_lookups,
       count(*) FILTER (WHERE l ~ 'Seq Scan on (interaction|campaign_event)') AS event_seq_scans
  FROM pg_temp.plan_lines('EXECUTE rescore_pm(now(), 42)') l;
RESET plan_cache_mode;
DEALLOCATE rescore_pm;
-- scores of a few customers by id (one lookup each) equal those of everyone
SELECT count(*) AS customers, bool_and(abs(a.score - b.score) < 1e-12) AS same
  FROM ecrm.score_customers(:pm, '2025-01-01', ARRAY(SELECT customer_id FROM ecrm.customers ORDER BY customer_id LIMIT 20)) a
  JOIN ecrm.score_customers(:pm, '2025-01-01') b USING (customer_id);

-- a second version is numbered on; a rules model cannot be retrained; bad input
SELECT ecrm.train_lead_model('conversion', 'train', l2 => 10, exclude => '{orders,revenue,days_since_last_order}') AS pm2 \gset
SELECT version, status, based_on = :pm AS based_on_v1, mql_threshold FROM ecrm.scoring_model WHERE model_id = :pm2;
SELECT ecrm.create_scoring_model('rules_one') IS NOT NULL AS created;
SELECT ecrm.train_lead_model('rules_one', 'train');
SELECT ecrm.train_lead_model('conversion', 'train', label => 'nosuch');
SELECT ecrm.train_lead_model('conversion', 'train', label => 'country');
SELECT ecrm.train_lead_model('conversion', 'train', holdout => 0.9);
SELECT ecrm.train_lead_model('conversion', 'train', l2 => -1);
SELECT ecrm.train_lead_model('Bad', 'train');
CREATE TEMP TABLE one_class AS SELECT * FROM train WHERE NOT converted;
SELECT ecrm.train_lead_model('conversion', 'one_class');
CREATE TEMP TABLE nokey AS SELECT country, converted FROM train;
SELECT ecrm.train_lead_model('conversion', 'nokey');
CREATE TEMP TABLE extra AS SELECT t.*, 1.5 AS secret FROM train t;
SELECT ecrm.train_lead_model('conversion', 'extra');
SELECT ecrm.new_model_version('conversion');
UPDATE ecrm.scoring_model SET model = '{}' WHERE model_id = :pm;
