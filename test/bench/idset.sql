-- idset benchmark, part 1 (run by test/bench/idset.sh, which then times one membership test per statement
-- with pgbench): set algebra, membership and size against the plain-SQL way (a membership table).
-- Data: ten sets of 1,000,000 ids each drawn at random from 0..10,000,000 (fixed hash seed), stored as
-- idsets (bench_set, STORAGE EXTERNAL) and as rows of a membership table with its primary key (bench_member).
-- Every query runs 7 times (the plain SQL 3 times) after a warm-up; printed: best and median, milliseconds.
\set ON_ERROR_STOP 1
\pset footer off
SET search_path = public, ecrm;
SET max_parallel_workers_per_gather = 0;
DROP TABLE IF EXISTS bench_member, bench_set;
CREATE TABLE bench_member (set_id int, customer_id bigint, PRIMARY KEY (set_id, customer_id));
INSERT INTO bench_member
SELECT s, id FROM generate_series(1, 10) s,
       LATERAL (SELECT g AS id FROM generate_series(0, 9999999) g WHERE hashint8extended(g, s) & 1023 < 103 LIMIT 1000000) x;
VACUUM ANALYZE bench_member;
CREATE TABLE bench_set (set_id int, ids idset);
ALTER TABLE bench_set ALTER COLUMN ids SET STORAGE EXTERNAL;
INSERT INTO bench_set SELECT set_id, idset_agg(customer_id) FROM bench_member GROUP BY set_id;
CREATE UNIQUE INDEX ON bench_set (set_id);
VACUUM ANALYZE bench_set;
SELECT set_id, idset_cardinality(ids) AS members, pg_size_pretty(pg_column_size(ids)::bigint) AS stored FROM bench_set WHERE set_id <= 2 ORDER BY 1;

-- best and median milliseconds of runs of q (after one warm-up run)
CREATE OR REPLACE FUNCTION pg_temp.bench(q text, runs int DEFAULT 7) RETURNS double precision[] LANGUAGE plpgsql AS $$
DECLARE
    t timestamptz;
    times double precision[] := '{}';
    i int;
BEGIN
    EXECUTE q;
    FOR i IN 1..runs LOOP
        t := clock_timestamp();
        EXECUTE q;
        times := times || extract(epoch FROM clock_timestamp() - t) * 1000;
    END LOOP;
    RETURN ARRAY[(SELECT min(x) FROM unnest(times) x), (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) FROM unnest(times) x)];
END $$;

CREATE TEMP TABLE result (what text, idset_ms double precision[], sql_ms double precision[]);
INSERT INTO result VALUES
 ('intersection of two 1M sets (built)',
  pg_temp.bench('SELECT idset_cardinality(idset_and(a.ids, b.ids)) FROM bench_set a, bench_set b WHERE a.set_id = 1 AND b.set_id = 2'),
  pg_temp.bench('SELECT count(*) FROM (SELECT customer_id FROM bench_member WHERE set_id = 1 INTERSECT SELECT customer_id FROM bench_member WHERE set_id = 2) x', 3)),
 ('union of two 1M sets (built)',
  pg_temp.bench('SELECT idset_cardinality(idset_or(a.ids, b.ids)) FROM bench_set a, bench_set b WHERE a.set_id = 1 AND b.set_id = 2'),
  pg_temp.bench('SELECT count(*) FROM (SELECT customer_id FROM bench_member WHERE set_id = 1 UNION SELECT customer_id FROM bench_member WHERE set_id = 2) x', 3)),
 ('intersection cardinality (not built)',
  pg_temp.bench('SELECT idset_and_cardinality(a.ids, b.ids) FROM bench_set a, bench_set b WHERE a.set_id = 1 AND b.set_id = 2'),
  pg_temp.bench('SELECT count(*) FROM bench_member a JOIN bench_member b ON b.customer_id = a.customer_id AND b.set_id = 2 WHERE a.set_id = 1', 3)),
 ('10-way intersection cardinality',
  pg_temp.bench('SELECT idset_intersection_cardinality(VARIADIC array_agg(ids)) FROM bench_set'),
  pg_temp.bench('SELECT count(*) FROM (SELECT customer_id FROM bench_member GROUP BY customer_id HAVING count(*) = 10) x', 3)),
 ('10-way intersection cardinality (idset_intersect_agg)',
  pg_temp.bench('SELECT idset_cardinality(idset_intersect_agg(ids)) FROM bench_set'),
  NULL),
 ('100,000 membership tests in one query',
  pg_temp.bench('SELECT count(*) FILTER (WHERE idset_contains(s.ids, g::bigint)) FROM (SELECT ids FROM bench_set WHERE set_id = 1) s, generate_series(0, 9999999, 100) g'),
  pg_temp.bench('SELECT count(*) FILTER (WHERE EXISTS (SELECT FROM bench_member m WHERE m.set_id = 1 AND m.customer_id = g)) FROM generate_series(0, 9999999, 100) g', 3));
-- the aggregate form answers the same question as the variadic one: same plain-SQL figure
UPDATE result SET sql_ms = (SELECT r.sql_ms FROM result r WHERE r.what = '10-way intersection cardinality') WHERE sql_ms IS NULL;
SELECT what, round(idset_ms[1]::numeric, 2) AS idset_best_ms, round(idset_ms[2]::numeric, 2) AS idset_median_ms,
       round(sql_ms[1]::numeric, 1) AS plain_sql_best_ms, round(sql_ms[2]::numeric, 1) AS plain_sql_median_ms,
       round((sql_ms[2] / idset_ms[2])::numeric, 1) AS times_faster_median
  FROM result;

SELECT 'dense: 1M ids among 0..1,199,999' AS set, pg_size_pretty(pg_column_size(idset_agg(g))::bigint) AS idset_size,
       pg_size_pretty((SELECT pg_relation_size('bench_member') / 10)) AS plain_table_per_set,
       pg_size_pretty((SELECT pg_relation_size('bench_member_pkey') / 10)) AS plain_index_per_set
  FROM generate_series(0, 1199999) g WHERE g % 6 <> 0
UNION ALL
SELECT 'consecutive: ids 0..999,999', pg_size_pretty(pg_column_size(idset_range(0, 999999))::bigint), NULL, NULL
UNION ALL
SELECT 'sparse: 1M ids among 0..9,999,999', pg_size_pretty(pg_column_size(ids)::bigint), NULL, NULL FROM bench_set WHERE set_id = 1;
