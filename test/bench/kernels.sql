-- Kernels against the contrib function a user would pick instead, in one run (test/bench/kernels.sh runs it):
--   ecrm.pseudonym(email)              vs md5(email), unkeyed sha256(email)      target: <= 1.2x md5
--   ecrm.damerau_levenshtein(a, b)     vs fuzzystrmatch levenshtein(a, b)        target: <= 1.5x
--   ecrm.damerau_levenshtein(a, b, 2)  vs levenshtein_less_equal(a, b, 2)        target: <= 1.5x
--                                      and vs the unbounded form                 target: >= 2x faster
-- Each expression runs as SELECT sum/count(expr) over a table (timed inside the server, no client
-- transfer, one backend, no parallel workers, no JIT); the rounds interleave the expressions, so a change
-- of load hits them all alike.  Reported: median, min and max over the rounds, and ratios of medians.
-- Variables: rows (default 1,000,000), rounds (default 7).
\if :{?rows}
\else
\set rows 1000000
\endif
\if :{?rounds}
\else
\set rounds 7
\endif
\set QUIET on
\pset footer off
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS fuzzystrmatch;
SET jit = off;
SET max_parallel_workers_per_gather = 0;

-- the addresses of mask_bench.sh
DROP TABLE IF EXISTS kb_emails;
CREATE TABLE kb_emails AS
SELECT CASE WHEN i % 7 = 0 THEN initcap(u) ELSE u END || '@' || d.domain AS email
  FROM generate_series(1, :rows) i
 CROSS JOIN LATERAL (SELECT (ARRAY['anna.smith', 'j.doe', 'mike_77', 'sofia.rossi', 'lars.berg', 'chen.wei', 'info',
                                   'k.nowak', 'emma+news', 'o.brien'])[1 + i % 10] || (i / 10)::text AS u) n
 CROSS JOIN LATERAL (SELECT (ARRAY['gmail.com', 'yahoo.co.uk', 'hotmail.fr', 'outlook.com', 'GMX.de', 'icloud.com',
                                   'acme-corp.com', 'shop.co.uk', 'mail.example-gmbh.de', 'consulting.io'])[1 + (i::bigint * 7919) % 10] AS domain) d;
-- the name pairs of matching_similarity.sql: the typos of real duplicates (swapped, dropped, doubled or
-- replaced letters), unrelated names, some accents (about a third of the pairs are not ASCII)
DROP TABLE IF EXISTS kb_pairs;
CREATE TABLE kb_pairs AS
SELECT a, CASE g % 5 WHEN 0 THEN a WHEN 1 THEN overlay(a PLACING substr(a, 3, 1) || substr(a, 2, 1) FROM 2 FOR 2)
                     WHEN 2 THEN overlay(a PLACING '' FROM 3 FOR 1) WHEN 3 THEN a || substr(a, 2, 1)
                     ELSE b END AS b
  FROM (SELECT g, n[1 + g % cardinality(n)] || (ARRAY['', 'son', 'er', 'ström', 'ez', 'müller'])[1 + g % 6] AS a,
               n[1 + (g * 7) % cardinality(n)] || (ARRAY['', 'sen', 'ier', 'berg', 'ini'])[1 + g % 5] AS b
          FROM generate_series(1, :rows) g,
               (SELECT ARRAY['james', 'mary', 'robert', 'patricia', 'jennifer', 'michael', 'elizabeth', 'william', 'jürgen',
                             'zoë', 'chloé', 'sören', 'anderson', 'thompson', 'gonzalez', 'kowalski', 'nguyen', 'o''brien',
                             'christopher', 'margaret', 'alexander', 'katherine', 'benjamin', 'stephanie'] AS n) x) y;
-- unrelated names only (every pair a different name): no common prefix or suffix to drop, so the whole
-- matrix, or with a bound its band, is computed; this is where a bound can save work
DROP TABLE IF EXISTS kb_far;
CREATE TABLE kb_far AS
SELECT n[1 + g % cardinality(n)] || (ARRAY['', 'son', 'er', 'ström', 'ez', 'müller'])[1 + g % 6] AS a,
       n[1 + (g * 7 + 1) % cardinality(n)] || (ARRAY['', 'sen', 'ier', 'berg', 'ini'])[1 + g % 5] AS b
  FROM generate_series(1, :rows) g,
       (SELECT ARRAY['james', 'mary', 'robert', 'patricia', 'jennifer', 'michael', 'elizabeth', 'william', 'jürgen',
                     'zoë', 'chloé', 'sören', 'anderson', 'thompson', 'gonzalez', 'kowalski', 'nguyen', 'o''brien',
                     'christopher', 'margaret', 'alexander', 'katherine', 'benjamin', 'stephanie'] AS n) x;
VACUUM ANALYZE kb_far;
VACUUM ANALYZE kb_emails;
VACUUM ANALYZE kb_pairs;

-- rounds x (every expression once, in order); returns one row per expression with all its times (ms)
CREATE OR REPLACE FUNCTION pg_temp.kb_run(queries text[], rounds int)
RETURNS TABLE (i int, ms numeric[]) LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz; n numeric; times numeric[][];
BEGIN
    times := array_fill(0::numeric, ARRAY[cardinality(queries), rounds]);
    FOR k IN 1..cardinality(queries) LOOP   -- warm-up: caches, first-call setup
        EXECUTE queries[k] INTO n;
    END LOOP;
    FOR r IN 1..rounds LOOP
        FOR k IN 1..cardinality(queries) LOOP
            t0 := clock_timestamp();
            EXECUTE queries[k] INTO n;
            times[k][r] := round(extract(epoch FROM clock_timestamp() - t0) * 1000, 1);
        END LOOP;
    END LOOP;
    FOR k IN 1..cardinality(queries) LOOP
        i := k;
        ms := ARRAY(SELECT unnest(times[k:k][1:rounds]));
        RETURN NEXT;
    END LOOP;
END $$;

CREATE TEMP TABLE kb_q (i int, label text, query text);
INSERT INTO kb_q VALUES
    (1, 'md5(email)',                                    'SELECT count(md5(email)) FROM kb_emails'),
    (2, 'sha256(email::bytea) (unkeyed)',                'SELECT count(sha256(email::bytea)) FROM kb_emails'),
    (3, 'ecrm.pseudonym(email) (HMAC-SHA256)',           'SELECT count(ecrm.pseudonym(email)) FROM kb_emails'),
    (4, 'fuzzystrmatch levenshtein(a, b)',               'SELECT sum(levenshtein(a, b)) FROM kb_pairs'),
    (5, 'ecrm.damerau_levenshtein(a, b)',                'SELECT sum(ecrm.damerau_levenshtein(a, b)) FROM kb_pairs'),
    (6, 'fuzzystrmatch levenshtein_less_equal(a, b, 2)', 'SELECT sum(levenshtein_less_equal(a, b, 2)) FROM kb_pairs'),
    (7, 'ecrm.damerau_levenshtein(a, b, 2)',             'SELECT sum(ecrm.damerau_levenshtein(a, b, 2)) FROM kb_pairs'),
    (8, 'executor cost: count(a = b)',                   'SELECT count(a = b) FROM kb_pairs'),
    (9, 'unrelated names: levenshtein(a, b)',            'SELECT sum(levenshtein(a, b)) FROM kb_far'),
    (10, 'unrelated names: damerau_levenshtein(a, b)',   'SELECT sum(ecrm.damerau_levenshtein(a, b)) FROM kb_far'),
    (11, 'unrelated names: levenshtein_less_equal(a, b, 2)', 'SELECT sum(levenshtein_less_equal(a, b, 2)) FROM kb_far'),
    (12, 'unrelated names: damerau_levenshtein(a, b, 2)', 'SELECT sum(ecrm.damerau_levenshtein(a, b, 2)) FROM kb_far'),
    (13, 'unrelated names: executor cost: count(a = b)', 'SELECT count(a = b) FROM kb_far');

CREATE TEMP TABLE kb_t AS
SELECT q.i, q.label, r.ms,
       (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) FROM unnest(r.ms) x)::numeric(10, 1) AS median,
       (SELECT min(x) FROM unnest(r.ms) x) AS min, (SELECT max(x) FROM unnest(r.ms) x) AS max
  FROM pg_temp.kb_run(ARRAY(SELECT query FROM kb_q ORDER BY i), :rounds) r JOIN kb_q q USING (i);

\echo
\echo == :rows rows, :rounds interleaved rounds, one backend (ms)
SELECT label AS expression, median, min, max FROM kb_t ORDER BY i;

\echo == ratios of medians: whole query, and "alone" with the executor cost of one cheap call per pair (count(a = b)) taken off both
WITH x AS (SELECT array_agg(median ORDER BY i) AS m FROM kb_t),
r (what, ratio, alone, target, op, goal) AS (
    SELECT 'pseudonym / md5', m[3] / m[1], NULL::numeric, '<= 1.2', '<=', 1.2 FROM x
    UNION ALL SELECT 'pseudonym / sha256', m[3] / m[2], NULL, '', '', NULL FROM x
    UNION ALL SELECT 'damerau_levenshtein / levenshtein', m[5] / m[4], (m[5] - m[8]) / nullif(greatest(m[4] - m[8], 0), 0), '<= 1.5', '<=', 1.5 FROM x
    UNION ALL SELECT 'damerau_levenshtein(a, b, 2) / levenshtein_less_equal(a, b, 2)', m[7] / m[6], (m[7] - m[8]) / nullif(m[6] - m[8], 0), '<= 1.5', '<=', 1.5 FROM x
    UNION ALL SELECT 'damerau_levenshtein(a, b) / damerau_levenshtein(a, b, 2)', m[5] / m[7], (m[5] - m[8]) / nullif(m[7] - m[8], 0), '>= 2', '>=', 2 FROM x
    UNION ALL SELECT 'unrelated names: damerau_levenshtein / levenshtein', m[10] / m[9], (m[10] - m[13]) / nullif(m[9] - m[13], 0), '<= 1.5', '<=', 1.5 FROM x
    UNION ALL SELECT 'unrelated names: bounded / levenshtein_less_equal', m[12] / m[11], (m[12] - m[13]) / nullif(m[11] - m[13], 0), '<= 1.5', '<=', 1.5 FROM x
    UNION ALL SELECT 'unrelated names: unbounded / bounded', m[10] / m[12], (m[10] - m[13]) / nullif(m[12] - m[13], 0), '>= 2', '>=', 2 FROM x)
SELECT what, round(ratio, 2) AS ratio, CASE WHEN alone > 0 THEN round(alone, 2)::text WHEN alone IS NOT NULL THEN 'n/a (at the executor cost)' ELSE '' END AS "ratio alone", target,
       CASE op WHEN '<=' THEN CASE WHEN ratio <= goal THEN 'met' ELSE 'NOT met' END
               WHEN '>=' THEN CASE WHEN ratio >= goal THEN 'met' ELSE 'NOT met' END ELSE '' END AS "whole query"
  FROM r;
