-- Identity-resolution kernel: normalisers, similarity, comparison levels, Fellegi-Sunter weights and EM,
-- the union-find aggregate. Edge inputs: NULL, empty, Unicode, huge, malformed.
\pset null '(null)'
\set SHOW_CONTEXT never

-- names: case, accents, punctuation, titles, suffixes, particles
SELECT n, ecrm.normalize_name(n) AS normalized, ecrm.normalize_name(n, false) AS with_particles FROM (VALUES
    ('Mr. Jean-Pierre O''Brien Jr.'), ('Van der Berg'), ('de Jong'), ('Ludwig van Beethoven'), ('Müller'), ('MUELLER'),
    ('José María  García-López'), ('Ærøskøbing'), ('Łukasz Żółć'), ('Nguyễn Thị Minh'), ('ПЕТРОВ Иван'), ('Ｔｏｍ'),
    ('O’Neill'), ('Dr'), ('van'), ('Dr. de'), ('Prof. Dr. Anna Schmidt PhD'), ('  '), (''), ('---'), ('李小龍')) v(n);
SELECT ecrm.normalize_name(NULL);
SELECT length(ecrm.normalize_name(repeat('ab ', 100000))) AS long_name;
SELECT ecrm.normalize_name(repeat('x', 2000000));

-- addresses: abbreviations one way
SELECT a, ecrm.normalize_address(a) FROM (VALUES
    ('12 North Main Street, Apt. 4'), ('12 N. Main St #4'), ('Hauptstraße 5'), ('Hauptstr. 5'), ('Berliner Straße 10'),
    ('No. 5 Baker St.'), ('221B Baker Street'), ('1600 Pennsylvania Avenue NW'), ('Flat 3, 10 Crescent Road'),
    ('Rue de la Paix'), (''), ('...')) v(a);

-- postal codes
SELECT c, ecrm.normalize_postal_code(c) FROM (VALUES ('sw1a 1aa'), ('75008'), ('12345-6789'), ('D-10115'), ('  '), ('ß'),
    (repeat('1', 65))) v(c);

-- dates in many spellings
SELECT v, o, ecrm.normalize_date(v, o) FROM (VALUES
    ('2024-03-05', 'DMY'), ('20240305', 'DMY'), ('05/03/2024', 'DMY'), ('05/03/2024', 'MDY'), ('13/05/2024', 'MDY'),
    ('5.3.84', 'DMY'), ('84-03-05', 'YMD'), ('March 5th, 2024', 'DMY'), ('5. Mär 2024', 'DMY'), ('1 janvier 1999', 'DMY'),
    ('Tue, 5 Mar 2024', 'DMY'), ('2024-03-05T10:00:00Z', 'DMY'), ('29/02/2023', 'DMY'), ('29/02/2024', 'DMY'),
    ('2024-13-01', 'DMY'), ('31/04/2024', 'DMY'), ('foo', 'DMY'), ('', 'DMY'), ('5 Foo 2024', 'DMY'),
    ('1/2/3/4', 'DMY'), ('99999999', 'DMY'), (repeat('1', 200), 'DMY')) x(v, o);
SELECT ecrm.normalize_date('2024-03-05');
SELECT ecrm.normalize_date('05/03/2024', 'XYZ');

-- folding, soundex, email keys
SELECT ecrm.fold('Ærøskøbing Straße ÉCOLE'), ecrm.fold(''), ecrm.fold('Ǆemal');
SELECT n, ecrm.soundex(n) FROM (VALUES ('Robert'), ('Rupert'), ('Rubin'), ('Ashcraft'), ('Tymczak'), ('Pfister'), ('Müller'),
    ('Mueller'), ('O''Hara'), ('Lee'), ('123'), (''), ('Иван')) v(n);
SELECT e, ecrm.email_key(e) FROM (VALUES ('John.Smith84+shop@Example.com'), ('j.s@x.com'), ('not an email'), ('Ann-Marie_99@x.org')) v(e);

-- similarity: the textbook pairs
SELECT a, b, round(ecrm.jaro(a, b)::numeric, 4) AS jaro, round(ecrm.jaro_winkler(a, b)::numeric, 4) AS jw,
       ecrm.damerau_levenshtein(a, b) AS dl, round(ecrm.token_set_similarity(a, b)::numeric, 4) AS tokens
  FROM (VALUES ('MARTHA', 'MARHTA'), ('DWAYNE', 'DUANE'), ('DIXON', 'DICKSONX'), ('CRATE', 'TRACE'), ('ca', 'abc'),
               ('kitten', 'sitting'), ('', ''), ('', 'abc'), ('a', 'a'), ('a', 'b'), ('Müller', 'Muller'),
               ('Zoë', 'Zoe'), ('北京市', '北京'), ('Acme Gardens Ltd', 'ltd  ACME gardens'), ('a b c', 'c d')) v(a, b);
SELECT ecrm.jaro_winkler('MARTHA', 'MARHTA', 0.25), ecrm.jaro_winkler('MARTHA', 'MARHTA', 0);
SELECT ecrm.jaro_winkler('a', 'b', 0.3);
SELECT ecrm.jaro_winkler('a', 'b', 'NaN');
SELECT ecrm.jaro(NULL, 'a'), ecrm.jaro_winkler('a', NULL), ecrm.damerau_levenshtein(NULL, 'a');
-- the early exit returns max_distance + 1 once exceeded
SELECT ecrm.damerau_levenshtein('kitten', 'sitting', 5), ecrm.damerau_levenshtein('kitten', 'sitting', 2),
       ecrm.damerau_levenshtein('abcdefghij', 'zyxwvutsrq', 1), ecrm.damerau_levenshtein('short', repeat('x', 1900), 3),
       ecrm.damerau_levenshtein('ab', 'ba', 0);
SELECT ecrm.damerau_levenshtein('a', 'b', -1);
SELECT ecrm.damerau_levenshtein(repeat('a', 2001), 'a');
SELECT ecrm.jaro(repeat('a', 10001), 'a');
SELECT round(ecrm.jaro_winkler(repeat('ab', 4000), repeat('ba', 4000))::numeric, 4) AS long_jw;
SELECT round(ecrm.numeric_closeness(10, 12, 10)::numeric, 2), ecrm.numeric_closeness(1, 1, 1), ecrm.numeric_closeness(0, 100, 10),
       ecrm.numeric_closeness('NaN', 1, 1), ecrm.numeric_closeness('Infinity', 'Infinity', 1);
SELECT ecrm.numeric_closeness(1, 2, 0);
SELECT ecrm.date_closeness('2024-01-01', '2024-01-11', 20), ecrm.date_closeness('2024-01-01', 'infinity', 20),
       ecrm.date_closeness('infinity', 'infinity', 1);
SELECT ecrm.date_closeness('2024-01-01', '2024-01-11', 0);

-- comparison levels: -1 missing, 0 different, ..., top = exact
SELECT k, t, a, b, ecrm.comparison_level(a, b, k, t::double precision[]) AS level, ecrm.comparison_level_count(k, t::double precision[]) AS levels
  FROM (VALUES ('exact', '{}', 'x', 'x'), ('exact', '{}', 'x', 'y'), ('exact', '{}', NULL, 'y'), ('exact', '{}', '  ', 'y'),
               ('jaro_winkler', '{0.92,0.8}', 'martha', 'martha'), ('jaro_winkler', '{0.92,0.8}', 'martha', 'marhta'),
               ('jaro_winkler', '{0.92,0.8}', 'dixon', 'dicksonx'), ('jaro_winkler', '{0.92,0.8}', 'abc', 'xyz'),
               ('jaro', '{0.9}', 'martha', 'marhta'), ('token_set', '{0.5}', 'a b c', 'c b'),
               ('damerau_levenshtein', '{1,2}', '7535316', '7535361'), ('damerau_levenshtein', '{1,2}', '7535316', '7525361'),
               ('damerau_levenshtein', '{1,2}', '7535316', '1111111'),
               ('numeric', '{1,5}', '10', '10.0'), ('numeric', '{1,5}', '10', '14'), ('numeric', '{1,5}', '10', 'abc'),
               ('date', '{365}', '19300213', '1930-02-13'), ('date', '{365}', '19300213', '19300218'),
               ('date', '{365}', '1930-02-13', '1930-13-02'), ('date', '{365}', '1930-02-13', '1930-05-13'),
               ('date', '{365}', '1930-02-13', '1935-02-13'), ('date', '{365}', 'never', '1935-02-13')) v(k, t, a, b);
SELECT ecrm.comparison_level('2024-03-05'::date, '2024-05-03'::date, 'date'), ecrm.comparison_level('2024-03-05'::date, NULL::date, 'date'),
       ecrm.comparison_level('2024-03-05'::date, '2024-03-05'::date, 'exact'), ecrm.comparison_level('2024-03-05'::date, '2024-03-15'::date, 'date', '{30}');
SELECT ecrm.comparison_level(1.0::float8, 1.5::float8, 'numeric', '{1}'), ecrm.comparison_level('NaN'::float8, 1::float8, 'numeric', '{1}');
SELECT ecrm.comparison_level('a', 'b', 'soundex');
SELECT ecrm.comparison_level('a', 'b', NULL);
SELECT ecrm.comparison_level('a', 'b', 'jaro_winkler', '{0.8,0.9}');
SELECT ecrm.comparison_level('a', 'b', 'jaro_winkler', '{1.5}');
SELECT ecrm.comparison_level('a', 'b', 'damerau_levenshtein', '{}');
SELECT ecrm.comparison_level('a', 'b', 'damerau_levenshtein', '{1.5}');
SELECT ecrm.comparison_level('a', 'b', 'exact', '{1}');
SELECT ecrm.comparison_level('a', 'b', 'jaro', '{0.9,0.8,0.7,0.6,0.5,0.4,0.3,0.2,0.1}');
SELECT ecrm.comparison_level('a', 'b', 'jaro', '{{0.9}}');
SELECT ecrm.comparison_level('a', 'b', 'jaro', '{0.9,NULL}');
SELECT ecrm.comparison_level(1::float8, 2::float8, 'jaro');

-- match weights and probabilities
SELECT ecrm.level_weights('{{0.1,0.9},{0.2,0.8}}', '{{0.9,0.1},{0.9,0.1}}') AS weights;
SELECT round(ecrm.match_weight('{1,-1}', ecrm.level_weights('{{0.1,0.9},{0.2,0.8}}', '{{0.9,0.1},{0.9,0.1}}'), 0.5)::numeric, 6) AS w,
       ecrm.match_probability(0), ecrm.match_probability(3), ecrm.match_probability(-1e6), ecrm.match_probability(1e6);
SELECT ecrm.match_weight('{1}', '{{0,1}}', 0);
SELECT ecrm.match_weight('{1}', '{{0,1}}', 1.5);
SELECT ecrm.match_weight('{2}', '{{0,1}}', 0.5);
SELECT ecrm.match_weight('{1,1}', '{{0,1}}', 0.5);
SELECT ecrm.match_weight('{1}', '{0,1}', 0.5);
SELECT ecrm.match_weight('{1}', '{{0,NULL}}', 0.5);
SELECT ecrm.match_probability('NaN');
SELECT ecrm.level_weights('{{0.1,1.5}}', '{{0.9,0.1}}');
SELECT ecrm.level_weights('{{0.1,0.9}}', '{{0.9,0.1},{0.9,0.1}}');

-- EM: two comparisons, counts of four patterns; u fixed, then free
SELECT round(m[1][2]::numeric, 3) AS m1, round(m[2][2]::numeric, 3) AS m2, round(lambda::numeric, 3) AS lambda, converged
  FROM ecrm.fs_em('{{1,1},{0,0},{1,0},{0,1}}', '{100,1000,20,30}', '{{0.1,0.9},{0.2,0.8}}', '{{0.9,0.1},{0.9,0.1}}', 0.1);
SELECT round(u[1][2]::numeric, 3) AS u1, round(lambda::numeric, 3) AS lambda, converged
  FROM ecrm.fs_em('{{1,1},{0,0},{1,0},{0,1}}', '{100,1000,20,30}', '{{0.1,0.9},{0.2,0.8}}', '{{0.9,0.1},{0.9,0.1}}', 0.1, false);
-- a missing level is no evidence: the comparison keeps its m
SELECT m[2][2] AS untouched FROM ecrm.fs_em('{{1,-1},{0,-1}}', '{10,90}', '{{0.1,0.9},{0.2,0.8}}', '{{0.9,0.1},{0.9,0.1}}', 0.1);
SELECT * FROM ecrm.fs_em('{{1,1}}', '{1}', '{{0.1,0.9}}', '{{0.9,0.1}}', 0.1);
SELECT * FROM ecrm.fs_em('{{2}}', '{1}', '{{0.1,0.9}}', '{{0.9,0.1}}', 0.1);
SELECT * FROM ecrm.fs_em('{{1}}', '{-1}', '{{0.1,0.9}}', '{{0.9,0.1}}', 0.1);
SELECT * FROM ecrm.fs_em('{{1}}', '{1,2}', '{{0.1,0.9}}', '{{0.9,0.1}}', 0.1);
SELECT * FROM ecrm.fs_em('{{1}}', '{1}', '{{0,1}}', '{{0.9,0.1}}', 0.1);
SELECT * FROM ecrm.fs_em('{{1}}', '{1}', '{{0.1,0.9}}', '{{0.9,0.1}}', 1);
SELECT * FROM ecrm.fs_em('{{1}}', '{1}', '{{0.1,0.9}}', '{{0.9,0.1}}', 0.1, true, 0);

-- connected components: every node, components named by their smallest node
SELECT ecrm.connected_components(a, b) FROM (VALUES (5, 2), (3, 4), (2, 9), (7, 7), (NULL, 8)) v(a, b);
SELECT c.* FROM ecrm.components((SELECT ecrm.connected_components(a, b, p >= 0.9)
                                   FROM (VALUES (1, 2, 0.95), (2, 3, 0.5), (3, 4, 0.99), (5, 6, NULL)) v(a, b, p))) c;
SELECT ecrm.connected_components(a, b) FROM (SELECT 1::bigint, 2::bigint WHERE false) v(a, b);
SELECT count(*) AS nodes, count(DISTINCT component) AS components
  FROM ecrm.components((SELECT ecrm.connected_components(g, g + 1, g % 100 <> 0) FROM generate_series(1, 100000) g));
SELECT * FROM ecrm.components('{1,2}');
SELECT * FROM ecrm.components('{}');
-- the aggregate runs in parallel: partial states combined (serialised) in the leader
CREATE TABLE edges AS SELECT g::bigint AS a, (g + 1)::bigint AS b FROM generate_series(1, 200000) g WHERE g % 1000 <> 0;
ANALYZE edges;
SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0; SET max_parallel_workers_per_gather = 2;
EXPLAIN (COSTS OFF) SELECT ecrm.connected_components(a, b) FROM edges;
SELECT count(*) AS nodes, count(DISTINCT component) AS components, min(component), max(component)
  FROM ecrm.components((SELECT ecrm.connected_components(a, b) FROM edges));
RESET parallel_setup_cost; RESET parallel_tuple_cost; RESET min_parallel_table_scan_size; RESET max_parallel_workers_per_gather;
DROP TABLE edges;
