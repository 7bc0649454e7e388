-- damerau_levenshtein's fast paths (common prefix and suffix dropped, the distance-one check, the banded
-- bounded matrix with its early exit, the stack and the sorted-alphabet paths) against a plain
-- implementation of the same distance (Lowrance-Wagner, unrestricted: transposed characters may be edited
-- again) on random pairs: equal strings, empty strings, one to four random edits (insertions, deletions,
-- substitutions, adjacent transpositions), unrelated strings, ASCII and not (accents, CJK, emoji), short and
-- long (over 64 characters: the matrix and the alphabet no longer on the stack).  With a bound the result
-- must be LEAST(distance, bound + 1), as documented.
CREATE FUNCTION pg_temp.dl_ref(s text, t text) RETURNS int LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
    a text[] := coalesce(string_to_array(s, NULL), '{}');
    b text[] := coalesce(string_to_array(t, NULL), '{}');
    la int := cardinality(a);
    lb int := cardinality(b);
    w int := lb + 2;                                   -- d(i, j) is d[(i + 1) * w + j + 2]
    big int := la + lb;
    d int[] := array_fill(0, ARRAY[(la + 2) * (lb + 2)]);
    alphabet text[] := ARRAY(SELECT DISTINCT c FROM unnest(a || b) c);
    da int[] := array_fill(0, ARRAY[greatest(cardinality(alphabet), 1)]);
    db int; k int; l int; cost int;
BEGIN
    d[1] := big;
    FOR i IN 0..la LOOP d[(i + 1) * w + 1] := big; d[(i + 1) * w + 2] := i; END LOOP;
    FOR j IN 0..lb LOOP d[j + 2] := big; d[w + j + 2] := j; END LOOP;
    FOR i IN 1..la LOOP
        db := 0;
        FOR j IN 1..lb LOOP
            k := da[array_position(alphabet, b[j])];
            l := db;
            IF a[i] = b[j] THEN cost := 0; db := j; ELSE cost := 1; END IF;
            d[(i + 1) * w + j + 2] := least(d[i * w + j + 1] + cost, d[(i + 1) * w + j + 1] + 1, d[i * w + j + 2] + 1,
                                            d[k * w + l + 1] + (i - k - 1) + 1 + (j - l - 1));
        END LOOP;
        da[array_position(alphabet, a[i])] := i;
    END LOOP;
    RETURN d[(la + 1) * w + lb + 2];
END $$;
CREATE FUNCTION pg_temp.rand_string(chars text[], len int) RETURNS text LANGUAGE sql VOLATILE AS $$
    SELECT coalesce(string_agg(chars[1 + floor(random() * cardinality(chars))::int], ''), '') FROM generate_series(1, len)
$$;
-- n random edits of s with characters from chars
CREATE FUNCTION pg_temp.mutate(s text, chars text[], n int) RETURNS text LANGUAGE plpgsql VOLATILE AS $$
DECLARE c text[] := coalesce(string_to_array(s, NULL), '{}'); p int; op int;
BEGIN
    FOR e IN 1..n LOOP
        op := floor(random() * 4)::int;
        p := 1 + floor(random() * greatest(cardinality(c), 1))::int;
        IF op = 0 OR cardinality(c) = 0 THEN              -- insert
            c := c[1:p - 1] || pg_temp.rand_string(chars, 1) || c[p:];
        ELSIF op = 1 THEN                                  -- delete
            c := c[1:p - 1] || c[p + 1:];
        ELSIF op = 2 THEN                                  -- substitute
            c[p] := pg_temp.rand_string(chars, 1);
        ELSIF p < cardinality(c) THEN                      -- swap neighbours
            c := c[1:p - 1] || c[p + 1] || c[p] || c[p + 2:];
        END IF;
    END LOOP;
    RETURN array_to_string(c, '');
END $$;
SELECT setseed(0.15);
CREATE TEMP TABLE dl_pairs AS
SELECT g, kind, a, b, pg_temp.dl_ref(a, b) AS ref
  FROM (SELECT g, kind, a,
               CASE kind WHEN 'equal' THEN a WHEN 'empty' THEN '' WHEN 'unrelated' THEN pg_temp.rand_string(chars, len2)
                         ELSE pg_temp.mutate(a, chars, 1 + g % 4) END AS b
          FROM (SELECT g, chars, (ARRAY['equal', 'empty', 'unrelated', 'edited', 'edited', 'edited'])[1 + g % 6] AS kind,
                       pg_temp.rand_string(chars, len1) AS a, len2
                  FROM (SELECT g, CASE (g / 6) % 5 WHEN 0 THEN '{a,b}'::text[] WHEN 1 THEN '{a,b,c,d}' WHEN 2 THEN '{a,b,c,d,e,f,g,h,i,j}'
                                            WHEN 3 THEN '{é,e,ö,o,ß}' ELSE '{中,文,a,😀,é}' END AS chars,
                               CASE WHEN g % 97 = 0 THEN 65 + g % 30 ELSE floor(random() * 13)::int END AS len1,
                               CASE WHEN g % 97 = 0 THEN 65 + g % 23 ELSE floor(random() * 13)::int END AS len2
                          FROM generate_series(0, 2999) g) x) y) z;
-- what the pairs cover
SELECT kind, count(*) AS pairs, count(*) FILTER (WHERE a ~ '[^\x01-\x7f]' OR b ~ '[^\x01-\x7f]') AS not_ascii,
       count(*) FILTER (WHERE length(a) > 64 OR length(b) > 64) AS long, min(ref) AS min_distance, max(ref) AS max_distance
  FROM dl_pairs GROUP BY kind ORDER BY kind;
-- transpositions count one edit, also when the swapped characters are edited again (unrestricted)
SELECT ecrm.damerau_levenshtein('ca', 'abc') AS ca_abc, pg_temp.dl_ref('ca', 'abc') AS ref_ca_abc,
       ecrm.damerau_levenshtein('ab', 'ba') AS ab_ba, ecrm.damerau_levenshtein('abcdef', 'badcfe') AS three_swaps;
-- unbounded: the distance itself, both ways round
SELECT count(*) AS pairs, count(*) FILTER (WHERE ecrm.damerau_levenshtein(a, b) <> ref) AS mismatches,
       count(*) FILTER (WHERE ecrm.damerau_levenshtein(b, a) <> ref) AS mismatches_swapped
  FROM dl_pairs;
-- bounded: LEAST(distance, bound + 1) for every bound from 0 to 8
SELECT count(*) AS checks, count(*) FILTER (WHERE ecrm.damerau_levenshtein(a, b, m) <> least(ref, m + 1)) AS mismatches,
       count(*) FILTER (WHERE ecrm.damerau_levenshtein(b, a, m) <> least(ref, m + 1)) AS mismatches_swapped,
       count(*) FILTER (WHERE ref > m) AS beyond_the_bound
  FROM dl_pairs, generate_series(0, 8) m;
-- the comparison levels use the bounded distance with their largest threshold
SELECT count(*) AS pairs,
       count(*) FILTER (WHERE ecrm.comparison_level(a, b, 'damerau_levenshtein', '{1,3}')
                        <> CASE WHEN a = b THEN 3 WHEN ref <= 1 THEN 2 WHEN ref <= 3 THEN 1 ELSE 0 END) AS mismatches
  FROM dl_pairs WHERE a !~ '^\s*$' AND b !~ '^\s*$';
