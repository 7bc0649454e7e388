-- The leads view at 100,000 leads (run by test/bench/scoring_bench.sh after scoring_speed.sql, with a
-- rules and a predictive model active): the unfiltered top 25 by score, a score filter and one lead, with their plans;
-- the top 25 against the plain-SQL way (profiles LEFT JOIN scores, ordered by score) as a ratio.
\set ON_ERROR_STOP on
\pset footer off
SET client_min_messages = warning;
\ir scoring_timer.sql
ANALYZE ecrm.customer_profile;
ANALYZE ecrm.lead_score;

\echo '== 4. the leads view (100,000 leads, the rules and the predictive model active)'
SELECT count(*) AS leads, count(score) AS scored FROM ecrm.leads;
EXPLAIN (ANALYZE, COSTS OFF, SUMMARY ON) SELECT customer_id, full_name, score, last_touch_at FROM ecrm.leads ORDER BY score DESC LIMIT 25;
SELECT v.best_ms AS view_ms, v.median_ms AS view_median_ms, p.best_ms AS plain_sql_ms, p.median_ms AS plain_sql_median_ms,
       round(p.best_ms / greatest(v.best_ms, 0.01), 1) AS ratio
  FROM pg_temp.bench($q$SELECT customer_id, full_name, score, last_touch_at FROM ecrm.leads ORDER BY score DESC LIMIT 25$q$, 10) v,
       pg_temp.bench($q$SELECT c.customer_id, nullif(concat_ws(' ', c.first_name, c.last_name), '') AS full_name, s.score,
                               (SELECT max(n.occurred_at) FROM ecrm.interaction n WHERE n.customer_id = c.customer_id) AS last_touch_at
                          FROM ecrm.customer_profile c
                          LEFT JOIN ecrm.lead_score s ON s.customer_id = c.customer_id AND s.model_id = ecrm.lead_score_model_id()
                         WHERE c.status = 'active' AND c.lifecycle_stage IN ('lead', 'marketing_qualified', 'sales_qualified', 'opportunity')
                         ORDER BY s.score DESC LIMIT 25$q$, 10) p;
-- the same 25 leads either way
SELECT (SELECT array_agg(customer_id ORDER BY score DESC, customer_id) FROM (SELECT customer_id, score FROM ecrm.leads ORDER BY score DESC, customer_id LIMIT 25) a)
     = (SELECT array_agg(customer_id ORDER BY score DESC, customer_id)
          FROM (SELECT c.customer_id, s.score FROM ecrm.customer_profile c
                  LEFT JOIN ecrm.lead_score s ON s.customer_id = c.customer_id AND s.model_id = ecrm.lead_score_model_id()
                 WHERE c.status = 'active' AND c.lifecycle_stage IN ('lead', 'marketing_qualified', 'sales_qualified', 'opportunity')
                 ORDER BY s.score DESC, c.customer_id LIMIT 25) b) AS same_leads;
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON) SELECT customer_id, full_name, score, last_touch_at FROM ecrm.leads WHERE score >= 70 ORDER BY score DESC LIMIT 25;
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON) SELECT * FROM ecrm.leads WHERE customer_id = 4242;
