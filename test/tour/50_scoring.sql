-- The tour of lead scoring: a rules model with decay, real-time scores, why a lead scored, a predictive model.
\pset footer off
\set ON_ERROR_STOP on
\echo
\echo '== Lead scoring: a rules model (fit + decaying engagement, capped groups, MQL at 40, SQL at 70) =='
SELECT ecrm.create_scoring_model('default', half_life => '30 days', max_score => 100, mql_threshold => 40, sql_threshold => 70,
                                 description => 'B2B leads of the demo shop') AS m \gset
INSERT INTO ecrm.score_group (model_id, group_name, max_points) VALUES (:m, 'fit', 40), (:m, 'engagement', 80);
INSERT INTO ecrm.scoring_rule (model_id, name, kind, group_name, points, field, op, value) VALUES
    (:m, 'Works for a company', 'fit', 'fit', 15, 'company', 'exists', NULL),
    (:m, 'Decision maker', 'fit', 'fit', 20, 'job_title', 'contains', '["director", "head", "manager", "owner", "buyer"]'),
    (:m, 'Core market', 'fit', 'fit', 10, 'country', 'in', '["GB", "DE", "FR"]'),
    (:m, 'Free mail address', 'fit', NULL, -5, 'email_domain', 'in', '["gmail.com", "hotmail.com", "outlook.com", "yahoo.co.uk"]');
INSERT INTO ecrm.scoring_rule (model_id, name, kind, group_name, points, source, event_kind, channel, min_count, award, half_life) VALUES
    (:m, 'Page views', 'engagement', 'engagement', 1, 'interaction', 'page_view', 'web', 1, 'each', '14 days'),
    (:m, 'Sales meeting', 'engagement', 'engagement', 25, 'interaction', 'meeting', 'sales', 1, 'once', NULL),
    (:m, 'Demo', 'engagement', 'engagement', 30, 'interaction', 'demo', 'sales', 1, 'once', NULL),
    (:m, 'Campaign clicks', 'engagement', 'engagement', 4, 'campaign', 'clicked', NULL, 1, 'each', NULL);
SELECT ecrm.activate_model(:m) AS customers_scored;

\echo
\echo '== The hottest leads (the leads view, ordered by score) =='
SELECT customer_id, full_name, company, lifecycle_stage, round(score::numeric, 1) AS score,
       round(fit_score::numeric, 1) AS fit, round(engagement_score::numeric, 1) AS engagement
  FROM ecrm.leads ORDER BY score DESC, customer_id LIMIT 8;

\echo
\echo '== Why the top lead scored what it did =='
SELECT customer_id AS top FROM ecrm.leads ORDER BY score DESC, customer_id LIMIT 1 \gset
SELECT factor, kind, detail, round(contribution::numeric, 2) AS points FROM ecrm.explain_score(:top);

\echo
\echo '== Leads the score moved along the lifecycle, with the reason recorded =='
SELECT to_stage, count(*) AS leads, min(reason) AS reason
  FROM ecrm.lifecycle_change WHERE reason LIKE 'lead score%' GROUP BY to_stage ORDER BY to_stage;

\echo
\echo '== Real time: a lead books a demo; its score and stage change in the same transaction =='
SELECT customer_id AS warm FROM ecrm.leads WHERE lifecycle_stage = 'lead' ORDER BY score DESC, customer_id LIMIT 1 \gset
SELECT 'before' AS moment, lifecycle_stage, round(score::numeric, 1) AS score FROM ecrm.leads WHERE customer_id = :warm;
SELECT ecrm.record_interaction(:warm, 'sales', 'demo') IS NOT NULL AS demo_recorded;
SELECT 'after' AS moment, lifecycle_stage, round(score::numeric, 1) AS score FROM ecrm.leads WHERE customer_id = :warm;

\echo
\echo '== A new version (demos worth more), compared with the active one before switching =='
SELECT ecrm.new_model_version('default', 'demos count more') AS m2 \gset
UPDATE ecrm.scoring_rule SET points = 45 WHERE model_id = :m2 AND name = 'Demo';
SELECT metric, round(baseline::numeric, 2) AS v1, round(candidate::numeric, 2) AS v2 FROM ecrm.compare_models(:m2);

\echo
\echo '== Predictive: train on the leads of 90 days ago and whether they ordered since =='
CREATE TEMP TABLE tour_train AS SELECT * FROM ecrm.lead_features_at(now() - interval '90 days', interval '90 days');
SELECT ecrm.train_lead_model('conversion', 'tour_train', exclude => '{orders,revenue,days_since_last_order}') AS pm \gset
SELECT version, model -> 'rows' AS trained_on, metrics -> 'holdout' -> 'rows' AS held_out,
       round((metrics -> 'holdout' ->> 'auc')::numeric, 3) AS holdout_auc,
       round((metrics -> 'holdout' ->> 'log_loss')::numeric, 3) AS holdout_log_loss
  FROM ecrm.scoring_model WHERE model_id = :pm;
SELECT decile, rows, positives, round(lift::numeric, 2) AS lift, round(capture_rate::numeric, 2) AS captured
  FROM jsonb_populate_recordset(NULL::ecrm.lift_decile, (SELECT metrics -> 'holdout' -> 'lift_by_decile' FROM ecrm.scoring_model WHERE model_id = :pm))
 LIMIT 5;
SELECT ecrm.activate_model(:pm) AS customers_scored;
SELECT customer_id, full_name, lifecycle_stage, round(score::numeric, 1) AS score,
       round(conversion_probability::numeric, 3) AS p_convert
  FROM ecrm.leads ORDER BY conversion_probability DESC, customer_id LIMIT 5;
\echo
\echo '== Why the model gives the likeliest lead its probability (log-odds contributions) =='
SELECT customer_id AS likely FROM ecrm.leads ORDER BY conversion_probability DESC, customer_id LIMIT 1 \gset
SELECT factor, detail, round(contribution::numeric, 3) AS log_odds FROM ecrm.explain_score(:likely, 'conversion') LIMIT 8;
