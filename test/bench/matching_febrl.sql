-- FEBRL accuracy of a match model trained by EM without labels.  psql script; variables:
--   file (path of datasetN.csv), name (a label for the output), threshold (default 0.5).
-- Prints precision, recall and F1 of the predicted pairs and of the pairs implied by the clusters,
-- and the seconds taken by training and by prediction.
\if :{?threshold}
\else
\set threshold 0.5
\endif
\set QUIET on
DROP TABLE IF EXISTS febrl;
CREATE TABLE febrl (rec_id text, given_name text, surname text, street_number text, address_1 text, address_2 text,
                    suburb text, postcode text, state text, date_of_birth text, soc_sec_id text);
\set copy '\\copy febrl FROM ' :'file' ' CSV HEADER'
:copy
ALTER TABLE febrl ADD COLUMN id bigint GENERATED ALWAYS AS IDENTITY, ADD COLUMN person int;
UPDATE febrl SET person = split_part(rec_id, '-', 2)::int;
CREATE TEMP TABLE truth AS SELECT a.id AS id_l, b.id AS id_r FROM febrl a JOIN febrl b ON a.person = b.person AND a.id < b.id;

SELECT count(*) FILTER (WHERE name = 'febrl') > 0 AS had FROM ecrm.match_model \gset
\if :had
SELECT ecrm.drop_match_model('febrl');
\endif
-- Comparisons as one would write them for person records; nothing here is tuned on the labels.
SELECT ecrm.create_match_model('febrl',
 '[{"name": "given_name", "expression": "ecrm.normalize_name(given_name)", "kind": "jaro_winkler", "thresholds": [0.92, 0.8]},
   {"name": "surname", "expression": "ecrm.normalize_name(surname)", "kind": "jaro_winkler", "thresholds": [0.92, 0.8]},
   {"name": "date_of_birth", "expression": "date_of_birth", "kind": "date"},
   {"name": "soc_sec_id", "expression": "soc_sec_id", "kind": "damerau_levenshtein", "thresholds": [1, 2]},
   {"name": "street_number", "expression": "street_number", "kind": "exact"},
   {"name": "address_1", "expression": "ecrm.normalize_address(address_1)", "kind": "jaro_winkler", "thresholds": [0.9, 0.8]},
   {"name": "address_2", "expression": "ecrm.normalize_address(address_2)", "kind": "jaro_winkler", "thresholds": [0.9]},
   {"name": "suburb", "expression": "ecrm.fold(suburb)", "kind": "jaro_winkler", "thresholds": [0.9]},
   {"name": "postcode", "expression": "postcode", "kind": "damerau_levenshtein", "thresholds": [1]},
   {"name": "state", "expression": "state", "kind": "exact"}]',
 '["soc_sec_id", "date_of_birth", "postcode || ecrm.soundex(surname)",
   "ecrm.soundex(given_name) || ecrm.soundex(surname)", "left(ecrm.normalize_name(given_name), 2) || suburb"]') AS model_id \gset

SELECT clock_timestamp() AS t0 \gset
SELECT ecrm.train_match_model('febrl', 'febrl') AS training \gset
SELECT clock_timestamp() AS t1 \gset
-- every candidate pair with its probability (threshold 0), to see what blocking found
CREATE TEMP TABLE pred_all AS SELECT * FROM ecrm.predict_matches('febrl', 'febrl', threshold => 0);
CREATE TEMP TABLE pred AS SELECT * FROM pred_all WHERE match_probability >= :threshold;
SELECT clock_timestamp() AS t2 \gset
CREATE TEMP TABLE clus AS SELECT * FROM ecrm.match_clusters('febrl', 'febrl', threshold => :threshold);
SELECT clock_timestamp() AS t3 \gset
\set QUIET off
\pset footer off
\echo
\echo == :name : :file
SELECT (SELECT count(*) FROM febrl) AS records, (SELECT count(*) FROM truth) AS true_pairs,
       (:'training'::jsonb ->> 'candidate_pairs')::int AS candidate_pairs,
       (SELECT count(*) FROM truth t JOIN pred_all p USING (id_l, id_r)) AS true_pairs_in_candidates,
       round((:'training'::jsonb ->> 'expected_matches')::numeric) AS em_expected_matches,
       :threshold AS threshold;
WITH s AS (SELECT 'pairs scored >= threshold' AS what, count(*) AS predicted, count(t.id_l) AS tp FROM pred p LEFT JOIN truth t USING (id_l, id_r)
           UNION ALL
           SELECT 'pairs within clusters', count(*), count(t.id_l)
             FROM clus a JOIN clus b ON a.cluster_id = b.cluster_id AND a.id < b.id LEFT JOIN truth t ON t.id_l = a.id AND t.id_r = b.id)
SELECT what, predicted, tp AS true_positives,
       round(tp::numeric / nullif(predicted, 0), 4) AS precision,
       round(tp::numeric / (SELECT count(*) FROM truth), 4) AS recall,
       round(2 * tp::numeric / (predicted + (SELECT count(*) FROM truth)), 4) AS f1
  FROM s;
SELECT round(extract(epoch FROM :'t1'::timestamptz - :'t0'::timestamptz)::numeric, 2) AS train_seconds,
       round(extract(epoch FROM :'t2'::timestamptz - :'t1'::timestamptz)::numeric, 2) AS predict_seconds,
       round(extract(epoch FROM :'t3'::timestamptz - :'t2'::timestamptz)::numeric, 2) AS cluster_seconds;
