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

-- stored sets: a membership test, min and max read an uncompressed out-of-line value (STORAGE EXTERNAL)
-- in slices; every shape of stored bitmap answers like the set read whole (compared with idset_rank,
-- which deserialises the set with CRoaring)
CREATE TABLE idset_stored (k text PRIMARY KEY, s idset);
ALTER TABLE idset_stored ALTER COLUMN s SET STORAGE EXTERNAL;
INSERT INTO idset_stored VALUES
  ('sparse bitsets', (SELECT idset_agg(g) FROM generate_series(0, 2999999) g WHERE hashint8extended(g, 1) & 1023 < 103)),
  ('an array per chunk', (SELECT idset_agg(g * 65536 + 7) FROM generate_series(0, 999) g)),
  ('runs and arrays in three buckets', idset_range(0, 5000000) | idset_range(9000000, 9500000) | '{10000000003,9223372036854775807}'
                                       | (SELECT idset_agg(10000000000 + g * 65536) FROM generate_series(0, 299) g)),
  ('three containers, no offsets', (SELECT idset_agg(g) FROM generate_series(0, 65535, 2) g) | idset_range(65636, 65836)
                                   | (SELECT idset_agg(g) FROM generate_series(131072, 196607, 3) g)),
  ('inline', '{1,2,3}'),
  ('empty', '{}');
SELECT k, pg_column_size(s) > 2000 AS out_of_line, idset_cardinality(s) AS n, idset_min(s), idset_max(s),
       idset_min(s) = idset_select(s, 1) AND idset_max(s) = idset_select(s, idset_cardinality(s)) AS extremes_right
  FROM idset_stored ORDER BY k;
-- one statement per test (the first test of a value in a query reads slices); 2,285 one-row statements,
-- so not each in a parallel worker of its own when the suite runs under force_parallel_mode (minutes of
-- worker start-ups; the statement after this one tests membership in a worker)
SET force_parallel_mode = off;
DO $$
DECLARE
    r record;
    id bigint;
    got boolean;
    tests int := 0;
    wrong int := 0;
BEGIN
    FOR r IN SELECT k, s FROM idset_stored WHERE idset_cardinality(s) > 0 LOOP
        FOR id IN SELECT idset_select(r.s, 1 + (hashint4(i) & 2147483647) % idset_cardinality(r.s)) + d
                    FROM generate_series(1, 150) i, (VALUES (-1), (0), (1)) v(d)
                  UNION ALL SELECT x FROM unnest(ARRAY[-5, 0, 65535, 65536, 4294967295, 4294967296, 9223372036854775806]::bigint[]) x LOOP
            EXECUTE 'SELECT s @> $1 FROM idset_stored WHERE k = $2' INTO got USING id, r.k;
            tests := tests + 1;
            IF got IS DISTINCT FROM (id >= 0 AND idset_rank(r.s, id) - idset_rank(r.s, id - 1) = 1) THEN
                wrong := wrong + 1;
                RAISE NOTICE '% @> %: %', r.k, id, got;
            END IF;
        END LOOP;
    END LOOP;
    RAISE NOTICE '% sliced membership tests, % wrong', tests, wrong;
END
$$;
RESET force_parallel_mode;
-- many tests in one query: the value is read whole once, then from memory
SELECT k, (SELECT count(*) FROM generate_series(0, 9999999, 3) g WHERE st.s @> g::bigint)
          = idset_and_cardinality(s, (SELECT idset_agg(g) FROM generate_series(0, 9999999, 3) g)) AS many_tests_right
  FROM idset_stored st ORDER BY k;
-- a value stored compressed (STORAGE EXTENDED, the type's default in 0.1.0) is read whole
CREATE TABLE idset_compressed (s idset);
ALTER TABLE idset_compressed ALTER COLUMN s SET STORAGE EXTENDED;
INSERT INTO idset_compressed SELECT idset_agg(g) FROM generate_series(0, 2999999, 3) g;
SELECT pg_column_compression(s) IS NOT NULL AS compressed, s @> 300000::bigint AS has, s @> 300001::bigint AS has_not,
       idset_min(s), idset_max(s) FROM idset_compressed;
DROP TABLE idset_stored, idset_compressed;
-- by default a set is never compressed: stored out of line as it is, read without a decompression pass
SELECT typstorage FROM pg_type WHERE oid = 'idset'::regtype;
CREATE TABLE idset_default_storage (s idset);
INSERT INTO idset_default_storage SELECT idset_agg(g) FROM generate_series(0, 2999999, 3) g;
SELECT pg_column_compression(s) IS NULL AS not_compressed, pg_column_size(s) > 100000 AS stored_whole,
       idset_and_cardinality(s, s) = 1000000 AS reads FROM idset_default_storage;
DROP TABLE idset_default_storage;

-- fast paths against the simple ones, on sets of every container shape (empty, one id, arrays, bitsets
-- sparse and dense, runs long and short, full chunks, several 2^32 buckets, the extreme ids) and on
-- generated sets of random density, range and offset, paired every way: the intersection size read from
-- the stored bytes (idset_and_cardinality and the sizes built on it) equals the size of the built set, and
-- union, difference and intersection, now computed in the left operand's bitmaps, equal plain SQL on the ids
CREATE TEMP TABLE shape (name text, s idset);
INSERT INTO shape VALUES
  ('empty', '{}'), ('single', '{70000}'), ('single high', '{4294967296}'),
  ('edges', '{0,65535,65536,131071,4294967295,4294967296,9223372036854775807}'),
  ('arrays', (SELECT idset_agg(g) FROM generate_series(0, 300000, 97) g)),
  ('sparse bitsets', (SELECT idset_agg(g) FROM generate_series(0, 300000) g WHERE hashint8(g) & 7 = 0)),
  ('dense bitsets', (SELECT idset_agg(g) FROM generate_series(0, 300000) g WHERE hashint8(g) & 7 <> 0)),
  ('long runs', idset_range(1000, 140000) | idset_range(150000, 150010) | idset_range(200000, 265535)),
  ('short runs', (SELECT idset_agg(g) FROM generate_series(0, 300000) g WHERE g % 100 < 30)),
  ('full chunk', idset_range(65536, 131071)),
  ('three buckets', (SELECT idset_agg(g + 4294967296 * (g % 3)) FROM generate_series(0, 300000, 5) g)
                    | idset_range(8589934592 + 10, 8589934592 + 90000));
INSERT INTO shape
SELECT 'random ' || i,
       (SELECT idset_agg(o + g) FROM generate_series(0, r) g WHERE hashint8extended(g, i) & 1023 < d)
       | CASE WHEN i % 3 = 0 THEN idset_range(o + r / 3, o + r / 3 + i * 997) ELSE '{}' END
  FROM generate_series(1, 12) i,
       LATERAL (SELECT (hashint4(i) & 1023) AS d, 1000 + (hashint4(i + 100) & 262143) AS r,
                       CASE WHEN i % 4 = 0 THEN 4294967296 - 70000 ELSE (hashint4(i + 200) & 65535) END AS o) p;
SELECT count(*) AS pairs,
       count(*) FILTER (WHERE idset_and_cardinality(a.s, b.s) = idset_cardinality(a.s & b.s)) AS and_size_right,
       count(*) FILTER (WHERE idset_intersection_cardinality(a.s, b.s) = idset_cardinality(a.s & b.s)) AS two_way_right,
       count(*) FILTER (WHERE idset_or_cardinality(a.s, b.s) = idset_cardinality(a.s | b.s)) AS or_size_right,
       count(*) FILTER (WHERE idset_andnot_cardinality(a.s, b.s) = idset_cardinality(a.s - b.s)) AS andnot_size_right,
       count(*) FILTER (WHERE idset_xor_cardinality(a.s, b.s) = idset_cardinality(a.s # b.s)) AS xor_size_right,
       count(*) FILTER (WHERE idset_jaccard(a.s, b.s) IS NOT DISTINCT FROM
                              idset_cardinality(a.s & b.s)::float8 / nullif(idset_cardinality(a.s | b.s), 0)) AS jaccard_right,
       count(*) FILTER (WHERE a.s & b.s = idset_intersection(a.s, b.s) AND a.s | b.s = idset_union(a.s, b.s)) AS variadic_right
  FROM shape a, shape b;
SELECT count(*) AS pairs,
       count(*) FILTER (WHERE idset_cardinality(a.s & b.s) = (SELECT count(*) FROM (SELECT idset_unnest(a.s) INTERSECT SELECT idset_unnest(b.s)) x)
                          AND a.s & b.s = idset(ARRAY(SELECT idset_unnest(a.s) INTERSECT SELECT idset_unnest(b.s)))) AS and_right,
       count(*) FILTER (WHERE a.s | b.s = idset(ARRAY(SELECT idset_unnest(a.s) UNION SELECT idset_unnest(b.s)))) AS or_right,
       count(*) FILTER (WHERE a.s - b.s = idset(ARRAY(SELECT idset_unnest(a.s) EXCEPT SELECT idset_unnest(b.s)))) AS andnot_right
  FROM shape a, shape b
 WHERE a.name IN ('empty', 'edges', 'sparse bitsets', 'long runs', 'short runs', 'three buckets', 'random 3', 'random 4')
   AND b.name IN ('empty', 'single', 'dense bitsets', 'arrays', 'full chunk', 'three buckets', 'random 4', 'random 9');
-- runs are kept where they at least halve a container, as before (a union of two halves is one run)
SELECT pg_column_size(idset_agg(g) | idset_agg(g + 1)) AS one_run_bytes FROM generate_series(0, 200000, 2) g;

-- the on-disk format is unchanged (version 1): a value written by ecrm 0.1.0 (the 145 bytes of its
-- idset_to_bytea for this set) reads, and this version writes the bytes 0.1.0 wrote for sets of every
-- container kind (md5 of 0.1.0's output)
SELECT idset('\x01000000030000007e1101000000000000000000450000000100000012000000ffffff7f120000003b3003000700000800010090ee0200e022ffff000025000000330000003d0000004300000003000000020005000400ffff000002000000000070118fee01000000e022ffff3a30000001000000000000001000000000003a30000001000000ffff000010000000ffff'::bytea) AS old_value;
SELECT idset_and_cardinality(idset('\x01000000030000007e1101000000000000000000450000000100000012000000ffffff7f120000003b3003000700000800010090ee0200e022ffff000025000000330000003d0000004300000003000000020005000400ffff000002000000000070118fee01000000e022ffff3a30000001000000000000001000000000003a30000001000000ffff000010000000ffff'::bytea),
                             '{0-8,65535-70001,4294967296}') AS old_value_and_size;
SELECT (SELECT md5(idset_to_bytea(idset_agg(g))) FROM generate_series(0, 200000, 3) g) = '6a52e4d119db02106c43b12b218b25ee' AS bitsets_same,
       (SELECT md5(idset_to_bytea(idset_agg(g))) FROM generate_series(0, 9999999) g WHERE hashint8extended(g, 1) & 1023 < 103)
         = 'f172269c7ebec3f902adc41af1d29e61' AS sparse_1m_same,
       md5(idset_to_bytea(idset_range(5, 3000000) | idset_range(4294967290, 4294967400))) = '196c6606ba30e7bb00d819157cf3588e' AS runs_two_buckets_same,
       (SELECT md5(idset_to_bytea(idset_agg(g) | idset_agg(g + 1))) FROM generate_series(0, 200000, 2) g) = 'b7ce274651f715c6349770485e9497bf' AS union_to_run_same,
       (SELECT md5(idset_to_bytea(idset_agg(g) & idset_agg(g + 1))) FROM generate_series(0, 200000, 2) g) = '076933ff9904d1110d896e2c525e39e5' AS empty_and_same;

-- memory: CRoaring allocates outside PostgreSQL, so a set bounds its own size (ecrm.idset_max_memory)
SHOW ecrm.idset_max_memory;
SELECT idset_range(0, 1099511627775);
SET ecrm.idset_max_memory = '1MB';
SELECT idset_cardinality(idset_range(0, 800000000)) AS within_the_bound;
SELECT idset_range(0, 900000000);
SELECT '{0-400000000,500000000-900000000}'::idset;
SELECT idset_cardinality(idset_agg(g)) AS dense_million FROM generate_series(0, 999999) g;
SELECT idset_agg(g * 65536) FROM generate_series(0, 99999) g;
SELECT idset(array_agg(g * 65536)) FROM generate_series(0, 99999::bigint) g;
SELECT idset_cardinality(a) AS a, idset_cardinality(b) AS b
  FROM (SELECT idset_agg(g * 65536) FROM generate_series(0, 7999) g) x(a),
       (SELECT idset_agg(g * 65536) FROM generate_series(8000, 15999) g) y(b);
SELECT idset_cardinality(a | b) FROM (SELECT idset_agg(g * 65536) FROM generate_series(0, 7999) g) x(a),
                                    (SELECT idset_agg(g * 65536) FROM generate_series(8000, 15999) g) y(b);
SET ecrm.idset_max_memory = '100kB';
RESET ecrm.idset_max_memory;

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
-- binary I/O (the type's send and receive functions) through COPY in binary format
CREATE TEMP TABLE io_src (n int, s idset);
INSERT INTO io_src VALUES (1, '{}'), (2, '{1-5}'), (3, '{0,1099511627776}'),
    (4, (SELECT idset_agg(g * 7) FROM generate_series(0, 200000) g)), (5, NULL);
\copy io_src TO '/tmp/ecrm_regress_idset_io.bin' WITH (FORMAT binary)
CREATE TEMP TABLE io_dst (n int, s idset);
\copy io_dst FROM '/tmp/ecrm_regress_idset_io.bin' WITH (FORMAT binary)
\! rm -f /tmp/ecrm_regress_idset_io.bin
SELECT a.n, b.s IS NOT DISTINCT FROM a.s AS same, idset_cardinality(b.s) AS ids
  FROM io_src a JOIN io_dst b USING (n) ORDER BY n;
