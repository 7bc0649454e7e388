-- Lead scoring speed (run by test/bench/scoring_bench.sh in a throwaway database).
--   1. predicting 1,000,000 leads with a logistic model: ecrm.logreg_predict vs the same dot product in plain SQL
--   2. decayed engagement for 100,000 customers over 5,000,000 interactions: ecrm.decayed_sum vs the formula in plain SQL
--   3. a full refresh of a rules model (8 rules) over the same data, leaving it active
-- scoring_bench.sh then measures recording interactions with pgbench and runs scoring_leads.sql.
\set ON_ERROR_STOP on
\pset footer off
SET client_min_messages = warning;

\ir scoring_timer.sql

\echo '== 1. predicting 1,000,000 leads (50 features, a model trained in the database)'
CREATE TABLE bench_leads AS
SELECT i AS id, ARRAY(SELECT (hashint8(i * 64 + j) % 1000) / 100.0 FROM generate_series(1, 50) j)::float8[] AS f,
       hashint8(i) % 7 = 0 AS y
  FROM generate_series(1, 1000000) i;
ANALYZE bench_leads;
CREATE TABLE bench_model AS SELECT ecrm.logreg_train(f, y) AS m FROM bench_leads WHERE id <= 20000;
SELECT b.best_ms AS ecrm_ms, b.median_ms AS ecrm_median_ms, s.best_ms AS plain_sql_ms, s.median_ms AS plain_sql_median_ms,
       round(s.best_ms / b.best_ms, 1) AS ratio
  FROM pg_temp.bench($q$SELECT sum(ecrm.logreg_predict((SELECT m FROM bench_model), f)) FROM bench_leads$q$) b,
       pg_temp.bench($q$SELECT sum(1 / (1 + exp(-(k.b + (SELECT sum(c * x) FROM unnest(k.w, l.f) u(c, x))))))
                          FROM bench_leads l,
                               (SELECT (m ->> 'intercept')::float8 AS b,
                                       ARRAY(SELECT jsonb_array_elements_text(m -> 'coef')::float8) AS w FROM bench_model) k$q$) s;
SELECT abs(a - b) < 1e-6 AS same_result
  FROM (SELECT sum(ecrm.logreg_predict((SELECT m FROM bench_model), f)) AS a FROM bench_leads) x,
       (SELECT sum(1 / (1 + exp(-(k.b + (SELECT sum(c * x) FROM unnest(k.w, l.f) u(c, x)))))) AS b
          FROM bench_leads l, (SELECT (m ->> 'intercept')::float8 AS b,
                                      ARRAY(SELECT jsonb_array_elements_text(m -> 'coef')::float8) AS w FROM bench_model) k) y;
DROP TABLE bench_leads;

\echo '== 2. decayed engagement: 100,000 customers, 5,000,000 interactions over two years'
SET ecrm.score_on_write = off;
INSERT INTO ecrm.customer_profile (customer_id, first_name, company, job_title, country, lifecycle_stage, created_at)
SELECT i, 'Lead ' || i, CASE WHEN i % 3 = 0 THEN 'Company ' || (i % 997) END,
       (ARRAY['Director', 'Engineer', 'Head of Sales', 'Student', 'VP Marketing'])[1 + i % 5],
       (ARRAY['GB', 'DE', 'FR', 'US', 'ES', 'IT'])[1 + i % 6], 'lead', now() - interval '2 years'
  FROM generate_series(1, 100000) i;
SELECT setval(pg_get_serial_sequence('ecrm.customer_profile', 'customer_id'), 100000);
INSERT INTO ecrm.interaction (customer_id, channel, kind, occurred_at, payload)
SELECT 1 + (hashint8(i) & 1048575) % 100000,
       (ARRAY['web', 'web', 'web', 'email', 'email', 'sales', 'chat', 'social'])[1 + i % 8]::ecrm.channel,
       (ARRAY['page_view', 'page_view', 'pricing_view', 'email_open', 'email_click', 'demo', 'chat_message', 'like'])[1 + i % 8],
       now() - make_interval(secs => (hashint8(i * 7) & 67108863) * 0.94),
       CASE WHEN i % 8 = 2 THEN '{"url": "/pricing"}'::jsonb ELSE '{}' END
  FROM generate_series(1, 5000000) i;
VACUUM ANALYZE ecrm.customer_profile;
VACUUM ANALYZE ecrm.interaction;
SET max_parallel_workers_per_gather = 2;
SELECT b.best_ms AS ecrm_ms, b.median_ms AS ecrm_median_ms, s.best_ms AS plain_sql_ms, s.median_ms AS plain_sql_median_ms,
       round(s.best_ms / b.best_ms, 2) AS ratio
  FROM pg_temp.bench($q$SELECT customer_id, ecrm.decayed_sum(1, occurred_at, now(), '14 days')
                          FROM ecrm.interaction GROUP BY customer_id$q$) b,
       pg_temp.bench($q$SELECT customer_id, sum(power(0.5, extract(epoch FROM now() - occurred_at) / 1209600)) FILTER (WHERE occurred_at <= now())
                          FROM ecrm.interaction GROUP BY customer_id$q$) s;
EXPLAIN (COSTS OFF) SELECT customer_id, ecrm.decayed_sum(1, occurred_at, now(), '14 days') FROM ecrm.interaction GROUP BY customer_id;

\echo '== 3. a rules model (4 fit + 4 engagement rules, caps, decay) over the same data'
SELECT ecrm.create_scoring_model('default', '14 days', 100, 40, 70) AS m \gset
INSERT INTO ecrm.score_group VALUES (:m, 'fit', 40, NULL), (:m, 'engagement', 80, NULL);
INSERT INTO ecrm.scoring_rule (model_id, name, kind, group_name, points, field, op, value) VALUES
    (:m, 'Company', 'fit', 'fit', 15, 'company', 'exists', NULL),
    (:m, 'Decision maker', 'fit', 'fit', 20, 'job_title', 'contains', '["director", "head", "vp"]'),
    (:m, 'Core market', 'fit', 'fit', 10, 'country', 'in', '["GB", "DE", "FR"]'),
    (:m, 'Student', 'fit', NULL, -20, 'job_title', 'eq', '"student"');
INSERT INTO ecrm.scoring_rule (model_id, name, kind, group_name, points, source, event_kind, channel, payload_match, min_count, award) VALUES
    (:m, 'Page views', 'engagement', 'engagement', 1, 'interaction', 'page_view', 'web', NULL, 1, 'each'),
    (:m, 'Pricing', 'engagement', 'engagement', 5, 'interaction', 'pricing_view', NULL, '{"url": "/pricing"}', 1, 'each'),
    (:m, 'Email clicks', 'engagement', 'engagement', 3, 'interaction', 'email_click', 'email', NULL, 2, 'each'),
    (:m, 'Demo', 'engagement', 'engagement', 30, 'interaction', 'demo', 'sales', NULL, 1, 'once');
SELECT b.best_ms AS score_all_ms, b.median_ms AS score_all_median_ms
  FROM pg_temp.bench(format('SELECT count(*) FROM ecrm.score_customers(%s)', :m)) b;
\timing on
SELECT ecrm.activate_model(:m) AS activated_and_stored;
SELECT ecrm.refresh_lead_scores() AS refreshed;
\timing off
RESET ecrm.score_on_write;
VACUUM ANALYZE ecrm.lead_score;
