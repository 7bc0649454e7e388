-- The tour of identity resolution: find the duplicates of the demo shop, review, merge, unmerge.
\pset footer off
\echo
\echo '== Identity resolution: train the customer model on the shop''s own profiles (EM, no labels) =='
SELECT t ->> 'rows' AS profiles, t ->> 'candidate_pairs' AS candidate_pairs, t ->> 'expected_matches' AS em_expected_matches,
       t ->> 'seconds' AS seconds
  FROM ecrm.train_match_model('customer') t;
SELECT comparison, level, description, round(m::numeric, 3) AS m, round(u::numeric, 5) AS u, round(match_weight::numeric, 1) AS weight
  FROM ecrm.model_weights('customer') WHERE comparison IN ('first_name', 'postal_code', 'birth_date');

\echo
\echo '== A dedupe run: candidates by blocking key, scored, clustered (nothing merged yet) =='
SELECT run_id, profiles, candidate_pairs, review_pairs, auto_merge_clusters, profiles_in_clusters, seconds FROM ecrm.dedupe();
\echo 'how good is it? the demo data knows who is who (attributes->>demo_person)'
SELECT count(*) AS pairs_to_merge, count(*) FILTER (WHERE pa.attributes ->> 'demo_person' = pb.attributes ->> 'demo_person') AS correct,
       (SELECT count(*) FROM ecrm.customer_profile a JOIN ecrm.customer_profile b
            ON a.attributes ->> 'demo_person' = b.attributes ->> 'demo_person' AND a.customer_id < b.customer_id) AS true_duplicate_pairs
  FROM ecrm.dedupe_cluster a
  JOIN ecrm.dedupe_cluster b ON a.run_id = b.run_id AND a.cluster_id = b.cluster_id AND a.customer_id < b.customer_id
  JOIN ecrm.customer_profile pa ON pa.customer_id = a.customer_id JOIN ecrm.customer_profile pb ON pb.customer_id = b.customer_id;

\echo
\echo '== The review queue (pairs between the review and auto-merge thresholds) =='
SELECT candidate_id, full_name, other_full_name, match_probability, place, other_place FROM ecrm.merge_review_queue
 ORDER BY match_probability DESC LIMIT 5;

\echo
\echo '== Dry run of one merge: the golden record field by field, the rows that would move =='
SELECT min(customer_id) AS a, max(customer_id) AS b FROM ecrm.dedupe_cluster
 WHERE cluster_id = (SELECT min(cluster_id) FROM ecrm.dedupe_cluster) \gset
SELECT section, item, value, source_customer, note FROM ecrm.merge_preview(ARRAY[:a, :b]::bigint[])
 WHERE section <> 'field' OR item IN ('first_name', 'last_name', 'email', 'phone', 'lifecycle_stage', 'created_at');

\echo
\echo '== Merge the auto-merge list in one transaction; old ids still resolve =='
SELECT ecrm.apply_dedupe((SELECT max(run_id) FROM ecrm.dedupe_run)) AS merges;
SELECT ecrm.resolve_customer(:b) AS customer_b_is_now, (SELECT count(*) FROM ecrm.customers) AS golden_records;
SELECT merge_id, survivor_id, merged_ids, source, rows_repointed FROM ecrm.merge_history ORDER BY merge_id LIMIT 3;

\echo
\echo '== Unmerge one merge exactly: profiles and every re-pointed row as before =='
SELECT merge_id AS m FROM ecrm.merge_history WHERE survivor_id = :a \gset
SELECT ecrm.unmerge(:m) AS restored;
SELECT customer_id, status, first_name, last_name, email FROM ecrm.customer_profile WHERE customer_id IN (:a, :b) ORDER BY 1;

\echo
\echo '== Real-time: a new sign-up that is an existing customer with a typo is merged on arrival =='
SELECT first_name, last_name, birth_date, postal_code, city, country FROM ecrm.customers
 WHERE birth_date IS NOT NULL AND postal_code IS NOT NULL ORDER BY customer_id LIMIT 1 \gset p_
SELECT ecrm.upsert_customer(jsonb_build_object('first_name', :'p_first_name', 'last_name', :'p_last_name' || 'e',
                                               'email', 'brand.new.address@example.org', 'birth_date', :'p_birth_date',
                                               'postal_code', :'p_postal_code', 'city', :'p_city', 'country', :'p_country')) AS resolved_to;
SELECT merge_id, survivor_id, merged_ids, source, round(probability::numeric, 4) AS probability
  FROM ecrm.merge_history WHERE source = 'realtime';
