-- Identity resolution over the CRM: models, training, dedupe runs, the review queue, merges with
-- survivorship, exact unmerge, real-time resolution on upsert, and the errors of each.
SET client_min_messages = warning;
DROP EXTENSION ecrm CASCADE;
CREATE EXTENSION ecrm;
RESET client_min_messages;
\pset null '(null)'
\set SHOW_CONTEXT never

-- Models: validation of comparisons, blocking keys, thresholds
SELECT ecrm.create_match_model('Bad Name', '[]', '[]');
SELECT ecrm.create_match_model('m1', '[]', '["x"]');
SELECT ecrm.create_match_model('m1', '[{"name": "a", "expression": "a", "kind": "fuzzy"}]', '["a"]');
SELECT ecrm.create_match_model('m1', '[{"name": "a", "expression": "a", "kind": "exact"}, {"name": "a", "expression": "b", "kind": "exact"}]', '["a"]');
SELECT ecrm.create_match_model('m1', '[{"name": "a", "expression": "a", "kind": "exact", "m": [0.5, 0.6]}]', '["a"]');
SELECT ecrm.create_match_model('m1', '[{"name": "a", "expression": "a", "kind": "exact", "u": [0.5]}]', '["a"]');
SELECT ecrm.create_match_model('m1', '[{"name": "a", "expression": "a", "kind": "jaro_winkler", "thresholds": [0.7, 0.9]}]', '["a"]');
SELECT ecrm.create_match_model('m1', '[{"name": "a", "expression": "a", "kind": "exact"}]', '[]');
SELECT ecrm.create_match_model('m1', '[{"name": "a", "expression": "a", "kind": "exact"}]', '[{"key": "a", "involves": ["zzz"]}]');
SELECT ecrm.create_match_model('m1', '[{"name": "a", "expression": "a", "kind": "exact"}]', '["a"]', prior => 0);
SELECT ecrm.create_match_model('m1', '[{"name": "a", "expression": "a", "kind": "exact"}]', '["a"]', review_threshold => 0.9, auto_merge_threshold => 0.5);
SELECT ecrm.create_match_model('m1', '[{"name": "a", "expression": "a", "kind": "exact"}]', '["a"]', auto_merge_threshold => 1);
SELECT ecrm.create_match_model('customer', '[{"name": "a", "expression": "a", "kind": "exact"}]', '["a"]');
SELECT ecrm.set_match_thresholds('nope', 0.5, 0.9);
SELECT ecrm.set_match_thresholds('customer', NULL, 0.9);
SELECT ecrm.drop_match_model('customer');

-- A model over any table: people with typos, trained by EM without labels
CREATE TABLE people (id bigint PRIMARY KEY, given text, family text, born text, zip text, person int);
INSERT INTO people
SELECT g * 10 + k, CASE WHEN k = 1 AND g % 3 = 0 THEN overlay(f.given PLACING 'x' FROM 3 FOR 1) ELSE f.given END,
       CASE WHEN k = 1 AND g % 3 = 1 THEN f.family || 'e' ELSE f.family END,
       CASE WHEN k = 1 AND g % 4 = 0 THEN NULL ELSE to_char(date '1950-01-01' + g * 37 % 18000, 'YYYYMMDD') END,
       lpad((g * 7919 % 9000 + 1000)::text, 4, '0'), g
  FROM generate_series(1, 400) g
  CROSS JOIN LATERAL (SELECT (ARRAY['anna','bert','carla','dieter','emil','frieda','gustav','hanna','ida','jonas'])[1 + g % 10] AS given,
                             (ARRAY['meier','schulz','becker','hoffmann','koch','richter','klein','wolf','neumann','braun',
                                    'zimmer','kraus','lange','werner','krause'])[1 + g / 10 % 15] AS family) f
  CROSS JOIN generate_series(0, CASE WHEN g % 5 = 0 THEN 1 ELSE 0 END) k;
SELECT ecrm.create_match_model('people',
    '[{"name": "given", "expression": "ecrm.normalize_name(given)", "kind": "jaro_winkler", "thresholds": [0.9]},
      {"name": "family", "expression": "ecrm.normalize_name(family)", "kind": "jaro_winkler", "thresholds": [0.9]},
      {"name": "born", "expression": "born", "kind": "date"},
      {"name": "zip", "expression": "zip", "kind": "damerau_levenshtein", "thresholds": [1]}]',
    '["zip", "ecrm.soundex(family) || left(given, 1)", {"key": "born", "involves": ["born"]}]') > 0 AS created;
SELECT t ->> 'rows' AS rows, t ->> 'candidate_pairs' AS candidate_pairs, t ->> 'sample_rows' AS sample_rows,
       t -> 'untrained' AS untrained, jsonb_array_length(t -> 'sessions') AS sessions
  FROM ecrm.train_match_model('people', 'people', 'id', random_pairs => 20000) t;
SELECT comparison, level, description, round(match_weight::numeric) AS weight FROM ecrm.model_weights('people');
-- 80 true pairs: how many are found, and how many found pairs are wrong
SELECT count(*) AS predicted, count(*) FILTER (WHERE a.person = b.person) AS correct,
       (SELECT count(*) FROM people a JOIN people b ON a.person = b.person AND a.id < b.id) AS true_pairs
  FROM ecrm.predict_matches('people', 'people', 'id', 0.5) p
  JOIN people a ON a.id = p.id_l JOIN people b ON b.id = p.id_r;
SELECT count(DISTINCT cluster_id) AS clusters, count(*) AS rows FROM ecrm.match_clusters('people', 'people', 'id', 0.5);
-- labelled training: m from the pairs a person marked
CREATE TABLE people_labels AS
SELECT a.id AS id_l, b.id AS id_r, a.person = b.person AS is_match
  FROM people a JOIN people b ON a.id < b.id AND a.zip = b.zip;
SELECT t ->> 'method' AS method, t ->> 'labelled_matches' AS labelled
  FROM ecrm.train_match_model_labelled('people', 'people_labels', 'people', 'id', random_pairs => 20000) t;
SELECT count(*) FILTER (WHERE a.person = b.person) AS correct, count(*) AS predicted
  FROM ecrm.predict_matches('people', 'people', 'id', 0.5) p JOIN people a ON a.id = p.id_l JOIN people b ON b.id = p.id_r;
SELECT * FROM ecrm.predict_matches('people', 'people', 'nope');
SELECT * FROM ecrm.predict_matches('people', NULL);
SELECT * FROM ecrm.predict_matches('people', 'people', 'id', 1.5);
SELECT * FROM ecrm.train_match_model('people', 'people', 'id', random_pairs => 10);
SELECT * FROM ecrm.train_match_model_labelled('people', 'people', 'people', 'id');
-- a blocking key value shared by more rows than max_block_size is skipped (and reported), the others still work
SELECT ecrm.create_match_model('people_small_blocks',
    '[{"name": "given", "expression": "given", "kind": "exact"}, {"name": "born", "expression": "born", "kind": "date"}]',
    '["given", "zip"]', max_block_size => 20) > 0 AS created;
SELECT t -> 'skipped_keys' AS skipped_keys, t ->> 'candidate_pairs' AS candidate_pairs
  FROM ecrm.train_match_model('people_small_blocks', 'people', 'id', random_pairs => 20000) t;
SELECT count(*) AS pairs, count(*) FILTER (WHERE a.given = b.given) AS same_given
  FROM ecrm.predict_matches('people_small_blocks', 'people', 'id', 0) p JOIN people a ON a.id = p.id_l JOIN people b ON b.id = p.id_r;
SELECT ecrm.drop_match_model('people_small_blocks');
SELECT ecrm.drop_match_model('people');

-- The CRM: a small demo shop with duplicates whose truth is attributes->>'demo_person'
SELECT count(*) > 0 AS generated FROM ecrm.generate_demo_data(400, 7, '2024-06-01');
CREATE TEMP TABLE truth AS
SELECT a.customer_id AS id_l, b.customer_id AS id_r FROM ecrm.customer_profile a
  JOIN ecrm.customer_profile b ON a.attributes ->> 'demo_person' = b.attributes ->> 'demo_person' AND a.customer_id < b.customer_id;
SELECT count(*) AS true_pairs FROM truth;
SELECT t ->> 'rows' AS rows, t -> 'untrained' AS untrained
  FROM ecrm.train_match_model('customer', random_pairs => 50000) t;
SELECT run_id, profiles, review_pairs, auto_merge_clusters, profiles_in_clusters, merges FROM ecrm.dedupe();
SELECT count(*) AS auto_pairs, count(t.id_l) AS correct
  FROM ecrm.dedupe_cluster a JOIN ecrm.dedupe_cluster b ON a.run_id = b.run_id AND a.cluster_id = b.cluster_id AND a.customer_id < b.customer_id
  LEFT JOIN truth t ON t.id_l = a.customer_id AND t.id_r = b.customer_id;
SELECT count(*) AS review_pairs, count(t.id_l) AS correct FROM ecrm.match_candidate c LEFT JOIN truth t ON t.id_l = c.customer_id AND t.id_r = c.other_id;
SELECT full_name, other_full_name, match_probability > 0.8 AS above_review, evidence ->> 'postal_code' AS postal_code
  FROM ecrm.merge_review_queue ORDER BY candidate_id LIMIT 3;

-- The dry run of one cluster's merge writes nothing
SELECT min(customer_id) AS a, max(customer_id) AS b FROM ecrm.dedupe_cluster
 WHERE cluster_id = (SELECT min(cluster_id) FROM ecrm.dedupe_cluster) \gset
SELECT section, item, value, source_customer = :a AS from_survivor, note FROM ecrm.merge_preview(ARRAY[:a, :b]::bigint[])
 WHERE section <> 'field' OR item IN ('first_name', 'last_name', 'email', 'lifecycle_stage', 'created_at', 'source');
SELECT count(*) AS merges_after_preview FROM ecrm.merge_event;

-- Snapshot of every customer-keyed table, to compare after merging and unmerging
CREATE TEMP VIEW snap AS
SELECT 'customer_profile' AS t, to_jsonb(x)::text AS d FROM ecrm.customer_profile x
UNION ALL SELECT 'identity', to_jsonb(x)::text FROM ecrm.identity x
UNION ALL SELECT 'interaction', to_jsonb(x)::text FROM ecrm.interaction x
UNION ALL SELECT 'orders', to_jsonb(x)::text FROM ecrm.orders x
UNION ALL SELECT 'order_line', to_jsonb(x)::text FROM ecrm.order_line x
UNION ALL SELECT 'campaign_event', to_jsonb(x)::text FROM ecrm.campaign_event x
UNION ALL SELECT 'ticket', to_jsonb(x)::text FROM ecrm.ticket x
UNION ALL SELECT 'ticket_event', to_jsonb(x)::text FROM ecrm.ticket_event x
UNION ALL SELECT 'consent_event', to_jsonb(x)::text FROM ecrm.consent_event x
UNION ALL SELECT 'lifecycle_change', to_jsonb(x)::text FROM ecrm.lifecycle_change x;
CREATE TEMP TABLE before_merge AS SELECT * FROM snap;

-- Apply the auto-merge list: one set-based transaction, no row left on a tombstone
SELECT ecrm.apply_dedupe(1) = (SELECT count(DISTINCT cluster_id) FROM ecrm.dedupe_cluster) AS all_clusters_merged;
SELECT ecrm.apply_dedupe(1);
SELECT ecrm.apply_dedupe(99);
SELECT (SELECT count(*) FROM ecrm.customers) + (SELECT count(*) FROM ecrm.dedupe_cluster) - (SELECT count(DISTINCT cluster_id) FROM ecrm.dedupe_cluster)
       = (SELECT count(*) FROM ecrm.customer_profile) AS profiles_add_up;
SELECT count(*) AS rows_on_tombstones
  FROM (SELECT customer_id FROM ecrm.identity UNION ALL SELECT customer_id FROM ecrm.interaction
        UNION ALL SELECT customer_id FROM ecrm.orders UNION ALL SELECT customer_id FROM ecrm.order_line
        UNION ALL SELECT customer_id FROM ecrm.campaign_event UNION ALL SELECT customer_id FROM ecrm.consent_event
        UNION ALL SELECT customer_id FROM ecrm.ticket UNION ALL SELECT customer_id FROM ecrm.ticket_event) r
  JOIN ecrm.customer_profile p USING (customer_id) WHERE p.status <> 'active';
SELECT ecrm.resolve_customer(:b) = :a AS old_id_resolves;
SELECT source, count(*) AS merges, sum(cardinality(merged_ids)) AS merged FROM ecrm.merge_history GROUP BY source;

-- Undo every merge, newest first: the store is exactly as before
SELECT count(*) AS undone FROM (SELECT ecrm.unmerge(merge_id) FROM ecrm.merge_event ORDER BY merge_id DESC) u;
SELECT t, count(*) AS differences
  FROM ((SELECT * FROM before_merge EXCEPT ALL SELECT * FROM snap) UNION ALL (SELECT * FROM snap EXCEPT ALL SELECT * FROM before_merge)) d
 GROUP BY t;
SELECT count(*) AS customers FROM ecrm.customers;
SELECT ecrm.unmerge(1);
SELECT ecrm.unmerge(12345);
SELECT ecrm.unmerge(NULL);
-- unmerged pairs are kept apart: a new run queues nothing for them and merges none of them
SELECT count(*) AS rejected_pairs FROM ecrm.match_candidate WHERE status = 'rejected';
SELECT auto_merge_clusters FROM ecrm.dedupe();

-- A hand-made case: two profiles of one person, each with history
SET ecrm.realtime_resolution = 'off';
SELECT ecrm.upsert_customer('{"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com", "phone": "+44 20 7946 0018",
                              "postal_code": "SW1A 1AA", "city": "London", "country": "GB", "lifecycle_stage": "lead",
                              "created_at": "2024-01-01T10:00:00Z", "attributes": {"vip": true, "tier": "gold"}}') AS ada \gset
SELECT ecrm.upsert_customer('{"first_name": "Ada", "last_name": "Lovelace-King", "email": "ada.king@example.org",
                              "postal_code": "SW1A1AA", "city": "London", "country": "GB", "lifecycle_stage": "customer",
                              "birth_date": "1985-12-10", "created_at": "2024-02-01T10:00:00Z", "attributes": {"tier": "platinum"}}') AS king \gset
SELECT ecrm.record_interaction(:king, 'web', 'page_view', '2024-02-02T10:00:00Z') AS view1 \gset
SELECT ecrm.open_ticket(:king, 'Where is my parcel?', opened_at => '2024-02-03T10:00:00Z') AS ticket \gset
SELECT ecrm.record_consent(:ada, 'marketing_email', true, '2024-01-02T10:00:00Z') IS NOT NULL AS granted;
SELECT ecrm.record_consent(:king, 'marketing_email', false, '2024-01-01T09:00:00Z') IS NOT NULL AS withdrawn;
SELECT ecrm.has_consent(:ada, 'marketing_email') AS ada_consent, ecrm.has_consent(:king, 'marketing_email') AS king_consent;
SELECT other_id = :king AS finds_the_other, match_probability > 0.99 AS likely, ecrm.explain_gamma('customer', gamma) ->> 'last_name' AS last_name
  FROM ecrm.match_candidates(:ada) LIMIT 1;
SELECT bool_or(customer_id = :ada) AS finds_ada, bool_or(customer_id = :king) AS finds_king, count(*) AS candidates
  FROM ecrm.find_matches('{"first_name": "Ada", "last_name": "Lovelace", "postal_code": "sw1a 1aa"}');
CREATE TEMP TABLE before_ada AS SELECT * FROM snap;

-- merge errors
SELECT ecrm.merge_customers(ARRAY[:ada, :ada]::bigint[]);
SELECT ecrm.merge_customers(ARRAY[:ada]::bigint[], :ada);
SELECT ecrm.merge_customers(ARRAY[:ada, 999999]::bigint[]);
SELECT ecrm.merge_customers('{}');
SELECT ecrm.merge_customers(NULL);
SELECT ecrm.merge_customers(ARRAY[:ada, NULL]::bigint[]);
SELECT ecrm.merge_customers(array_agg(g)) FROM generate_series(1, 1001) g;
SELECT ecrm.merge_customers(ARRAY[:ada, :king]::bigint[], survivorship => '{"shoe_size": "oldest"}');
SELECT ecrm.merge_customers(ARRAY[:ada, :king]::bigint[], survivorship => '{"email": "furthest_stage"}');
SELECT ecrm.merge_customers(ARRAY[:ada, :king]::bigint[], survivorship => '{"email": "loudest"}');
SELECT ecrm.merge_customers(ARRAY[:ada, :king]::bigint[], survivorship => '{"email": {"rule": "source_priority"}}');
SELECT ecrm.merge_customers(ARRAY[:ada, :king]::bigint[], survivorship => '[1]');
SELECT ecrm.merge_customers(ARRAY[:ada, :king]::bigint[], reason => repeat('x', 1001));
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT ecrm.merge_customers(ARRAY[:ada, :king]::bigint[]);
ROLLBACK;

-- merge: the golden record by the rules, one overridden for this merge
SELECT ecrm.merge_customers(ARRAY[:king, :ada]::bigint[], survivorship => '{"phone": "oldest"}', reason => 'same person') AS m1 \gset
SELECT customer_id = :ada AS survivor_is_oldest, first_name, last_name, email, phone, birth_date, postal_code, lifecycle_stage,
       attributes, created_at
  FROM ecrm.customer_profile WHERE customer_id = :ada;
SELECT status, merged_into = :ada AS points_to_survivor FROM ecrm.customer_profile WHERE customer_id = :king;
SELECT kind, value FROM ecrm.identity WHERE customer_id = :ada ORDER BY kind, value;
SELECT ecrm.has_consent(:ada, 'marketing_email') AS consent_after_merge, ecrm.has_consent(:king, 'marketing_email') AS via_old_id;
SELECT count(*) AS interactions, min(customer_id) = :ada AS on_survivor FROM ecrm.interaction WHERE interaction_id = :view1;
SELECT ecrm.merge_customers(ARRAY[:king, :ada]::bigint[]);
SELECT survivor_id = :ada AS survivor, merged_ids = ARRAY[:king]::bigint[] AS merged, source, reason, rows_repointed
  FROM ecrm.merge_history WHERE merge_id = :m1;

-- after the merge: a new interaction for the old id lands on the survivor; a ticket event on the moved ticket;
-- an agent edits a field
SELECT ecrm.record_interaction(:king, 'email', 'email_open', '2024-03-01T10:00:00Z') AS view2 \gset
SELECT customer_id = :ada AS new_interaction_on_survivor FROM ecrm.interaction WHERE interaction_id = :view2;
SELECT ecrm.update_ticket(:ticket, comment => 'Still waiting', at => '2024-03-02T10:00:00Z');
UPDATE ecrm.customer_profile SET job_title = 'Analyst' WHERE customer_id = :ada;

-- unmerge: the rule for rows added after the merge
SELECT ecrm.unmerge(:m1) = ARRAY[:king]::bigint[] AS restored;
SELECT customer_id = :ada AS stays_with_survivor FROM ecrm.interaction WHERE interaction_id = :view2;
SELECT count(*) FILTER (WHERE customer_id = :king) AS ticket_events_back_with_ticket, count(*) AS ticket_events
  FROM ecrm.ticket_event WHERE ticket_id = :ticket;
SELECT job_title AS kept_edit, last_name, email, lifecycle_stage FROM ecrm.customer_profile WHERE customer_id = :ada;
SELECT ecrm.has_consent(:ada, 'marketing_email') AS ada_consent, ecrm.has_consent(:king, 'marketing_email') AS king_consent;
-- everything else is as before the merge
SELECT t, count(*) AS differences
  FROM ((SELECT * FROM before_ada EXCEPT ALL SELECT * FROM snap) UNION ALL (SELECT * FROM snap EXCEPT ALL SELECT * FROM before_ada)) d
 GROUP BY t ORDER BY t;
SELECT status FROM ecrm.match_candidate WHERE customer_id = :ada AND other_id = :king;

-- later merges must be undone first (or with cascade)
SELECT ecrm.upsert_customer('{"first_name": "Charles", "last_name": "Babbage", "created_at": "2024-03-01T00:00:00Z"}') AS charles \gset
SELECT ecrm.merge_customers(ARRAY[:ada, :king]::bigint[]) AS m2 \gset
SELECT ecrm.merge_customers(ARRAY[:ada, :charles]::bigint[]) AS m3 \gset
SELECT ecrm.merge_customers(ARRAY[:ada, :king]::bigint[]);
SELECT ecrm.unmerge(:m2);
SELECT ecrm.unmerge(:m2, cascade => true) @> ARRAY[:king, :charles]::bigint[] AS both_restored;
SELECT count(*) AS active FROM ecrm.customer_profile WHERE customer_id IN (:ada, :king, :charles) AND status = 'active';

-- an erased profile cannot be merged
UPDATE ecrm.customer_profile SET status = 'erased' WHERE customer_id = :charles;
SELECT ecrm.merge_customers(ARRAY[:ada, :charles]::bigint[]);

-- The review queue: reject or merge
SELECT ecrm.decide_match(NULL, 'merge');
SELECT ecrm.decide_match(1, 'maybe');
SELECT ecrm.decide_match(999999, 'reject');
INSERT INTO ecrm.match_candidate (customer_id, other_id, model_id, match_weight, match_probability, gamma, found_by)
VALUES (:ada, :king, (SELECT model_id FROM ecrm.match_model WHERE name = 'customer'), 10, 0.999, '{3,2,0,-1,-1,2,2,-1,1}', 'dedupe')
ON CONFLICT (customer_id, other_id) DO UPDATE
   SET status = 'pending', match_weight = EXCLUDED.match_weight, match_probability = EXCLUDED.match_probability,
       gamma = EXCLUDED.gamma, found_by = EXCLUDED.found_by
RETURNING candidate_id AS cand \gset
SELECT full_name, other_full_name, evidence FROM ecrm.merge_review_queue WHERE candidate_id = :cand;
SELECT ecrm.decide_match(:cand, 'reject') IS NULL AS rejected;
SELECT ecrm.decide_match(:cand, 'merge');
UPDATE ecrm.match_candidate SET status = 'pending' WHERE candidate_id = :cand;
SELECT ecrm.decide_match(:cand, 'merge', survivor => 1);
SELECT ecrm.decide_match(:cand, 'merge', survivor => :king) > 0 AS merged;
SELECT status, merged_into = :king AS into_king FROM ecrm.customer_profile WHERE customer_id = :ada;
SELECT status FROM ecrm.match_candidate WHERE candidate_id = :cand;

-- Real-time resolution in ecrm.upsert_customer
SET ecrm.realtime_resolution = 'merge';
SELECT ecrm.upsert_customer('{"first_name": "Grace", "last_name": "Hopper", "phone": "+1 415 555 0132", "birth_date": "1906-12-09",
                              "postal_code": "10001", "city": "New York", "country": "US", "created_at": "2024-01-05T00:00:00Z"}') AS grace \gset
SELECT ecrm.upsert_customer('{"first_name": "Grace", "last_name": "Hoper", "email": "amazing.grace@example.com", "birth_date": "1906-12-09",
                              "postal_code": "10001", "city": "New York", "country": "US"}') = :grace AS merged_into_grace;
SELECT source, probability > 0.99 AS confident FROM ecrm.merge_history WHERE survivor_id = :grace;
SELECT count(*) AS grace_identities FROM ecrm.identity WHERE customer_id = :grace;
SET ecrm.realtime_resolution = 'review';
SELECT ecrm.upsert_customer('{"first_name": "Grace", "last_name": "Hopper", "email": "g.hopper@example.net", "birth_date": "1906-12-09",
                              "postal_code": "10001", "country": "US"}') <> :grace AS kept_apart;
SELECT found_by, status FROM ecrm.match_candidate WHERE customer_id = :grace OR other_id = :grace ORDER BY candidate_id;
SET ecrm.realtime_resolution = 'off';
SELECT ecrm.upsert_customer('{"first_name": "Grace", "last_name": "Hopper", "email": "grace3@example.net", "birth_date": "1906-12-09",
                              "postal_code": "10001", "country": "US"}') <> :grace AS not_resolved;
SET ecrm.realtime_resolution = 'sometimes';
RESET ecrm.realtime_resolution;
SELECT ecrm.resolve_duplicates(NULL);
SELECT ecrm.resolve_duplicates(999999);
SELECT * FROM ecrm.match_candidates(999999);
SELECT * FROM ecrm.match_candidates(NULL);
SELECT * FROM ecrm.match_candidates(:grace, 0);
SELECT * FROM ecrm.find_matches('[]');
SELECT * FROM ecrm.find_matches(NULL);
SELECT count(*) FROM ecrm.find_matches('{"first_name": "Nobody", "phone": "not a phone", "birth_date": "soon"}');
SELECT count(*) FROM ecrm.find_matches('{}');

-- The survivorship rules in force, and an override kept in the table
INSERT INTO ecrm.survivorship_rule (field, rule, source_priority) VALUES ('phone', 'source_priority', '{crm,web}');
SELECT * FROM ecrm.survivorship WHERE field IN ('phone', 'email', 'first_name', 'lifecycle_stage', 'attributes');
INSERT INTO ecrm.survivorship_rule (field, rule) VALUES ('email', 'bogus');
SELECT * FROM ecrm.survivorship;
DELETE FROM ecrm.survivorship_rule;

-- Registered tables without a primary key cannot be re-pointed
CREATE TABLE loyalty (customer_id bigint REFERENCES ecrm.customer_profile, points int);
INSERT INTO ecrm.customer_table (relid, on_merge, on_erase) VALUES ('loyalty', 'repoint', 'delete');
SELECT ecrm.merge_customers(ARRAY[:grace, :king]::bigint[]);
-- with a key, and a unique constraint per customer: the survivor's row wins, the other is kept in the ledger
ALTER TABLE loyalty ADD COLUMN id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, ADD UNIQUE (customer_id);
INSERT INTO loyalty (customer_id, points) VALUES (:grace, 10), (:king, 20);
SELECT ecrm.merge_customers(ARRAY[:grace, :king]::bigint[], survivor => :grace) AS m4 \gset
SELECT customer_id = :grace AS on_survivor, points FROM loyalty;
SELECT action, count(*) FROM ecrm.merge_image WHERE merge_id = :m4 AND relid = 'loyalty'::regclass GROUP BY action;
SELECT ecrm.unmerge(:m4) = ARRAY[:king]::bigint[] AS restored;
SELECT customer_id = :grace AS grace, points FROM loyalty ORDER BY points;
DELETE FROM ecrm.customer_table WHERE relid = 'loyalty'::regclass;
DROP TABLE loyalty;
