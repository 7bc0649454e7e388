-- The idset type: text I/O, operators, functions, aggregates, bad input.
SET search_path = ecrm, public;
\set SHOW_CONTEXT never

-- text input and output
SELECT '{1,2,5-9}'::idset, '{}'::idset, ' { 3 , 1,2 } '::idset, '{7-7}'::idset, '{1,2,3}'::idset;
SELECT '{4294967295-4294967300, 9223372036854775807, 0}'::idset;
SELECT '{10,11,12,14,15}'::idset AS runs_of_three_become_ranges;
-- malformed text
SELECT '{1,,2}'::idset;
SELECT '{-1}'::idset;
SELECT '{a}'::idset;
SELECT '{1,2'::idset;
SELECT '1,2'::idset;
SELECT '{1 2}'::idset;
SELECT '{1}x'::idset;
SELECT '{9-5}'::idset;
SELECT '{1-}'::idset;
SELECT '{ü}'::idset;
SELECT ''::idset;
SELECT '{9223372036854775808}'::idset;
SELECT '{0-9223372036854775807}'::idset;
SELECT '{NULL}'::idset;

-- building
SELECT idset(ARRAY[5, 3, 3, 1]::bigint[]), idset('{}'::bigint[]), idset_range(10, 20), idset_range(5, 1);
SELECT idset(ARRAY[1, NULL]::bigint[]);
SELECT idset(ARRAY[-5]::bigint[]);
SELECT idset_range(-1, 5);
SELECT idset_range(0, 9223372036854775807);
SELECT '{1,2}'::idset | 7::bigint, '{1,2}'::idset - 2::bigint, '{1,2}'::idset - 9::bigint;
SELECT '{1}'::idset | (-1)::bigint;

-- set algebra
SELECT '{1-5}'::idset | '{4-9}'::idset AS union_, '{1-5}'::idset & '{4-9}'::idset AS intersection,
       '{1-5}'::idset - '{4-9}'::idset AS difference, '{1-5}'::idset # '{4-9}'::idset AS symmetric_difference;
SELECT '{1,4294967296}'::idset | '{4294967297}'::idset, '{1,4294967296}'::idset & '{4294967296}'::idset;
SELECT idset_union('{1}', '{2}', NULL, '{3}'), idset_intersection('{1-9}', '{3-12}', '{5-6}'),
       idset_intersection(VARIADIC ARRAY[NULL]::idset[]), idset_union(VARIADIC '{}'::idset[]);

-- containment, overlap, equality
SELECT '{1-5}'::idset @> 3::bigint AS has_3, '{1-5}'::idset @> 6::bigint AS has_6, 3::bigint <@ '{1-5}'::idset,
       '{1-5}'::idset @> (-3)::bigint AS negative, '{1-5}'::idset @> '{2,3}'::idset, '{2,3}'::idset <@ '{1-5}'::idset,
       '{1-5}'::idset @> '{5,6}'::idset, '{}'::idset <@ '{}'::idset;
SELECT '{1,2}'::idset && '{2,3}'::idset, '{1,2}'::idset && '{3}'::idset, '{1,2}'::idset = '{2,1}'::idset,
       '{1,2}'::idset = '{1,2,3}'::idset, '{1,2}'::idset <> '{1}'::idset, idset_range(1, 100000) = ('{1-50000}'::idset | '{50001-100000}'::idset);

-- cardinalities and friends
SELECT idset_cardinality('{}'), idset_cardinality('{1-100,4294967296}'), idset_is_empty('{}'), idset_is_empty('{0}');
SELECT idset_and_cardinality('{1-10}', '{5-20}'), idset_or_cardinality('{1-10}', '{5-20}'),
       idset_andnot_cardinality('{1-10}', '{5-20}'), idset_xor_cardinality('{1-10}', '{5-20}'),
       idset_intersection_cardinality('{1-10}', '{5-20}', '{9-30}');
SELECT idset_jaccard('{1,2,3}', '{2,3,4}'), idset_jaccard('{1}', '{2}'), idset_jaccard('{}', '{}') IS NULL AS both_empty;
SELECT idset_min('{7,3,4294967296}'), idset_max('{7,3,4294967296}'), idset_min('{}'), idset_max('{65536-70000}');
SELECT idset_rank('{5,7,9}', 7), idset_rank('{5,7,9}', 8), idset_rank('{5,7,9}', -1), idset_rank('{5,7,4294967296}', 9223372036854775807);
SELECT idset_select('{5,7,9}', 1), idset_select('{5,7,9}', 3), idset_select('{5,7,9}', 0), idset_select('{5,7,9}', 4),
       idset_select('{5,4294967296}', 2);
SELECT idset_to_array('{1,5-7,4294967296}'), idset_to_array('{}'), '{3,1}'::idset::bigint[], ARRAY[9,8]::bigint[]::idset;
SELECT * FROM idset_unnest('{1,3,4294967296}');
SELECT count(*), min(x), max(x) FROM idset_unnest(idset_range(1000, 300000)) x;

-- NULL in, NULL out
SELECT idset_cardinality(NULL), NULL::idset | '{1}'::idset, idset_contains(NULL::idset, 1::bigint);

-- every container kind survives a round trip: arrays, bitsets, runs
CREATE TEMP TABLE sample AS SELECT g AS id FROM generate_series(0, 200000) g WHERE g % 3 = 0 OR g BETWEEN 150000 AND 160000 OR g % 65536 = 7;
SELECT (SELECT idset_agg(id) FROM sample)::text::idset = (SELECT idset_agg(id) FROM sample) AS text_round_trip,
       idset(idset_to_bytea((SELECT idset_agg(id) FROM sample))) = (SELECT idset_agg(id) FROM sample) AS binary_round_trip,
       idset_cardinality((SELECT idset_agg(id) FROM sample)) = (SELECT count(*) FROM sample) AS cardinality_right,
       (SELECT bool_and(idset_contains(s, x.id)) FROM (SELECT idset_agg(id) AS s FROM sample) q, sample x) AS contains_all,
       (SELECT count(*) FROM (SELECT idset_agg(id) AS s FROM sample) q, generate_series(0, 200000) g
         WHERE idset_contains(s, g) <> EXISTS (SELECT FROM sample WHERE id = g)) AS wrong_answers;

-- size: a dense set of a million ids, and a sparse one
SELECT pg_column_size(idset_range(0, 999999)) AS consecutive_bytes,
       pg_column_size((SELECT idset_agg(g) FROM generate_series(0, 1199999) g WHERE g % 6 <> 0)) AS dense_bytes;

-- binary input is untrusted
SELECT idset_to_bytea('{1,2,5-9}');
SELECT idset('\x'::bytea);
SELECT idset('\x0200000000000000000000000000000000'::bytea);
SELECT idset('\x0100000001000000'::bytea);
SELECT idset('\x01000000010000000000000000000000'::bytea);
SELECT idset('\x0100000000000000050000000000000000'::bytea);
-- a valid value with one byte changed, truncated, or with a byte added
SELECT idset(overlay(idset_to_bytea('{1,2,5-9}') PLACING '\xff'::bytea FROM 9 FOR 1));
SELECT idset(substr(idset_to_bytea('{1,2,5-9}'), 1, 30));
SELECT idset(idset_to_bytea('{1,2,5-9}') || '\x00'::bytea);
SELECT idset(overlay(idset_to_bytea('{1,2,100}') PLACING '\x0900'::bytea FROM 35 FOR 2));
-- mutated bytes never crash: each is a valid set or a clean 22P03 error
DO $$
DECLARE
    i int;
    ok int := 0;
    b bytea;
BEGIN
    FOR i IN 1..300 LOOP
        b := overlay(idset_to_bytea('{1,2,5-9,100000,4294967296}') PLACING
                     decode(lpad(to_hex((hashint4(i) & 255)), 2, '0'), 'hex') FROM 1 + abs(hashint4(i * 7)) % 60 FOR 1);
        BEGIN
            PERFORM idset(b);
            ok := ok + 1;
        EXCEPTION WHEN invalid_binary_representation THEN
            NULL;
        END;
    END LOOP;
    RAISE NOTICE 'mutated values accepted: % of 300 (the rest rejected cleanly)', ok > 0;
END
$$;

-- aggregates
SELECT idset_agg(x), idset_agg(NULL::bigint) FROM (VALUES (3), (1), (NULL), (2)) v(x);
SELECT idset_union_agg(s), idset_intersect_agg(s) FROM (VALUES ('{1-5}'::idset), ('{4-9}'), (NULL)) v(s);
SELECT idset_intersect_agg(s) FROM (VALUES ('{1-5}'::idset), ('{}')) v(s);
SELECT idset_agg(x) FROM (VALUES (-4::bigint)) v(x);
SELECT g % 3 AS k, idset_agg(g) FROM generate_series(1, 12) g GROUP BY 1 ORDER BY 1;

-- parallel aggregation: partial aggregates in workers, combined in the leader
CREATE TABLE idset_par AS SELECT g AS id, g % 7 AS grp FROM generate_series(1, 300000) g;
ANALYZE idset_par;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
EXPLAIN (COSTS OFF) SELECT idset_agg(id) FROM idset_par;
EXPLAIN (COSTS OFF) SELECT idset_union_agg(idset(ARRAY[id])) FROM idset_par;
SELECT idset_agg(id) = idset_range(1, 300000) AS parallel_build_right FROM idset_par;
SELECT idset_union_agg(idset(ARRAY[id])) = idset_range(1, 300000) AS parallel_union_right FROM idset_par;
CREATE TABLE idset_par_sets AS SELECT grp, idset_agg(id) AS s FROM idset_par GROUP BY grp;
SELECT idset_cardinality(idset_intersect_agg(s | '{0}'::idset)) AS intersect_right FROM idset_par_sets;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
DROP TABLE idset_par, idset_par_sets;

-- k-means
SELECT kmeans(ARRAY[x, y], 2, 50, 1) FROM (VALUES (0, 0), (0, 1), (1, 0), (10, 10), (10, 11), (11, 10)) v(x, y);
-- the order of rows does not matter
SELECT (SELECT kmeans(ARRAY[x, y]::float8[], 3, 100, 7) FROM (SELECT * FROM generate_series(1, 200) g, LATERAL (VALUES (g % 13, (g * 7) % 11)) v(x, y) ORDER BY g) a)
     = (SELECT kmeans(ARRAY[x, y]::float8[], 3, 100, 7) FROM (SELECT * FROM generate_series(1, 200) g, LATERAL (VALUES (g % 13, (g * 7) % 11)) v(x, y) ORDER BY g DESC) a)
       AS order_independent;
SELECT kmeans_assign(ARRAY[9, 9]::float8[], '{{0.3,0.3},{10.3,10.3}}'), kmeans_assign(ARRAY[0, 1]::float8[], '{{0.3,0.3},{10.3,10.3}}');
SELECT kmeans(ARRAY[x], 3) FROM (VALUES (1.0::float8), (1.0)) v(x);
SELECT kmeans(ARRAY[x], 2) FROM (VALUES (1.0::float8), (1.0), (1.0)) v(x);
SELECT kmeans(ARRAY[x], 0) FROM (VALUES (1.0::float8)) v(x);
SELECT kmeans(x, 1) FROM (VALUES (ARRAY[1.0::float8]), (ARRAY[1.0, 2.0])) v(x);
SELECT kmeans(ARRAY[x], 1) FROM (VALUES ('NaN'::float8)) v(x);
SELECT kmeans(ARRAY[x, NULL], 1) FROM (VALUES (1.0::float8)) v(x);
SELECT kmeans(ARRAY[x], 1) FROM (VALUES (1.0::float8)) v(x) WHERE false;
SELECT kmeans_assign(ARRAY[1]::float8[], '{{0.3,0.3}}');
SELECT kmeans_assign('{}'::float8[], '{{0.3,0.3}}');
