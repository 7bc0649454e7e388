-- idset against pg_roaringbitmap and plain SQL (run by test/bench/idset_vs_roaring.sh; psql variables
-- rounds, plain_rounds, have_rb). Set pairs, each set stored in a table with its type's DEFAULT storage (no
-- SET STORAGE: like with like, as a user would store them):
--   sparse:   1M ids each drawn from 0..9,999,999 (fixed hash seeds): bitsets of ~6,500 ids per 65,536
--   dense:    1M ids each drawn from 0..1,199,999: bitsets of ~54,600 ids per 65,536
--   periodic: 1.6M ids each, 0..1,999,999 without multiples of 5 (then without g % 5 = 1): bitsets that
--             pglz would compress to 1/80 (what made a compressed idset 3x slower to read)
-- Each operation runs as one statement (both sets fetched and detoasted by the query, as in use), the
-- idset and the peer query taking turns, which goes first alternating, `rounds` times after a warm-up
-- that also checks both give the same answer. Built results are read with the type's own cardinality
-- function (idset_cardinality / rb_cardinality), so the result is built and serialised in both.
-- Printed: median and interquartile range (p25-p75) in milliseconds, and the ratio of the medians.
\set ON_ERROR_STOP 1
\pset footer off
SET search_path = public, ecrm;
SET max_parallel_workers_per_gather = 0;
SET client_min_messages = warning;
DROP TABLE IF EXISTS bench_src, bench_idset, bench_rb, bench_member;
CREATE TABLE bench_src AS
SELECT 'sparse1' AS k, g FROM generate_series(0, 9999999) g WHERE hashint8extended(g, 1) & 1023 < 103
UNION ALL SELECT 'sparse2', g FROM generate_series(0, 9999999) g WHERE hashint8extended(g, 2) & 1023 < 103
UNION ALL SELECT 'dense1', g FROM generate_series(0, 1199999) g WHERE hashint8extended(g, 3) % 6 <> 0
UNION ALL SELECT 'dense2', g FROM generate_series(0, 1199999) g WHERE hashint8extended(g, 4) % 6 <> 0
UNION ALL SELECT 'periodic1', g FROM generate_series(0, 1999999) g WHERE g % 5 <> 0
UNION ALL SELECT 'periodic2', g FROM generate_series(0, 1999999) g WHERE g % 5 <> 1;
CREATE TABLE bench_idset (k text PRIMARY KEY, ids idset);
INSERT INTO bench_idset SELECT k, idset_agg(g) FROM bench_src GROUP BY k;
-- the plain-SQL way: a membership table with its primary key
CREATE TABLE bench_member (k text, id bigint, PRIMARY KEY (k, id));
INSERT INTO bench_member SELECT k, g FROM bench_src WHERE k NOT LIKE 'periodic%';
\if :have_rb
CREATE TABLE bench_rb (k text PRIMARY KEY, ids roaringbitmap);
INSERT INTO bench_rb SELECT k, rb_build_agg(g::int) FROM bench_src GROUP BY k;
VACUUM ANALYZE bench_rb;
\endif
VACUUM ANALYZE bench_idset;
VACUUM ANALYZE bench_member;
SELECT k AS set, idset_cardinality(ids) AS ids, pg_column_size(ids) AS idset_stored_bytes,
       pg_column_compression(ids) IS NOT NULL AS idset_compressed,
       (SELECT attstorage FROM pg_attribute WHERE attrelid = 'bench_idset'::regclass AND attname = 'ids') AS idset_storage
  FROM bench_idset ORDER BY k;
\if :have_rb
SELECT k AS set, rb_cardinality(ids) AS ids, pg_column_size(ids) AS rb_stored_bytes,
       pg_column_compression(ids) IS NOT NULL AS rb_compressed,
       (SELECT attstorage FROM pg_attribute WHERE attrelid = 'bench_rb'::regclass AND attname = 'ids') AS rb_storage
  FROM bench_rb ORDER BY k;
\endif

-- one row: medians, spreads and ratio of two queries that return the same bigint, timed taking turns
CREATE FUNCTION pg_temp.pairbench(what text, pair text, q_idset text, q_peer text, rounds int,
    OUT operation text, OUT sets text, OUT idset_ms numeric, OUT idset_p25_p75 text,
    OUT peer_ms numeric, OUT peer_p25_p75 text, OUT idset_per_peer numeric)
LANGUAGE plpgsql AS $$
DECLARE
    t timestamptz;
    ti float8[] := '{}';
    tp float8[] := '{}';
    x bigint;
    y bigint;
    i int;
BEGIN
    EXECUTE q_idset INTO x;
    EXECUTE q_peer INTO y;
    IF x IS DISTINCT FROM y THEN
        RAISE EXCEPTION '% on %: idset says %, the peer %', what, pair, x, y;
    END IF;
    FOR i IN 1..rounds LOOP
        IF i % 2 = 1 THEN
            t := clock_timestamp(); EXECUTE q_idset INTO x; ti := ti || extract(epoch FROM clock_timestamp() - t) * 1000;
            t := clock_timestamp(); EXECUTE q_peer INTO y; tp := tp || extract(epoch FROM clock_timestamp() - t) * 1000;
        ELSE
            t := clock_timestamp(); EXECUTE q_peer INTO y; tp := tp || extract(epoch FROM clock_timestamp() - t) * 1000;
            t := clock_timestamp(); EXECUTE q_idset INTO x; ti := ti || extract(epoch FROM clock_timestamp() - t) * 1000;
        END IF;
    END LOOP;
    operation := what;
    sets := pair;
    SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY v)::numeric, 3),
           round(percentile_cont(0.25) WITHIN GROUP (ORDER BY v)::numeric, 3) || '-' ||
           round(percentile_cont(0.75) WITHIN GROUP (ORDER BY v)::numeric, 3)
      INTO idset_ms, idset_p25_p75 FROM unnest(ti) v;
    SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY v)::numeric, 3),
           round(percentile_cont(0.25) WITHIN GROUP (ORDER BY v)::numeric, 3) || '-' ||
           round(percentile_cont(0.75) WITHIN GROUP (ORDER BY v)::numeric, 3)
      INTO peer_ms, peer_p25_p75 FROM unnest(tp) v;
    idset_per_peer := round(idset_ms / nullif(peer_ms, 0), 2);
END $$;

CREATE TEMP TABLE op (n int, what text, idset_q text, rb_q text, sql_q text);
INSERT INTO op VALUES
 (1, 'union (built)', 'SELECT idset_cardinality(idset_or(a.ids, b.ids)) FROM bench_idset a, bench_idset b WHERE a.k = %L AND b.k = %L',
     'SELECT rb_cardinality(rb_or(a.ids, b.ids)) FROM bench_rb a, bench_rb b WHERE a.k = %L AND b.k = %L',
     'SELECT count(*) FROM (SELECT id FROM bench_member WHERE k = %L UNION SELECT id FROM bench_member WHERE k = %L) x'),
 (2, 'andnot (built)', 'SELECT idset_cardinality(idset_andnot(a.ids, b.ids)) FROM bench_idset a, bench_idset b WHERE a.k = %L AND b.k = %L',
     'SELECT rb_cardinality(rb_andnot(a.ids, b.ids)) FROM bench_rb a, bench_rb b WHERE a.k = %L AND b.k = %L',
     'SELECT count(*) FROM (SELECT id FROM bench_member WHERE k = %L EXCEPT SELECT id FROM bench_member WHERE k = %L) x'),
 (3, 'intersect (built)', 'SELECT idset_cardinality(idset_and(a.ids, b.ids)) FROM bench_idset a, bench_idset b WHERE a.k = %L AND b.k = %L',
     'SELECT rb_cardinality(rb_and(a.ids, b.ids)) FROM bench_rb a, bench_rb b WHERE a.k = %L AND b.k = %L',
     'SELECT count(*) FROM (SELECT id FROM bench_member WHERE k = %L INTERSECT SELECT id FROM bench_member WHERE k = %L) x'),
 (4, 'intersection size', 'SELECT idset_and_cardinality(a.ids, b.ids) FROM bench_idset a, bench_idset b WHERE a.k = %L AND b.k = %L',
     'SELECT rb_and_cardinality(a.ids, b.ids) FROM bench_rb a, bench_rb b WHERE a.k = %L AND b.k = %L',
     'SELECT count(*) FROM bench_member a JOIN bench_member b ON b.k = %2$L AND b.id = a.id WHERE a.k = %1$L');
CREATE TEMP TABLE pair (n int, name text);
INSERT INTO pair VALUES (1, 'sparse'), (2, 'dense'), (3, 'periodic');

\if :have_rb
\echo '== idset against pg_roaringbitmap (peer = rb_or, rb_andnot, rb_and, rb_and_cardinality), default storage for both'
SELECT r.* FROM op, pair,
       LATERAL pg_temp.pairbench(op.what, pair.name, format(op.idset_q, pair.name || '1', pair.name || '2'),
                                 format(op.rb_q, pair.name || '1', pair.name || '2'), :rounds) r
 ORDER BY op.n, pair.n;
-- the same sets stored compressed, as 0.1.0's default storage (extended) did: every read decompresses
CREATE TABLE bench_idset_compressed (k text PRIMARY KEY, ids idset);
ALTER TABLE bench_idset_compressed ALTER COLUMN ids SET STORAGE EXTENDED;
INSERT INTO bench_idset_compressed SELECT k, ids FROM bench_idset WHERE k LIKE 'periodic%';
SELECT k AS set, pg_column_size(ids) AS compressed_bytes FROM bench_idset_compressed ORDER BY k;
\echo '== the same, idset stored compressed (STORAGE EXTENDED, the default of 0.1.0)'
SELECT r.* FROM op,
       LATERAL pg_temp.pairbench(op.what, 'periodic, idset compressed',
                                 replace(format(op.idset_q, 'periodic1', 'periodic2'), 'bench_idset', 'bench_idset_compressed'),
                                 format(op.rb_q, 'periodic1', 'periodic2'), :rounds) r
 ORDER BY op.n;
DROP TABLE bench_idset_compressed;
\endif
\echo '== idset against plain SQL on a membership table (k, id) with its primary key (peer = UNION, EXCEPT, INTERSECT, JOIN + count)'
SELECT r.operation, r.sets, r.idset_ms, r.idset_p25_p75, r.peer_ms AS plain_sql_ms, r.peer_p25_p75 AS plain_sql_p25_p75,
       round(r.peer_ms / r.idset_ms) AS idset_times_faster
  FROM op, pair,
       LATERAL pg_temp.pairbench(op.what, pair.name, format(op.idset_q, pair.name || '1', pair.name || '2'),
                                 format(op.sql_q, pair.name || '1', pair.name || '2'), :plain_rounds) r
 WHERE pair.name <> 'periodic'
 ORDER BY op.n, pair.n;
DROP TABLE bench_src, bench_idset, bench_member;
DROP TABLE IF EXISTS bench_rb;
