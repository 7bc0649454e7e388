-- Resolving one new profile against the CRM: latency of ecrm.find_matches (candidates through the
-- blocking-key indexes, scored) and of ecrm.upsert_customer with real-time resolution (write, resolve,
-- merge when sure), one call at a time.  psql script over a throwaway database filled by matching_gen.sql
-- (the upserted probes stay in it);
-- variable probes (default 1000): half are typo'd copies of existing people, half are new, unrelated people.
\if :{?probes}
\else
\set probes 1000
\endif
\set QUIET on
SET jit = off;
DROP TABLE IF EXISTS probe;
CREATE TEMP TABLE probe AS
SELECT row_number() OVER () AS n, doc
  FROM (SELECT jsonb_build_object('first_name', CASE WHEN k % 2 = 0 THEN p.first_name ELSE overlay(p.first_name PLACING '' FROM 3 FOR 1) END,
                                  'last_name', CASE WHEN k % 2 = 1 THEN p.last_name ELSE p.last_name || 'e' END,
                                  'birth_date', p.birth_date, 'postal_code', p.postal_code, 'city', p.city, 'country', p.country,
                                  'email', 'probe' || k || '@example.net') AS doc
          FROM (SELECT c.*, row_number() OVER () AS k FROM ecrm.customer_profile c TABLESAMPLE BERNOULLI (1) REPEATABLE (7)
                 WHERE c.status = 'active' LIMIT :probes / 2) p
        UNION ALL
        SELECT jsonb_build_object('first_name', (ARRAY['Aino','Bodil','Cosimo','Dagny','Eamon','Fenna','Gunnar','Hester','Ilse','Joost'])[1 + g % 10],
                                  'last_name', initcap(substr(md5('last' || g), 1, 3) || (ARRAY['quist','vanger','holm','dottir','escu','opoulos'])[1 + g % 6]),
                                  'birth_date', date '1940-01-01' + (hashint4(g) & 32767) % 23000,
                                  'postal_code', lpad(((hashint4(g + 7) & 2147483647) % 100000)::text, 5, '0'),
                                  'city', 'Newtown', 'country', 'GB', 'email', substr(md5('mail' || g), 1, 10) || '@example.net')
          FROM generate_series(1, :probes - :probes / 2) g) x;
CREATE TEMP TABLE lat (what text, n bigint, ms double precision, found int);
-- warm-up: plans and caches of one session
SELECT count(*) FROM (SELECT ecrm.find_matches(doc) FROM probe WHERE n <= 20) w;
DO $$
DECLARE
    r  record;
    t0 timestamptz;
    k  int;
BEGIN
    FOR r IN SELECT * FROM probe ORDER BY n LOOP
        t0 := clock_timestamp();
        SELECT count(*) INTO k FROM ecrm.find_matches(r.doc) f WHERE f.match_probability >= 0.8;
        INSERT INTO lat VALUES ('find_matches', r.n, 1000 * extract(epoch FROM clock_timestamp() - t0), k);
    END LOOP;
END
$$;
-- (the upserts are kept: the benchmark database is a throwaway one)
SET ecrm.realtime_resolution = 'merge';
DO $$
DECLARE
    r  record;
    t0 timestamptz;
    id bigint;
BEGIN
    FOR r IN SELECT * FROM probe ORDER BY n LOOP
        t0 := clock_timestamp();
        id := ecrm.upsert_customer(r.doc);
        INSERT INTO lat VALUES ('upsert_customer (real-time resolution)', r.n, 1000 * extract(epoch FROM clock_timestamp() - t0),
                                (SELECT count(*) FROM ecrm.merge_event e WHERE e.survivor_id = id AND e.source = 'realtime'));
    END LOOP;
END
$$;
CREATE TEMP TABLE lat_keep AS SELECT * FROM lat;
\set QUIET off
\pset footer off
\echo
\echo == resolving one profile against the CRM (one call at a time)
SELECT (SELECT count(*) FROM ecrm.customer_profile WHERE status = 'active') AS active_profiles, :probes AS probes;
SELECT what, count(*) AS calls,
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 2) AS p50_ms,
       round(percentile_cont(0.95) WITHIN GROUP (ORDER BY ms)::numeric, 2) AS p95_ms,
       round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 2) AS p99_ms,
       round(max(ms)::numeric, 2) AS max_ms,
       count(*) FILTER (WHERE n <= :probes / 2 AND found > 0) AS typo_copies_found,
       count(*) FILTER (WHERE n > :probes / 2 AND found > 0) AS new_people_matched
  FROM lat_keep GROUP BY what ORDER BY what;
