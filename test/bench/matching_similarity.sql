-- Comparisons per second: ecrm's Jaro-Winkler and Damerau-Levenshtein against fuzzystrmatch's levenshtein()
-- on the same pairs of names (1,000,000 by default: variable pairs).  Needs fuzzystrmatch (postgresql-contrib).
-- Each function runs as sum(f(a, b)) over a table; "SQL overhead" is the same query over length(a) + length(b),
-- so (pairs / (seconds - overhead seconds)) is the rate of the function itself inside the executor.
\if :{?pairs}
\else
\set pairs 1000000
\endif
\set QUIET on
CREATE EXTENSION IF NOT EXISTS fuzzystrmatch;
SET jit = off;
SET max_parallel_workers_per_gather = 0;
DROP TABLE IF EXISTS sim_pairs;
-- names with the typos of real duplicates: swapped, dropped, doubled or replaced letters, some accents
CREATE TABLE sim_pairs AS
SELECT a, CASE g % 5 WHEN 0 THEN a WHEN 1 THEN overlay(a PLACING substr(a, 3, 1) || substr(a, 2, 1) FROM 2 FOR 2)
                     WHEN 2 THEN overlay(a PLACING '' FROM 3 FOR 1) WHEN 3 THEN a || substr(a, 2, 1)
                     ELSE b END AS b
  FROM (SELECT g, n[1 + g % cardinality(n)] || (ARRAY['', 'son', 'er', 'ström', 'ez', 'müller'])[1 + g % 6] AS a,
               n[1 + (g * 7) % cardinality(n)] || (ARRAY['', 'sen', 'ier', 'berg', 'ini'])[1 + g % 5] AS b
          FROM generate_series(1, :pairs) g,
               (SELECT ARRAY['james', 'mary', 'robert', 'patricia', 'jennifer', 'michael', 'elizabeth', 'william', 'jürgen',
                             'zoë', 'chloé', 'sören', 'anderson', 'thompson', 'gonzalez', 'kowalski', 'nguyen', 'o''brien',
                             'christopher', 'margaret', 'alexander', 'katherine', 'benjamin', 'stephanie'] AS n) x) y;
ANALYZE sim_pairs;
SELECT sum(length(a) + length(b)) FROM sim_pairs;  -- warm the cache
\pset footer off
\echo
\echo == comparisons per second on :pairs pairs of names (one backend, no parallel query)
CREATE TEMP TABLE timing (fn text, seconds numeric);
SELECT clock_timestamp() AS t \gset
SELECT sum(length(a) + length(b)) AS overhead_check FROM sim_pairs \gset
INSERT INTO timing SELECT 'SQL overhead (length)', extract(epoch FROM clock_timestamp() - :'t'::timestamptz)::numeric;
SELECT clock_timestamp() AS t \gset
SELECT sum(ecrm.jaro_winkler(a, b)) AS jw FROM sim_pairs \gset
INSERT INTO timing SELECT 'ecrm.jaro_winkler', extract(epoch FROM clock_timestamp() - :'t'::timestamptz)::numeric;
SELECT clock_timestamp() AS t \gset
SELECT sum(levenshtein(a, b)) AS lev FROM sim_pairs \gset
INSERT INTO timing SELECT 'fuzzystrmatch levenshtein', extract(epoch FROM clock_timestamp() - :'t'::timestamptz)::numeric;
SELECT clock_timestamp() AS t \gset
SELECT sum(ecrm.damerau_levenshtein(a, b)) AS dl FROM sim_pairs \gset
INSERT INTO timing SELECT 'ecrm.damerau_levenshtein', extract(epoch FROM clock_timestamp() - :'t'::timestamptz)::numeric;
SELECT clock_timestamp() AS t \gset
SELECT sum(ecrm.damerau_levenshtein(a, b, 2)) AS dl2 FROM sim_pairs \gset
INSERT INTO timing SELECT 'ecrm.damerau_levenshtein, max 2', extract(epoch FROM clock_timestamp() - :'t'::timestamptz)::numeric;
SELECT clock_timestamp() AS t \gset
SELECT sum(levenshtein_less_equal(a, b, 2)) AS lev2 FROM sim_pairs \gset
INSERT INTO timing SELECT 'fuzzystrmatch levenshtein_less_equal, max 2', extract(epoch FROM clock_timestamp() - :'t'::timestamptz)::numeric;
SELECT clock_timestamp() AS t \gset
SELECT sum(ecrm.comparison_level(a, b, 'jaro_winkler', '{0.92,0.8}')) AS lvl FROM sim_pairs \gset
INSERT INTO timing SELECT 'ecrm.comparison_level jaro_winkler', extract(epoch FROM clock_timestamp() - :'t'::timestamptz)::numeric;
\set QUIET off
SELECT fn, round(seconds, 3) AS seconds,
       round(:pairs / seconds / 1e6, 2) AS "M comparisons/s (whole query)",
       CASE WHEN fn <> 'SQL overhead (length)'
            THEN round(:pairs / greatest(seconds - (SELECT seconds FROM timing WHERE fn = 'SQL overhead (length)'), 1e-6) / 1e6, 2) END
           AS "M comparisons/s (function alone)",
       round(seconds / (SELECT seconds FROM timing WHERE fn = 'fuzzystrmatch levenshtein'), 2) AS "time vs levenshtein"
  FROM timing;
