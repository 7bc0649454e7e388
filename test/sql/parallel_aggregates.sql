-- Every aggregate of ecrm run in parallel (partial states built in workers, serialized, deserialized and
-- combined in the leader) gives what the same aggregate gives in one process.
SET client_min_messages = warning;
CREATE TABLE pa AS
SELECT g AS id,
       (hashint4(g) & 1023) / 1024.0::float8 AS score,
       (hashint4(g * 7) & 3) = 0 OR (hashint4(g) & 1023) > 900 AS label,
       ARRAY[(g % 10)::float8 + (hashint4(g) & 255) / 1024.0, (g % 3)::float8] AS features,
       g / 3 AS a, g / 3 + (g % 2) AS b,
       (hashint4(g * 13) & 7)::float8 AS frequency,
       (hashint4(g * 17) & 31)::float8 AS t0,
       10 + (hashint4(g * 19) & 63)::float8 AS monetary,
       timestamptz '2026-01-01' - (g % 365) * interval '1 day' AS at
  FROM generate_series(1, 60000) g;
ANALYZE pa;

-- the settings of the two runs
CREATE FUNCTION serial() RETURNS void LANGUAGE sql AS $$ SELECT set_config('max_parallel_workers_per_gather', '0', false) $$;
CREATE FUNCTION parallel() RETURNS void LANGUAGE sql AS $$
    SELECT set_config('max_parallel_workers_per_gather', '2', false), set_config('parallel_setup_cost', '0', false),
           set_config('parallel_tuple_cost', '1', false), set_config('min_parallel_table_scan_size', '0', false),
           set_config('parallel_leader_participation', 'off', false) $$;
-- whether a query's plan aggregates in parallel, and how many workers ran it
CREATE FUNCTION parallel_plan(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE p json;
BEGIN
    EXECUTE 'EXPLAIN (ANALYZE, FORMAT JSON, COSTS OFF, TIMING OFF, SUMMARY OFF) ' || q INTO p;
    RETURN CASE WHEN p::text LIKE '%"Partial Mode": "Partial"%' AND p::text ~ '"Workers Launched": [1-9]'
                THEN 'partial aggregates in workers' ELSE 'not parallel: ' || left(p::text, 2000) END;
END $$;

-- each aggregate, serial then parallel; results rounded where float sums depend on the order of rows
CREATE TEMP TABLE q (name text, sql text);
INSERT INTO q VALUES
  ('idset_agg', 'SELECT ecrm.idset_to_array(ecrm.idset_agg(id))::text FROM pa'),
  ('idset_union_agg', 'SELECT ecrm.idset_cardinality(ecrm.idset_union_agg(s.one))::text FROM (SELECT ARRAY[id, id + 100000]::bigint[]::ecrm.idset AS one FROM pa) s'),
  ('idset_intersect_agg', 'SELECT ecrm.idset_to_array(ecrm.idset_intersect_agg(s))::text FROM (SELECT ARRAY[1, 2, 3, id]::bigint[]::ecrm.idset AS s FROM pa) x'),
  ('connected_components', 'SELECT md5(ecrm.connected_components(a, b)::text) FROM pa'),
  ('decayed_sum', 'SELECT round(ecrm.decayed_sum(score, at, timestamptz ''2026-01-02'', interval ''30 days'')::numeric, 6)::text FROM pa'),
  ('roc_auc', 'SELECT round(ecrm.roc_auc(score, label)::numeric, 10)::text FROM pa'),
  ('log_loss', 'SELECT round(ecrm.log_loss(least(greatest(score, 0.01), 0.99), label)::numeric, 8)::text FROM pa'),
  ('lift_by_decile', 'SELECT ecrm.lift_by_decile(score, label)::text FROM pa'),
  ('calibration_by_decile', 'SELECT ecrm.calibration_by_decile(score, label)::text FROM pa'),
  ('logreg_train', 'SELECT (SELECT array_agg(round(c::numeric, 6) ORDER BY o) FROM jsonb_array_elements_text(m -> ''coef'' || (m -> ''intercept'')) WITH ORDINALITY e(c, o))::text FROM (SELECT ecrm.logreg_train(features, label) AS m FROM pa) x'),
  ('kmeans', 'SELECT (SELECT array_agg(round(v::numeric, 3) ORDER BY v) FROM unnest(k) v)::text FROM (SELECT ecrm.kmeans(features, 3) AS k FROM pa) x'),
  ('bgnbd_fit', 'SELECT (SELECT array_agg(round(v::numeric, 3)) FROM unnest(ARRAY[(f).r, (f).alpha, (f).a, (f).b]) v)::text FROM (SELECT ecrm.bgnbd_fit(frequency, least(t0, 31) * (frequency > 0)::int, 32) AS f FROM pa) x'),
  ('gamma_gamma_fit', 'SELECT (SELECT array_agg(round(v::numeric, 3)) FROM unnest(ARRAY[(f).p, (f).q, (f).v]) v)::text FROM (SELECT ecrm.gamma_gamma_fit(frequency, monetary) AS f FROM pa WHERE frequency > 0) x');
CREATE TEMP TABLE res (name text, mode text, r text);
DO $$
DECLARE x record; r text;
BEGIN
    PERFORM serial();
    FOR x IN SELECT * FROM q LOOP
        EXECUTE x.sql INTO r;
        INSERT INTO res VALUES (x.name, 'serial', r);
    END LOOP;
    PERFORM parallel();
    FOR x IN SELECT * FROM q LOOP
        EXECUTE x.sql INTO r;
        INSERT INTO res VALUES (x.name, 'parallel', r);
        INSERT INTO res VALUES (x.name, 'plan', parallel_plan(x.sql));
    END LOOP;
END $$;
SELECT q.name, s.r IS NOT NULL AS has_result, p.r = s.r AS parallel_equals_serial, l.r AS plan
  FROM q JOIN res s ON s.name = q.name AND s.mode = 'serial'
         JOIN res p ON p.name = q.name AND p.mode = 'parallel'
         JOIN res l ON l.name = q.name AND l.mode = 'plan'
 ORDER BY q.name;
-- where they differ, both results
SELECT s.name, s.r AS serial, p.r AS parallel FROM res s JOIN res p ON p.name = s.name AND p.mode = 'parallel'
 WHERE s.mode = 'serial' AND s.r IS DISTINCT FROM p.r ORDER BY 1;
RESET ALL;
DROP TABLE pa;
DROP FUNCTION serial(), parallel(), parallel_plan(text);
