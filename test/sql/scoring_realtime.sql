-- Real-time lead scoring: the rescoring statement of each active model (its plan kept per session),
-- bulk statements, scores that follow model versions, and the leads view (index order, fallback).
SET client_min_messages = warning;
DROP EXTENSION ecrm CASCADE;
CREATE EXTENSION ecrm;
RESET client_min_messages;
\set SHOW_CONTEXT never
\pset null '(null)'
SET extra_float_digits = 0;

-- 1200 leads (more than the 1000 one statement rescoring one by one) with a few page views each
INSERT INTO ecrm.customer_profile (first_name, company, job_title, country, lifecycle_stage, created_at)
SELECT 'Lead ' || i, CASE WHEN i % 3 = 0 THEN 'Company ' || i END, (ARRAY['Director', 'Engineer', 'Student'])[1 + i % 3],
       (ARRAY['GB', 'DE', 'US'])[1 + i % 3], 'lead', '2025-01-01'
  FROM generate_series(1, 1200) i;
INSERT INTO ecrm.interaction (customer_id, channel, kind, occurred_at)
SELECT 1 + i % 1200, 'web', 'page_view', '2025-02-01'::timestamptz + i * interval '1 hour' FROM generate_series(1, 3000) i;
-- no decay: the scores do not depend on when the test runs
SELECT ecrm.create_scoring_model('default', mql_threshold => 25, sql_threshold => 50) AS m1 \gset
INSERT INTO ecrm.score_group (model_id, group_name, max_points) VALUES (:m1, 'engagement', 30);
INSERT INTO ecrm.scoring_rule (model_id, name, kind, points, field, op, value) VALUES
    (:m1, 'Company', 'fit', 10, 'company', 'exists', NULL),
    (:m1, 'Director', 'fit', 20, 'job_title', 'contains', '"director"');
INSERT INTO ecrm.scoring_rule (model_id, name, kind, group_name, points, source, event_kind) VALUES
    (:m1, 'Pages', 'engagement', 'engagement', 1, 'interaction', 'page_view');
SELECT ecrm.activate_model(:m1) AS scored;

-- activation writes the rescoring statement: one customer ($2), an upsert, a count of leads passing a threshold
SELECT rescore_sql ~ 'c\.customer_id = \$2' AS one_customer, rescore_sql ~ '^WITH s AS \(\nINSERT INTO ecrm\.lead_score' AS upsert,
       rescore_sql ~ 's\.score >= ''25''::float8' AS mql, scores_complete
  FROM ecrm.scoring_model WHERE model_id = :m1;
-- its generic plan (kept per session) reaches the customer's interactions by index
CREATE FUNCTION pg_temp.plan_lines(q text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE l text; BEGIN FOR l IN EXECUTE 'EXPLAIN (COSTS OFF) ' || q LOOP RETURN NEXT l; END LOOP; END $$;
\set ECHO none
SELECT format('PREPARE rescore(timestamptz, bigint) AS %s', rescore_sql) FROM ecrm.scoring_model WHERE model_id = :m1 \gexec
\set ECHO all
SET plan_cache_mode = force_generic_plan;
SELECT count(*) FILTER (WHERE l ~ 'Index Cond: \(\(customer_id = \$2\)') AS index_lookups, count(*) FILTER (WHERE l ~ 'Seq Scan') AS seq_scans
  FROM pg_temp.plan_lines('EXECUTE rescore(now(), 42)') l;
RESET plan_cache_mode;
DEALLOCATE rescore;
-- only activation writes it (every role that records an event runs it): an UPDATE leaves it alone
UPDATE ecrm.scoring_model SET rescore_sql = 'SELECT 1', compiled_sql = 'SELECT 2', description = 'B2B' WHERE model_id = :m1;
SELECT rescore_sql ~ 'lead_score' AS rescore_kept, compiled_sql <> 'SELECT 2' AS compiled_kept, description
  FROM ecrm.scoring_model WHERE model_id = :m1;
SELECT count(*) FILTER (WHERE rescore_sql IS NOT NULL) AS drafts_with_statement FROM ecrm.scoring_model WHERE status = 'draft';

-- one interaction per statement, many in one session (the kept plan): each stored score equals a recomputation
SELECT count(ecrm.record_interaction(c, 'web', 'page_view', '2025-03-01')) AS recorded FROM generate_series(1, 40) c;
SELECT count(*) AS rescored FROM ecrm.lead_score l, ecrm.scoring_model m
 WHERE m.model_id = :m1 AND l.model_id = m.model_id AND l.computed_at > m.activated_at;
-- (these recomputations run 1,200 dynamic queries each, serially: under force_parallel_mode every one
-- would start a parallel worker of its own, minutes for nothing the other statements do not test)
SET force_parallel_mode = off;
SELECT count(*) AS rows, bool_and(abs(l.score - s.score) < 1e-9) AS same
  FROM ecrm.lead_score l CROSS JOIN LATERAL ecrm.score_customers(l.model_id, l.computed_at, ARRAY[l.customer_id]) s;
RESET force_parallel_mode;
-- a statement with several events of one lead rescores it once; passing the threshold promotes it, with the reason
SELECT score AS before, (SELECT lifecycle_stage FROM ecrm.customer_profile WHERE customer_id = 1) FROM ecrm.lead_score WHERE customer_id = 1;
INSERT INTO ecrm.interaction (customer_id, channel, kind, occurred_at)
SELECT 1, 'web', 'page_view', '2025-03-02'::timestamptz + i * interval '1 minute' FROM generate_series(1, 25) i;
SELECT score AS after, (SELECT lifecycle_stage FROM ecrm.customer_profile WHERE customer_id = 1) FROM ecrm.lead_score WHERE customer_id = 1;
SELECT from_stage, to_stage, reason FROM ecrm.lifecycle_change WHERE customer_id = 1;
-- a statement touching more than 1000 customers is rescored set-based, with the same results
INSERT INTO ecrm.interaction (customer_id, channel, kind, occurred_at)
SELECT c, 'web', 'page_view', '2025-03-03' FROM generate_series(2, 1102) c;
SELECT count(*) AS rescored FROM ecrm.lead_score l WHERE l.computed_at = (SELECT max(computed_at) FROM ecrm.lead_score);
SET force_parallel_mode = off;
SELECT count(*) AS rows, bool_and(abs(l.score - s.score) < 1e-9) AS same
  FROM ecrm.lead_score l CROSS JOIN LATERAL ecrm.score_customers(l.model_id, l.computed_at, ARRAY[l.customer_id]) s;
RESET force_parallel_mode;
SELECT lifecycle_stage, count(*) FROM ecrm.customers GROUP BY 1 ORDER BY 1;
-- NULL, empty and NULL-holding id arrays rescore nobody; ids of no customer are ignored
SELECT ecrm._rescore(NULL), ecrm._rescore('{}'), ecrm._rescore('{NULL}'), ecrm._rescore('{-1, 99999999}');

-- the kept plan follows the model: a new version (pages count twice) activated in this session
SELECT ecrm.new_model_version('default') AS m2 \gset
UPDATE ecrm.scoring_rule SET points = 2 WHERE model_id = :m2 AND name = 'Pages';
SELECT ecrm.activate_model(:m2) AS scored;
SELECT ecrm.record_interaction(2, 'web', 'page_view', '2025-03-04') > 0 AS recorded;
SELECT l.model_id = :m2 AS v2, l.score, l.score = s.score AS same, l.engagement_score
  FROM ecrm.lead_score l, ecrm.score_customers(:m2, l.computed_at, '{2}') s WHERE l.customer_id = 2;
-- and back (activating v1 again rolls back)
SELECT ecrm.activate_model(:m1) AS scored;
SELECT ecrm.record_interaction(2, 'web', 'page_view', '2025-03-05') > 0 AS recorded;
SELECT l.model_id = :m1 AS v1, l.score, l.engagement_score FROM ecrm.lead_score l WHERE l.customer_id = 2;

-- the leads view: its rows come from lead_score, so the top of the list is read from lead_score_rank_idx
ANALYZE ecrm.customer_profile;
ANALYZE ecrm.lead_score;
EXPLAIN (COSTS OFF) SELECT customer_id, full_name, score FROM ecrm.leads ORDER BY score DESC LIMIT 25;
SELECT customer_id, full_name, lifecycle_stage, score FROM ecrm.leads ORDER BY score DESC, customer_id LIMIT 5;
-- the same leads as a join of the tables
SELECT (SELECT array_agg(customer_id) FROM (SELECT customer_id FROM ecrm.leads ORDER BY score DESC, customer_id LIMIT 25) v)
     = (SELECT array_agg(customer_id) FROM (SELECT c.customer_id FROM ecrm.customer_profile c JOIN ecrm.lead_score s USING (customer_id)
                                             WHERE s.model_id = :m1 AND c.lifecycle_stage IN ('lead', 'marketing_qualified', 'sales_qualified', 'opportunity')
                                             ORDER BY s.score DESC, c.customer_id LIMIT 25) t) AS same_top_25;
SELECT count(*) AS leads, count(DISTINCT customer_id) AS distinct_leads, count(score) AS scored FROM ecrm.leads;
-- a score filter and one lead: index scans
EXPLAIN (COSTS OFF) SELECT customer_id, score FROM ecrm.leads WHERE score >= 40 ORDER BY score DESC LIMIT 25;
SELECT customer_id, round(score::numeric, 1) AS score, conversion_probability FROM ecrm.leads WHERE customer_id = 3;
-- the columns are those of the foundation's view, then the scores
SELECT string_agg(attname, ', ' ORDER BY attnum) FROM pg_attribute WHERE attrelid = 'ecrm.leads'::regclass AND attnum > 0;
-- no active model of the name the view shows: every lead, without a score
SET ecrm.lead_score_model = 'nosuch';
SELECT ecrm._lead_scores_incomplete() AS incomplete, count(*) AS leads, count(score) AS scored FROM ecrm.leads;
SELECT customer_id, score FROM ecrm.leads ORDER BY score DESC, customer_id LIMIT 2;
RESET ecrm.lead_score_model;
-- with ecrm.score_on_write off a new lead has no score until refresh_lead_scores(); the view still lists it
SET ecrm.score_on_write = off;
SELECT ecrm.upsert_customer('{"first_name": "Late", "lifecycle_stage": "lead"}') AS late \gset
SELECT scores_complete, ecrm._lead_scores_incomplete() AS incomplete FROM ecrm.scoring_model WHERE model_id = :m1;
SELECT customer_id = :late AS late_lead, score FROM ecrm.leads ORDER BY score DESC, customer_id LIMIT 1;
SELECT count(*) AS leads, count(score) AS scored FROM ecrm.leads;
-- a profile that becomes active again (as after an unmerge) does the same
SELECT ecrm.refresh_lead_scores() AS refreshed;
UPDATE ecrm.customer_profile SET status = 'merged', merged_into = 4 WHERE customer_id = 5;
DELETE FROM ecrm.lead_score WHERE customer_id = 5;
UPDATE ecrm.customer_profile SET status = 'active', merged_into = NULL WHERE customer_id = 5;
SELECT scores_complete FROM ecrm.scoring_model WHERE model_id = :m1;
SELECT count(*) AS leads, count(score) AS scored FROM ecrm.leads;
RESET ecrm.score_on_write;
SELECT ecrm.refresh_lead_scores() AS refreshed;
SELECT scores_complete FROM ecrm.scoring_model WHERE model_id = :m1;
SELECT count(*) AS leads, count(score) AS scored FROM ecrm.leads;
-- retiring the model: no scores, every lead listed
SELECT ecrm.retire_model(:m1);
SELECT scores_complete FROM ecrm.scoring_model WHERE model_id = :m1;
SELECT count(*) AS leads, count(score) AS scored FROM ecrm.leads;

-- after DROP and CREATE EXTENSION in this session, model id 1 is another model: its scores follow it
SET client_min_messages = warning;
DROP EXTENSION ecrm CASCADE;
CREATE EXTENSION ecrm;
RESET client_min_messages;
SELECT ecrm.upsert_customer('{"first_name": "Solo", "company": "Solo Ltd", "lifecycle_stage": "lead"}') AS solo \gset
SELECT ecrm.create_scoring_model('default') AS m \gset
INSERT INTO ecrm.scoring_rule (model_id, name, kind, points, source, event_kind) VALUES (:m, 'Pages', 'engagement', 5, 'interaction', 'page_view');
SELECT :m = :m1 AS same_id_as_before, ecrm.activate_model(:m) AS scored;
SELECT ecrm.record_interaction(:solo, 'web', 'page_view', '2025-03-01') > 0 AS recorded;
SELECT score, fit_score, engagement_score FROM ecrm.lead_score WHERE customer_id = :solo;
