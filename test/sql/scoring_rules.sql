-- Rule-based lead scoring: models as rows, decay, caps, real time, lifecycle, versions, explanations.
SET client_min_messages = warning;
DROP EXTENSION ecrm CASCADE;
CREATE EXTENSION ecrm;
RESET client_min_messages;
\set SHOW_CONTEXT never
\pset null '(null)'
SET extra_float_digits = 0;

-- four leads and a subscriber
SELECT ecrm.upsert_customer(c) FROM (VALUES
    ('{"first_name": "Ada", "email": "ada@acme.example", "company": "Acme", "job_title": "Director of IT", "country": "GB",
       "lifecycle_stage": "lead", "attributes": {"company_size": 250, "industry": "retail"}, "created_at": "2025-01-01"}'::jsonb),
    ('{"first_name": "Bo", "email": "bo@gmail.com", "job_title": "Student", "country": "US", "lifecycle_stage": "lead",
       "attributes": {"company_size": "unknown"}, "created_at": "2025-01-01"}'),
    ('{"first_name": "Cy", "email": "cy@beta.example", "company": "Beta GmbH", "job_title": "Head of Sales", "country": "DE",
       "lifecycle_stage": "lead", "attributes": {"company_size": 40}, "created_at": "2025-01-01"}'),
    ('{"first_name": "Dee", "email": "dee@outlook.com", "company": "Zed", "job_title": "VP Ops", "country": "FR",
       "lifecycle_stage": "marketing_qualified", "created_at": "2025-01-01"}'),
    ('{"first_name": "Eve", "email": "eve@example.org", "lifecycle_stage": "subscriber", "created_at": "2025-01-01"}')) v(c);
SELECT ecrm.create_campaign('Spring launch', 'email') AS campaign \gset
-- history up to 2025-03-01
INSERT INTO ecrm.interaction (customer_id, channel, kind, occurred_at, payload)
SELECT c, ch::ecrm.channel, k, t::timestamptz, p::jsonb FROM (VALUES
    (1, 'web', 'page_view', '2025-03-01', '{"url": "/pricing"}'), (1, 'web', 'page_view', '2025-02-22', '{"url": "/"}'),
    (1, 'web', 'page_view', '2025-02-15', '{"url": "/pricing"}'), (1, 'sales', 'demo', '2025-02-01', '{}'),
    (2, 'web', 'page_view', '2025-03-01', '{"url": "/blog"}'), (3, 'web', 'page_view', '2025-01-01', '{"url": "/pricing"}'),
    (3, 'sales', 'demo', '2025-02-27', '{}'), (3, 'sales', 'demo', '2025-03-02', '{}')) v(c, ch, k, t, p);
INSERT INTO ecrm.campaign_event (campaign_id, customer_id, kind, occurred_at)
SELECT :campaign, c, k::ecrm.campaign_event_kind, t::timestamptz FROM (VALUES
    (1, 'clicked', '2025-02-20'), (1, 'clicked', '2025-02-21'), (2, 'clicked', '2025-02-20'), (3, 'opened', '2025-02-20')) v(c, k, t);

-- a rules model: fit capped at 40, engagement at 50, overall 80; engagement halves every 7 days
SELECT ecrm.create_scoring_model('default', half_life => '7 days', max_score => 80, mql_threshold => 30, sql_threshold => 60,
                                 description => 'B2B leads') AS m \gset
INSERT INTO ecrm.score_group (model_id, group_name, max_points) VALUES (:m, 'fit', 40), (:m, 'engagement', 50), (:m, 'uncapped', NULL);
INSERT INTO ecrm.scoring_rule (model_id, name, kind, group_name, points, field, op, value) VALUES
    (:m, 'Has a company', 'fit', 'fit', 10, 'company', 'exists', NULL),
    (:m, 'Decision maker', 'fit', 'fit', 20, 'job_title', 'contains', '["director", "head", "vp"]'),
    (:m, 'Core market', 'fit', 'fit', 10, 'country', 'in', '["gb", "DE"]'),
    (:m, 'Mid-size company', 'fit', 'fit', 15, 'attributes.company_size', 'gte', '50'),
    (:m, 'Free mail', 'fit', NULL, -5, 'email_domain', 'in', '["gmail.com", "outlook.com"]'),
    (:m, 'Students', 'fit', 'uncapped', -20, 'job_title', 'matches', '"^stud"');
INSERT INTO ecrm.scoring_rule (model_id, name, kind, group_name, points, source, event_kind, channel, payload_match, min_count, award, half_life, within) VALUES
    (:m, 'Pricing page', 'engagement', 'engagement', 10, 'interaction', 'page_view', 'web', '{"url": "/pricing"}', 1, 'each', NULL, NULL),
    (:m, 'Any page', 'engagement', 'engagement', 1, 'interaction', 'page_view', NULL, NULL, 1, 'each', '1 day', '30 days'),
    (:m, 'Demo', 'engagement', 'engagement', 40, 'interaction', 'demo', 'sales', NULL, 1, 'once', '30 days', NULL),
    (:m, 'Two clicks', 'engagement', 'engagement', 5, 'campaign', 'clicked', NULL, NULL, 2, 'each', NULL, NULL);

-- scores as of a fixed time (nothing is stored for a draft)
SELECT customer_id, round(score::numeric, 4) AS score, round(fit_score::numeric, 4) AS fit,
       round(engagement_score::numeric, 4) AS engagement
  FROM ecrm.score_customers(:m, '2025-03-01') ORDER BY customer_id;
SELECT count(*) AS stored_for_draft FROM ecrm.lead_score;
-- by hand for customer 1 as of 2025-03-01: pricing 10 * (1 + 0.25) = 12.5, any page 1 (today) + 2^(-7) + 2^(-14),
-- demo 40 * 2^-(28/30), clicks 5 * (2^-(9/7) + 2^-(8/7)); fit 10 + 20 + 10 + 15 = 55 capped at 40
SELECT round((40 + least(50, 12.5 + 1 + 2^(-7) + 2^(-14) + 40 * 2^(-28 / 30.0) + 5 * (2^(-9 / 7.0) + 2^(-8 / 7.0))))::numeric, 4) AS by_hand;
-- an earlier time: later events do not count yet
SELECT customer_id, round(score::numeric, 4) AS score FROM ecrm.score_customers(:m, '2025-02-16', ARRAY[1, 3]) ORDER BY 1;

-- why: each rule, then the caps; the contributions add up to the score
SELECT factor, kind, group_name, detail, round(contribution::numeric, 4) AS contribution
  FROM ecrm.explain_score(1, :m, '2025-03-01');
SELECT round(sum(contribution)::numeric, 4) AS total FROM ecrm.explain_score(1, :m, '2025-03-01');
SELECT factor, detail, round(contribution::numeric, 4) AS contribution FROM ecrm.explain_score(2, :m, '2025-03-01');
SELECT factor, detail, round(contribution::numeric, 4) AS contribution FROM ecrm.explain_score(3, :m, '2025-03-01');

-- bad rules are refused when written
INSERT INTO ecrm.scoring_rule (model_id, name, kind, points, field, op, value) VALUES (:m, 'x', 'fit', 1, 'salary', 'eq', '1');
INSERT INTO ecrm.scoring_rule (model_id, name, kind, points, field, op, value) VALUES (:m, 'x', 'fit', 1, 'country', 'gt', '1');
INSERT INTO ecrm.scoring_rule (model_id, name, kind, points, field, op, value) VALUES (:m, 'x', 'fit', 1, 'country', 'in', '"GB"');
INSERT INTO ecrm.scoring_rule (model_id, name, kind, points, field, op, value) VALUES (:m, 'x', 'fit', 1, 'country', 'eq', NULL);
INSERT INTO ecrm.scoring_rule (model_id, name, kind, points, field, op, value) VALUES (:m, 'x', 'fit', 1, 'country', 'exists', '1');
INSERT INTO ecrm.scoring_rule (model_id, name, kind, points, field, op, value) VALUES (:m, 'x', 'fit', 1, 'job_title', 'matches', '"(unclosed"');
INSERT INTO ecrm.scoring_rule (model_id, name, kind, points, field, op, value) VALUES (:m, 'x', 'fit', 1, 'attributes.', 'exists', NULL);
INSERT INTO ecrm.scoring_rule (model_id, name, kind, points, field, op, value) VALUES (:m, 'x', 'fit', 1, 'age', 'between', '[60, 18]');
INSERT INTO ecrm.scoring_rule (model_id, name, kind, points, field, op, value) VALUES (:m, 'x', 'fit', 1, 'company', 'contains', '[""]');
INSERT INTO ecrm.scoring_rule (model_id, name, kind, points, field, op, value) VALUES (:m, 'x', 'fit', 'NaN', 'company', 'exists', NULL);
INSERT INTO ecrm.scoring_rule (model_id, name, kind, points, field, op, value) VALUES (:m, 'x', 'fit', 1e7, 'company', 'exists', NULL);
INSERT INTO ecrm.scoring_rule (model_id, name, kind, points, source, event_kind, channel) VALUES (:m, 'x', 'engagement', 1, 'campaign', 'opened', 'web');
INSERT INTO ecrm.scoring_rule (model_id, name, kind, points, source, event_kind) VALUES (:m, 'x', 'engagement', 1, 'campaign', 'read');
INSERT INTO ecrm.scoring_rule (model_id, name, kind, points, source, event_kind) VALUES (:m, 'x', 'engagement', 1, 'interaction', 'Page View');
INSERT INTO ecrm.scoring_rule (model_id, name, kind, points, source, min_count) VALUES (:m, 'x', 'engagement', 1, 'interaction', 0);
INSERT INTO ecrm.scoring_rule (model_id, name, kind, points, field, op) VALUES (:m, 'x', 'engagement', 1, 'country', 'exists');
INSERT INTO ecrm.scoring_rule (model_id, name, kind, points, group_name, field, op) VALUES (:m, 'x', 'fit', 1, 'nope', 'country', 'exists');
INSERT INTO ecrm.scoring_rule (model_id, name, kind, points, field, op) VALUES (999, 'x', 'fit', 1, 'country', 'exists');
-- odd but valid values are quoted, never executed
INSERT INTO ecrm.scoring_rule (model_id, name, kind, points, field, op, value) VALUES
    (:m, 'Quote''s test', 'fit', 0, 'attributes.it''s; DROP TABLE x', 'eq', '"O''Brien\"); --"'),
    (:m, 'Ünïcödé city', 'fit', 0, 'city', 'in', '["Zürich", "Łódź", "東京"]');
SELECT count(*) FROM ecrm.score_customers(:m, '2025-03-01');
DELETE FROM ecrm.scoring_rule WHERE model_id = :m AND points = 0;
SELECT ecrm.score_customers(999);
SELECT ecrm.score_customers(:m, 'infinity');
SELECT ecrm.score_customers(:m, NULL);

-- activation scores every active customer and promotes leads past the thresholds (stored as of now)
SELECT ecrm.activate_model(:m) AS scored;
SELECT customer_id, lifecycle_stage FROM ecrm.customers ORDER BY customer_id;
SELECT customer_id, from_stage, to_stage, reason FROM ecrm.lifecycle_change WHERE reason LIKE 'lead score%' ORDER BY customer_id;
SELECT status, activated_at IS NOT NULL AS activated, compiled_sql IS NOT NULL AS compiled FROM ecrm.scoring_model WHERE model_id = :m;
-- an active model is frozen
UPDATE ecrm.scoring_rule SET points = 99 WHERE model_id = :m AND name = 'Demo';
INSERT INTO ecrm.score_group (model_id, group_name) VALUES (:m, 'more');
UPDATE ecrm.scoring_model SET max_score = 90 WHERE model_id = :m;
DELETE FROM ecrm.scoring_model WHERE model_id = :m;
INSERT INTO ecrm.scoring_model (name, version, status) VALUES ('other', 1, 'active');
UPDATE ecrm.scoring_model SET status = 'draft' WHERE model_id = :m;

-- real time: recording an interaction rescores that customer at once
SELECT round(score::numeric, 2) AS before FROM ecrm.lead_score WHERE customer_id = 2 AND model_id = :m;
SELECT ecrm.record_interaction(2, 'web', 'page_view', now() - interval '12 hours', '{"url": "/pricing"}') > 0 AS recorded;
SELECT round(score::numeric, 2) AS after, computed_at > now() - interval '1 minute' AS just_now FROM ecrm.lead_score WHERE customer_id = 2 AND model_id = :m;
-- a profile change rescores the fit part; a new customer is scored on arrival
SELECT ecrm.upsert_customer('{"customer_id": 2, "job_title": "VP Engineering", "country": "DE"}') AS updated;
SELECT round(fit_score::numeric, 2) AS fit FROM ecrm.lead_score WHERE customer_id = 2 AND model_id = :m;
SELECT ecrm.upsert_customer('{"first_name": "Fay", "company": "Gamma", "country": "GB", "lifecycle_stage": "lead"}') AS fay \gset
SELECT round(score::numeric, 2) AS fay_score FROM ecrm.lead_score WHERE customer_id = :fay;
-- the stored scores equal a full recomputation as of when they were computed
SELECT count(*) AS rows, bool_and(abs(l.score - s.score) < 1e-9) AS same
  FROM ecrm.lead_score l
  CROSS JOIN LATERAL ecrm.score_customers(l.model_id, l.computed_at, ARRAY[l.customer_id]) s;
-- a demo pushes customer 2 to sales-qualified, with the reason recorded
SELECT ecrm.record_interaction(2, 'sales', 'demo') > 0 AS recorded;
SELECT lifecycle_stage FROM ecrm.customer_profile WHERE customer_id = 2;
SELECT from_stage, to_stage, reason FROM ecrm.lifecycle_change WHERE customer_id = 2 ORDER BY change_id DESC LIMIT 1;
-- scores never demote
DELETE FROM ecrm.interaction WHERE customer_id = 2 AND kind = 'demo';
SELECT lifecycle_stage, round(score::numeric, 2) AS score FROM ecrm.leads WHERE customer_id = 2;
-- the leads view shows the score of the model named by ecrm.lead_score_model
SELECT customer_id, lifecycle_stage, round(score::numeric, 2) AS score, round(fit_score::numeric, 2) AS fit,
       conversion_probability FROM ecrm.leads ORDER BY score DESC NULLS LAST, customer_id;
SET ecrm.lead_score_model = 'nosuch';
SELECT count(*) AS leads, count(score) AS scored FROM ecrm.leads;
SELECT * FROM ecrm.explain_score(1);
RESET ecrm.lead_score_model;

-- with ecrm.score_on_write off, writes leave scores alone until refresh_lead_scores()
SET ecrm.score_on_write = off;
SELECT ecrm.record_interaction(4, 'sales', 'demo') > 0 AS recorded;
SELECT round(score::numeric, 2) AS stale FROM ecrm.lead_score WHERE customer_id = 4;
RESET ecrm.score_on_write;
SELECT ecrm.refresh_lead_scores() AS refreshed;
SELECT round(score::numeric, 2) AS fresh FROM ecrm.lead_score WHERE customer_id = 4;
SELECT ecrm.refresh_lead_scores('nosuch');
SELECT ecrm.refresh_lead_scores(NULL, '-infinity');

-- versions: copy, change, compare with the previous one, activate (the old one retires), roll back
SELECT ecrm.new_model_version('default', 'demo worth more') AS m2 \gset
SELECT name, version, status, based_on = :m AS based_on_v1,
       (SELECT count(*) FROM ecrm.scoring_rule r WHERE r.model_id = :m2) AS rules
  FROM ecrm.scoring_model WHERE model_id = :m2;
UPDATE ecrm.scoring_rule SET points = 60 WHERE model_id = :m2 AND name = 'Demo';
UPDATE ecrm.scoring_model SET sql_threshold = 50 WHERE model_id = :m2;
SELECT metric, round(baseline::numeric, 2) AS baseline, round(candidate::numeric, 2) AS candidate,
       round(difference::numeric, 2) AS difference
  FROM ecrm.compare_models(:m2, as_of => '2025-03-01');
SELECT customer_id, round(baseline_score::numeric, 2) AS v1, round(candidate_score::numeric, 2) AS v2, baseline_stage, candidate_stage
  FROM ecrm.compare_model_scores(:m2, as_of => '2025-03-01') ORDER BY customer_id;
SELECT ecrm.activate_model(:m2) AS scored;
SELECT version, status FROM ecrm.scoring_model WHERE name = 'default' ORDER BY version;
SELECT model_id = :m2 AS only_v2, count(*) FROM ecrm.lead_score GROUP BY model_id;
SELECT ecrm.activate_model(:m) AS rolled_back;
SELECT version, status FROM ecrm.scoring_model WHERE name = 'default' ORDER BY version;
SELECT ecrm.new_model_version('nosuch');
SELECT ecrm.create_scoring_model('default');
SELECT ecrm.create_scoring_model('Bad Name');
SELECT ecrm.activate_model(12345);
SELECT ecrm.compare_models(12345);
SELECT ecrm.explain_score(1, 12345::bigint);
SELECT ecrm.explain_score(12345, :m);
-- an empty draft cannot be activated
SELECT ecrm.create_scoring_model('empty') AS e \gset
SELECT ecrm.activate_model(:e);
SELECT ecrm.compare_models(:e);
-- retiring removes the model's scores; deleting a draft removes its rules
SELECT ecrm.retire_model(:m);
SELECT count(*) AS scores_left FROM ecrm.lead_score;
DELETE FROM ecrm.scoring_model WHERE model_id = :m2;
SELECT count(*) AS rules_left FROM ecrm.scoring_rule WHERE model_id = :m2;

-- registered for merges, erasure and pg_dump
SELECT relid, on_merge, on_erase FROM ecrm.customer_table WHERE relid = 'ecrm.lead_score'::regclass;
SELECT c.relname FROM pg_extension e, unnest(e.extconfig) x(oid) JOIN pg_class c ON c.oid = x.oid
 WHERE e.extname = 'ecrm' AND (c.relname LIKE 'scor%' OR c.relname LIKE 'lead_score%') ORDER BY 1;
