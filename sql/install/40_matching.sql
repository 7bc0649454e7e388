
------------------------------------------------------------------------------
-- Identity resolution (issue 4).
--   Kernel (C): normalisers for names, addresses, postal codes and dates;
--   similarity (Jaro, Jaro-Winkler, Damerau-Levenshtein, token sets, numeric
--   and date closeness); comparison levels; Fellegi-Sunter weights and EM;
--   a union-find aggregate for clusters.
--   Models: comparisons + blocking keys, trained by EM in the database,
--   applied to any table with an integer id.
--   CRM: the customer model, real-time resolution on upsert, dedupe runs
--   with a review queue, merges with survivorship and a ledger that makes
--   every merge exactly undoable.
------------------------------------------------------------------------------

------------------------------------------------------------------------------
-- Normalisation (src/normalize_person.c, src/normalize.c)
------------------------------------------------------------------------------
CREATE FUNCTION ecrm.normalize_name(name text, drop_particles boolean DEFAULT true) RETURNS text
    AS 'MODULE_PATHNAME', 'ecrm_normalize_name'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.normalize_name(text, boolean) IS
    'A person name for matching: lower case, accents and punctuation removed (O''Brien -> obrien, Jean-Pierre -> jean pierre), titles (Mr, Dr) and suffixes (Jr, III) dropped, and unless drop_particles is false the particles van, de, von, ... too (never the last word); NULL when nothing is left';

CREATE FUNCTION ecrm.normalize_address(address text) RETURNS text
    AS 'MODULE_PATHNAME', 'ecrm_normalize_address'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.normalize_address(text) IS
    'A street address line for matching: folded like a name, street types, directions and unit words abbreviated one way (Street/St./Str./Straße -> st, Avenue -> ave, North -> n, Apartment -> apt), Hauptstraße -> hauptstr, "No." before a number dropped; NULL when nothing is left';

CREATE FUNCTION ecrm.normalize_postal_code(postal_code text) RETURNS text
    AS 'MODULE_PATHNAME', 'ecrm_normalize_postal_code'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.normalize_postal_code(text) IS
    'A postal code for matching: ASCII letters in upper case and digits only (sw1a 1aa -> SW1A1AA); NULL when none is left or the text is longer than 64 bytes';

CREATE FUNCTION ecrm.normalize_date(value text, field_order text DEFAULT 'DMY') RETURNS date
    AS 'MODULE_PATHNAME', 'ecrm_normalize_date'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.normalize_date(text, text) IS
    'A date written in any common way: ISO 2024-03-05 (a time after it is ignored), 20240305, 5/3/2024 read in field_order (DMY, MDY or YMD; swapped when only that is a date), month names in English, German, French, Spanish, Italian and Dutch (5 March 2024, Mar 5th, 2024); two-digit years 00-29 are 20xx, 30-99 19xx; NULL when it is not a date';

CREATE FUNCTION ecrm.fold(value text) RETURNS text
    AS 'MODULE_PATHNAME', 'ecrm_fold'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.fold(text) IS
    'Text folded for matching: lower case, accents removed, ligatures spelled out (Ærøskøbing -> aeroskobing, Straße -> strasse); in a database whose encoding is not UTF-8 only ASCII is folded';

CREATE FUNCTION ecrm.soundex(name text) RETURNS text
    AS 'MODULE_PATHNAME', 'ecrm_soundex'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.soundex(text) IS
    'American Soundex of the letters of a name after folding (Müller, Mueller -> M460); NULL when it has no letter. A blocking key';

CREATE FUNCTION ecrm.email_key(email text) RETURNS text
    AS 'MODULE_PATHNAME', 'ecrm_email_key'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.email_key(text) IS
    'The letters of the local part of a normalised email address, without digits, punctuation or +tag (John.Smith84+shop@x.com -> johnsmith); NULL when not an email or shorter than 3 letters. A blocking key';

------------------------------------------------------------------------------
-- Similarity (src/similarity.c)
------------------------------------------------------------------------------
CREATE FUNCTION ecrm.jaro(a text, b text) RETURNS double precision
    AS 'MODULE_PATHNAME', 'ecrm_jaro'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.jaro(text, text) IS
    'Jaro similarity of two strings, 0 to 1, over Unicode characters (1 for two equal or two empty strings); at most 10000 characters each';

CREATE FUNCTION ecrm.jaro_winkler(a text, b text, prefix_scale double precision DEFAULT 0.1) RETURNS double precision
    AS 'MODULE_PATHNAME', 'ecrm_jaro_winkler'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.jaro_winkler(text, text, double precision) IS
    'Jaro-Winkler similarity, 0 to 1: Jaro raised by prefix_scale (0 to 0.25) for each of up to 4 leading characters in common, when Jaro is above 0.7; at most 10000 characters each';

CREATE FUNCTION ecrm.damerau_levenshtein(a text, b text) RETURNS integer
    AS 'MODULE_PATHNAME', 'ecrm_damerau_levenshtein'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.damerau_levenshtein(text, text) IS
    'Damerau-Levenshtein edit distance (insertions, deletions, substitutions, transpositions of adjacent characters; unrestricted, Lowrance-Wagner) over Unicode characters; at most 2000 characters each';

CREATE FUNCTION ecrm.damerau_levenshtein(a text, b text, max_distance integer) RETURNS integer
    AS 'MODULE_PATHNAME', 'ecrm_damerau_levenshtein'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.damerau_levenshtein(text, text, integer) IS
    'Damerau-Levenshtein distance with an early exit: the distance when it is at most max_distance, else max_distance + 1 (computed only as far as needed)';

CREATE FUNCTION ecrm.token_set_similarity(a text, b text) RETURNS double precision
    AS 'MODULE_PATHNAME', 'ecrm_token_set_similarity'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.token_set_similarity(text, text) IS
    'Jaccard similarity of the sets of words (letters and digits, case and accents folded) of two texts, 0 to 1: word order and repeats do not matter (multi-word fields such as company names and addresses)';

CREATE FUNCTION ecrm.numeric_closeness(a double precision, b double precision, max_difference double precision)
    RETURNS double precision
    AS 'MODULE_PATHNAME', 'ecrm_numeric_closeness'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.numeric_closeness(double precision, double precision, double precision) IS
    '1 for equal numbers, falling linearly to 0 at max_difference apart; NULL for NaN';

CREATE FUNCTION ecrm.date_closeness(a date, b date, max_days integer) RETURNS double precision
    AS 'MODULE_PATHNAME', 'ecrm_date_closeness'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.date_closeness(date, date, integer) IS
    '1 for the same day, falling linearly to 0 at max_days apart';

-- Not strict: a missing value is level -1 (no evidence), not NULL.
CREATE FUNCTION ecrm.comparison_level(a text, b text, kind text, thresholds double precision[] DEFAULT '{}')
    RETURNS smallint
    AS 'MODULE_PATHNAME', 'ecrm_comparison_level'
    LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.comparison_level(text, text, text, double precision[]) IS
    'Fellegi-Sunter comparison level of two values: -1 when either is NULL or blank (no evidence), the top level for equal values, then one level per threshold, 0 for different. Kinds: exact; jaro_winkler, jaro, token_set (similarity thresholds, descending); damerau_levenshtein (distances, ascending); numeric (differences, ascending); date (a level for one-digit typos and day/month swaps, then days apart, ascending)';

CREATE FUNCTION ecrm.comparison_level(a date, b date, kind text, thresholds double precision[] DEFAULT '{}')
    RETURNS smallint
    AS 'MODULE_PATHNAME', 'ecrm_comparison_level_date'
    LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.comparison_level(date, date, text, double precision[]) IS
    'Comparison level of two dates (kind date or exact); -1 when either is NULL';

CREATE FUNCTION ecrm.comparison_level(a double precision, b double precision, kind text,
                                      thresholds double precision[] DEFAULT '{}')
    RETURNS smallint
    AS 'MODULE_PATHNAME', 'ecrm_comparison_level_float8'
    LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.comparison_level(double precision, double precision, text, double precision[]) IS
    'Comparison level of two numbers (kind numeric or exact); -1 when either is NULL or NaN';

CREATE FUNCTION ecrm.comparison_level_count(kind text, thresholds double precision[] DEFAULT '{}') RETURNS integer
    AS 'MODULE_PATHNAME', 'ecrm_comparison_level_count'
    LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.comparison_level_count(text, double precision[]) IS
    'Number of levels (missing not counted) of a comparison kind with these thresholds; validates them';

------------------------------------------------------------------------------
-- Fellegi-Sunter (src/fellegi_sunter.c)
------------------------------------------------------------------------------
CREATE FUNCTION ecrm.match_weight(gamma smallint[], level_weights double precision[], prior double precision)
    RETURNS double precision
    AS 'MODULE_PATHNAME', 'ecrm_match_weight'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.match_weight(smallint[], double precision[], double precision) IS
    'Match weight of a comparison vector: log2(prior / (1 - prior)) plus the weight of each comparison at its level, from level_weights[comparison][level + 1] (log2 m/u, see ecrm.level_weights); a level of -1 (missing) adds nothing';

CREATE FUNCTION ecrm.match_probability(match_weight double precision) RETURNS double precision
    AS 'MODULE_PATHNAME', 'ecrm_match_probability'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.match_probability(double precision) IS
    'Match probability of a match weight: 1 / (1 + 2^-weight)';

CREATE FUNCTION ecrm.level_weights(m double precision[], u double precision[]) RETURNS double precision[]
    AS 'MODULE_PATHNAME', 'ecrm_level_weights'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.level_weights(double precision[], double precision[]) IS
    'log2(m / u) of every level: m and u are comparisons x levels matrices of probabilities, NULL where a comparison has fewer levels';

CREATE FUNCTION ecrm.fs_em(patterns smallint[], counts double precision[], m_init double precision[],
                           u_init double precision[], lambda_init double precision,
                           fix_u boolean DEFAULT true, max_iterations integer DEFAULT 100,
                           tolerance double precision DEFAULT 1e-6,
                           OUT m double precision[], OUT u double precision[], OUT lambda double precision,
                           OUT iterations integer, OUT converged boolean, OUT log_likelihood double precision)
    AS 'MODULE_PATHNAME', 'ecrm_fs_em'
    LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.fs_em(smallint[], double precision[], double precision[], double precision[], double precision, boolean, integer, double precision) IS
    'Expectation-maximisation for the Fellegi-Sunter model: fits m (and u unless fix_u) and lambda, the share of matches, to distinct comparison vectors (patterns, one row each, -1 = missing) and how often each occurs (counts)';

------------------------------------------------------------------------------
-- Clusters (src/cluster.c)
------------------------------------------------------------------------------
CREATE FUNCTION ecrm._cc_trans(internal, bigint, bigint) RETURNS internal
    AS 'MODULE_PATHNAME', 'ecrm_cc_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION ecrm._cc_trans(internal, bigint, bigint, boolean) RETURNS internal
    AS 'MODULE_PATHNAME', 'ecrm_cc_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION ecrm._cc_combine(internal, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'ecrm_cc_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION ecrm._cc_serialize(internal) RETURNS bytea
    AS 'MODULE_PATHNAME', 'ecrm_cc_serialize' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION ecrm._cc_deserialize(bytea, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'ecrm_cc_deserialize' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION ecrm._cc_final(internal) RETURNS bigint[]
    AS 'MODULE_PATHNAME', 'ecrm_cc_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE AGGREGATE ecrm.connected_components(bigint, bigint) (
    SFUNC = ecrm._cc_trans, STYPE = internal, FINALFUNC = ecrm._cc_final,
    COMBINEFUNC = ecrm._cc_combine, SERIALFUNC = ecrm._cc_serialize, DESERIALFUNC = ecrm._cc_deserialize,
    PARALLEL = SAFE);
COMMENT ON AGGREGATE ecrm.connected_components(bigint, bigint) IS
    'Connected components of the graph whose edges are the rows (union-find): a {node, component} bigint array ordered by node, a component named by its smallest node; ecrm.components() turns it into rows';

CREATE AGGREGATE ecrm.connected_components(bigint, bigint, boolean) (
    SFUNC = ecrm._cc_trans, STYPE = internal, FINALFUNC = ecrm._cc_final,
    COMBINEFUNC = ecrm._cc_combine, SERIALFUNC = ecrm._cc_serialize, DESERIALFUNC = ecrm._cc_deserialize,
    PARALLEL = SAFE);
COMMENT ON AGGREGATE ecrm.connected_components(bigint, bigint, boolean) IS
    'Connected components at a threshold: every node seen is in the result, an edge joins its nodes only when the third argument is true (connected_components(l, r, probability >= 0.9))';

CREATE FUNCTION ecrm.components(components bigint[]) RETURNS TABLE (node bigint, component bigint)
    AS 'MODULE_PATHNAME', 'ecrm_components'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE ROWS 1000;
COMMENT ON FUNCTION ecrm.components(bigint[]) IS
    'The rows (node, component) of a connected_components result';

------------------------------------------------------------------------------
-- Match models: comparisons and blocking keys over the columns of a table,
-- with m and u per comparison level, trained in the database.
------------------------------------------------------------------------------
CREATE TABLE ecrm.match_model (
    model_id             bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    name                 text NOT NULL UNIQUE CHECK (name ~ '^[a-z][a-z0-9_]{0,62}$'),
    comparisons          jsonb NOT NULL CHECK (jsonb_typeof(comparisons) = 'array'),
    blocking             jsonb NOT NULL CHECK (jsonb_typeof(blocking) = 'array'),
    prior                double precision NOT NULL DEFAULT 0.0001 CHECK (prior > 0 AND prior < 1),
    review_threshold     double precision NOT NULL DEFAULT 0.8,
    auto_merge_threshold double precision NOT NULL DEFAULT 0.99,
    max_block_size       integer NOT NULL DEFAULT 1000 CHECK (max_block_size BETWEEN 2 AND 1000000),
    trained_at           timestamptz,
    training             jsonb NOT NULL DEFAULT '{}',
    description          text,
    builtin              boolean NOT NULL DEFAULT false,
    created_at           timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT match_model_thresholds_chk CHECK (review_threshold > 0 AND auto_merge_threshold < 1
                                                 AND review_threshold <= auto_merge_threshold)
);
COMMENT ON TABLE ecrm.match_model IS
    'Fellegi-Sunter match models: comparisons (name, SQL expression over a row, kind, thresholds, m and u per level), blocking keys (SQL expressions; two rows are compared when any key is equal), the prior and the review and auto-merge thresholds';
COMMENT ON COLUMN ecrm.match_model.comparisons IS
    'JSON array of {"name", "expression", "kind", "thresholds", "m", "u"}; m[i] and u[i] are the probabilities of level i (0 = different, last = exact) among matches and non-matches';
COMMENT ON COLUMN ecrm.match_model.blocking IS
    'JSON array of blocking-key SQL expressions over a row: only pairs with an equal, non-null key are compared';
COMMENT ON COLUMN ecrm.match_model.prior IS 'Probability that two rows drawn at random are a match (lambda)';
COMMENT ON COLUMN ecrm.match_model.review_threshold IS 'Match probability from which a pair goes to the review queue';
COMMENT ON COLUMN ecrm.match_model.auto_merge_threshold IS 'Match probability from which a pair is merged without review';
COMMENT ON COLUMN ecrm.match_model.max_block_size IS 'A blocking key shared by more rows than this is skipped (it would compare too many pairs); see the training and run statistics';

-- Default m and u of a comparison with n levels: matches mostly agree exactly, non-matches mostly differ.
CREATE FUNCTION ecrm._default_mu(n integer, OUT m double precision[], OUT u double precision[])
    LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    WITH lv AS (
        SELECT l,
               CASE WHEN l = n - 1 THEN 0.8 WHEN l > 0 THEN 0.15 / 2 ^ (n - 1 - l) END AS m,
               CASE WHEN l = n - 1 THEN 0.01 WHEN l > 0 THEN 0.01 * 2 ^ (n - 1 - l) END AS u
          FROM generate_series(0, n - 1) l)
    SELECT array_agg(CASE WHEN l = 0 THEN 1 - (SELECT sum(x.m) FROM lv x WHERE x.l > 0) ELSE lv.m END ORDER BY l),
           array_agg(CASE WHEN l = 0 THEN 1 - (SELECT sum(x.u) FROM lv x WHERE x.l > 0) ELSE lv.u END ORDER BY l)
      FROM lv
$$;

-- A probability vector of a comparison from JSON: n numbers in (0, 1) summing to 1.
CREATE FUNCTION ecrm._check_probabilities(v jsonb, n integer, what text) RETURNS double precision[]
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    a double precision[];
BEGIN
    IF jsonb_typeof(v) <> 'array' OR jsonb_array_length(v) <> n
       OR EXISTS (SELECT FROM jsonb_array_elements(v) e WHERE jsonb_typeof(e) <> 'number') THEN
        RAISE EXCEPTION '% must be an array of % probabilities, one per level', what, n
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT array_agg(e::double precision ORDER BY o) INTO a FROM jsonb_array_elements_text(v) WITH ORDINALITY x(e, o);
    IF EXISTS (SELECT FROM unnest(a) p WHERE NOT (p > 0 AND p < 1)) OR abs((SELECT sum(p) FROM unnest(a) p) - 1) > 1e-6 THEN
        RAISE EXCEPTION '% must be probabilities strictly between 0 and 1 that sum to 1, not %', what, v::text
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN a;
END
$$;

-- The SQL expression of a blocking entry: a string, or the "key" of {"key", "involves"}.
CREATE FUNCTION ecrm._blocking_key(b jsonb) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
    RETURN CASE jsonb_typeof(b) WHEN 'string' THEN b #>> '{}'
                                WHEN 'object' THEN CASE WHEN jsonb_typeof(b -> 'key') = 'string' THEN b ->> 'key' END END;

-- Validate comparisons and blocking keys; fill in levels and default m and u.
CREATE FUNCTION ecrm._check_model(comparisons jsonb, blocking jsonb) RETURNS jsonb
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    c      jsonb;
    res    jsonb := '[]';
    i      int := 0;
    n      int;
    thr    double precision[];
    dm     double precision[];
    du     double precision[];
    names  text[] := '{}';
    nm     text;
BEGIN
    IF comparisons IS NULL OR jsonb_typeof(comparisons) <> 'array' OR jsonb_array_length(comparisons) = 0 THEN
        RAISE EXCEPTION 'comparisons must be a non-empty JSON array of {"name", "expression", "kind", "thresholds"} objects'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF jsonb_array_length(comparisons) > 64 THEN
        RAISE EXCEPTION 'a model has at most 64 comparisons, not %', jsonb_array_length(comparisons)
            USING ERRCODE = 'program_limit_exceeded';
    END IF;
    IF blocking IS NULL OR jsonb_typeof(blocking) <> 'array' OR jsonb_array_length(blocking) = 0
       OR EXISTS (SELECT FROM jsonb_array_elements(blocking) b
                   WHERE ecrm._blocking_key(b) IS NULL OR btrim(ecrm._blocking_key(b)) = '' OR length(ecrm._blocking_key(b)) > 1000
                      OR (jsonb_typeof(b) = 'object' AND (b - 'key' - 'involves' <> '{}'
                          OR (b ? 'involves' AND (jsonb_typeof(b -> 'involves') <> 'array'
                              OR EXISTS (SELECT FROM jsonb_array_elements(b -> 'involves') x WHERE jsonb_typeof(x) <> 'string')))))) THEN
        RAISE EXCEPTION 'blocking must be a non-empty JSON array of SQL key expressions: strings of 1 to 1000 characters, or {"key": expression, "involves": [comparison names]}'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF EXISTS (SELECT FROM jsonb_array_elements(blocking) b, jsonb_array_elements_text(b -> 'involves') x
                WHERE jsonb_typeof(b) = 'object'
                  AND NOT EXISTS (SELECT FROM jsonb_array_elements(comparisons) cc WHERE cc ->> 'name' = x)) THEN
        RAISE EXCEPTION 'blocking "involves" names a comparison the model does not have' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF jsonb_array_length(blocking) > 20 THEN
        RAISE EXCEPTION 'a model has at most 20 blocking keys, not %', jsonb_array_length(blocking)
            USING ERRCODE = 'program_limit_exceeded';
    END IF;
    FOR c IN SELECT e FROM jsonb_array_elements(comparisons) e LOOP
        i := i + 1;
        IF jsonb_typeof(c) <> 'object' THEN
            RAISE EXCEPTION 'comparison % must be a JSON object, not %', i, jsonb_typeof(c) USING ERRCODE = 'invalid_parameter_value';
        END IF;
        nm := c ->> 'name';
        IF nm IS NULL OR nm !~ '^[a-z][a-z0-9_]{0,62}$' THEN
            RAISE EXCEPTION 'comparison % needs a "name" of lower-case letters, digits and _', i USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF nm = ANY (names) THEN
            RAISE EXCEPTION 'comparison name "%" is used twice', nm USING ERRCODE = 'invalid_parameter_value';
        END IF;
        names := names || nm;
        IF jsonb_typeof(c -> 'expression') IS DISTINCT FROM 'string' OR btrim(c ->> 'expression') = ''
           OR length(c ->> 'expression') > 1000 THEN
            RAISE EXCEPTION 'comparison "%" needs an "expression" (SQL over a row, 1 to 1000 characters)', nm
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF jsonb_typeof(c -> 'kind') IS DISTINCT FROM 'string' THEN
            RAISE EXCEPTION 'comparison "%" needs a "kind"', nm USING ERRCODE = 'invalid_parameter_value',
                HINT = 'Use exact, jaro_winkler, jaro, damerau_levenshtein, token_set, numeric or date.';
        END IF;
        IF c ? 'thresholds' AND jsonb_typeof(c -> 'thresholds') <> 'null' AND
           (jsonb_typeof(c -> 'thresholds') <> 'array'
            OR EXISTS (SELECT FROM jsonb_array_elements(c -> 'thresholds') t WHERE jsonb_typeof(t) <> 'number')) THEN
            RAISE EXCEPTION 'thresholds of comparison "%" must be an array of numbers', nm USING ERRCODE = 'invalid_parameter_value';
        END IF;
        thr := coalesce((SELECT array_agg(t::double precision ORDER BY o)
                           FROM jsonb_array_elements_text(c -> 'thresholds') WITH ORDINALITY x(t, o)), '{}');
        n := ecrm.comparison_level_count(c ->> 'kind', thr);
        SELECT d.m, d.u INTO dm, du FROM ecrm._default_mu(n) d;
        IF c ? 'm' THEN
            dm := ecrm._check_probabilities(c -> 'm', n, format('m of comparison "%s"', nm));
        END IF;
        IF c ? 'u' THEN
            du := ecrm._check_probabilities(c -> 'u', n, format('u of comparison "%s"', nm));
        END IF;
        res := res || jsonb_build_object('name', nm, 'expression', c ->> 'expression', 'kind', c ->> 'kind',
                                         'thresholds', to_jsonb(thr), 'levels', n,
                                         'm', to_jsonb(dm), 'u', to_jsonb(du));
    END LOOP;
    RETURN res;
END
$$;

CREATE FUNCTION ecrm._model(model text) RETURNS ecrm.match_model
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    r ecrm.match_model;
BEGIN
    SELECT * INTO r FROM ecrm.match_model m WHERE m.name = model;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'match model "%" does not exist', coalesce(left(model, 100), 'NULL')
            USING ERRCODE = 'no_data_found',
                  HINT = format('Models: %s.', (SELECT string_agg(m.name, ', ' ORDER BY m.name) FROM ecrm.match_model m));
    END IF;
    RETURN r;
END
$$;

CREATE FUNCTION ecrm._check_thresholds(review_threshold double precision, auto_merge_threshold double precision) RETURNS void
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    IF review_threshold IS NULL OR NOT (review_threshold > 0 AND review_threshold < 1) THEN
        RAISE EXCEPTION 'review_threshold must be a probability strictly between 0 and 1, not %', coalesce(review_threshold::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF auto_merge_threshold IS NULL OR NOT (auto_merge_threshold > 0 AND auto_merge_threshold < 1) THEN
        RAISE EXCEPTION 'auto_merge_threshold must be a probability strictly between 0 and 1, not %', coalesce(auto_merge_threshold::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF review_threshold > auto_merge_threshold THEN
        RAISE EXCEPTION 'review_threshold (%) must not be above auto_merge_threshold (%)', review_threshold, auto_merge_threshold
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
END
$$;

CREATE FUNCTION ecrm.create_match_model(name text, comparisons jsonb, blocking jsonb,
                                        prior double precision DEFAULT 0.0001,
                                        review_threshold double precision DEFAULT 0.8,
                                        auto_merge_threshold double precision DEFAULT 0.99,
                                        max_block_size integer DEFAULT 1000,
                                        description text DEFAULT NULL) RETURNS bigint
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    id bigint;
BEGIN
    IF name IS NULL OR name !~ '^[a-z][a-z0-9_]{0,62}$' THEN
        RAISE EXCEPTION 'model name must be 1 to 63 lower-case letters, digits and _, starting with a letter, not "%"', left(coalesce(name, 'NULL'), 100)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF EXISTS (SELECT FROM ecrm.match_model m WHERE m.name = create_match_model.name) THEN
        RAISE EXCEPTION 'match model "%" already exists', name USING ERRCODE = 'duplicate_object';
    END IF;
    IF prior IS NULL OR NOT (prior > 0 AND prior < 1) THEN
        RAISE EXCEPTION 'prior must be a probability strictly between 0 and 1, not %', coalesce(prior::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM ecrm._check_thresholds(review_threshold, auto_merge_threshold);
    PERFORM ecrm._check_between(max_block_size, 2, 1000000, 'max_block_size');
    INSERT INTO ecrm.match_model AS m (name, comparisons, blocking, prior, review_threshold, auto_merge_threshold,
                                       max_block_size, description)
    VALUES (create_match_model.name, ecrm._check_model(comparisons, blocking), blocking, prior, review_threshold,
            auto_merge_threshold, max_block_size, description)
    RETURNING m.model_id INTO id;
    RETURN id;
END
$$;
COMMENT ON FUNCTION ecrm.create_match_model(text, jsonb, jsonb, double precision, double precision, double precision, integer, text) IS
    'Create a match model from comparisons (JSON array of {"name", "expression", "kind", "thresholds"[, "m", "u"]}) and blocking keys (JSON array of SQL expressions); untrained m and u get defaults. Returns the model id';

CREATE FUNCTION ecrm.set_match_thresholds(model text, review_threshold double precision,
                                          auto_merge_threshold double precision) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    PERFORM ecrm._model(model);
    PERFORM ecrm._check_thresholds(review_threshold, auto_merge_threshold);
    UPDATE ecrm.match_model m SET review_threshold = set_match_thresholds.review_threshold,
                                  auto_merge_threshold = set_match_thresholds.auto_merge_threshold
     WHERE m.name = model;
END
$$;
COMMENT ON FUNCTION ecrm.set_match_thresholds(text, double precision, double precision) IS
    'Set the match probabilities from which a pair of a model goes to the review queue and from which it is merged automatically';

CREATE FUNCTION ecrm.drop_match_model(model text) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    IF (ecrm._model(model)).builtin THEN
        RAISE EXCEPTION 'match model "%" is built in and cannot be dropped', model USING ERRCODE = 'invalid_parameter_value';
    END IF;
    DELETE FROM ecrm.match_model m WHERE m.name = model;
END
$$;
COMMENT ON FUNCTION ecrm.drop_match_model(text) IS 'Drop a match model (not the built-in customer model) with its review queue entries';

-- The m or u matrix (comparisons x levels, NULL-padded) of a model's comparisons.
CREATE FUNCTION ecrm._mu_matrix(comparisons jsonb, which text) RETURNS double precision[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT array_agg(row_vals ORDER BY i)
      FROM (SELECT c.i, (SELECT array_agg((c.v -> which ->> l)::double precision ORDER BY l)
                           FROM generate_series(0, w.maxl - 1) l) AS row_vals
              FROM jsonb_array_elements(comparisons) WITH ORDINALITY c(v, i),
                   (SELECT max((x ->> 'levels')::int) AS maxl FROM jsonb_array_elements(comparisons) x) w) s
$$;

CREATE FUNCTION ecrm._weights(comparisons jsonb) RETURNS double precision[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
    RETURN ecrm.level_weights(ecrm._mu_matrix(comparisons, 'm'), ecrm._mu_matrix(comparisons, 'u'));

-- SQL that computes the features (c1..cn) and blocking keys (k1..kn) of every row of a source;
-- with_keys false leaves out the keys, keys_only true the features.
CREATE FUNCTION ecrm._features_sql(model ecrm.match_model, source text, id_expr text, with_keys boolean DEFAULT true,
                                   keys_only boolean DEFAULT false) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT format('SELECT (%s)::bigint AS id%s%s FROM %s',
                  id_expr,
                  CASE WHEN NOT keys_only THEN ', ' || (SELECT string_agg(format('(%s) AS c%s', c ->> 'expression', i), ', ' ORDER BY i)
                                                         FROM jsonb_array_elements(model.comparisons) WITH ORDINALITY x(c, i)) ELSE '' END,
                  CASE WHEN with_keys OR keys_only THEN ', ' || (SELECT string_agg(format('(%s)::text AS k%s', ecrm._blocking_key(b), i), ', ' ORDER BY i)
                                                                  FROM jsonb_array_elements(model.blocking) WITH ORDINALITY x(b, i)) ELSE '' END,
                  source)
$$;

-- SQL of the comparison vector of rows l and r of a features table.
CREATE FUNCTION ecrm._gamma_sql(model ecrm.match_model, l text DEFAULT 'l', r text DEFAULT 'r') RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT format('ARRAY[%s]::smallint[]',
                  string_agg(format('ecrm.comparison_level(%s.c%s, %s.c%s, %L, %L::double precision[])',
                                    l, i, r, i, c ->> 'kind', translate(coalesce(c -> 'thresholds', '[]')::text, '[]', '{}')
                                    ), ', ' ORDER BY i))
      FROM jsonb_array_elements(model.comparisons) WITH ORDINALITY x(c, i)
$$;

-- Column names an SQL expression refers to (identifiers that are neither functions, types, nor keywords).
CREATE FUNCTION ecrm._expression_columns(expression text) RETURNS text[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT coalesce(array_agg(DISTINCT t), '{}')
      FROM (SELECT m[2] AS t
              FROM regexp_matches(regexp_replace(expression, '''([^'']|'''')*''', '', 'g'),
                                  '(::\s*|\.)?([A-Za-z_][A-Za-z0-9_]*)(\s*\()?', 'g') m
             WHERE m[1] IS NULL AND m[3] IS NULL) x
     WHERE lower(t) NOT IN ('and', 'or', 'not', 'null', 'true', 'false', 'case', 'when', 'then', 'else', 'end',
                            'is', 'in', 'as', 'distinct', 'from', 'ecrm', 'pg_catalog', 'date', 'text', 'integer',
                            'int', 'bigint', 'numeric', 'interval', 'timestamp', 'timestamptz', 'collate', 'like',
                            'ilike', 'between', 'similar', 'to', 'at', 'time', 'zone', 'varchar', 'char')
$$;

-- Drop work tables of an earlier call in this transaction (they are ON COMMIT DROP).
CREATE FUNCTION ecrm._drop_temp(names text[]) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY names LOOP
        IF to_regclass('pg_temp.' || t) IS NOT NULL THEN
            EXECUTE format('DROP TABLE pg_temp.%I', t);
        END IF;
    END LOOP;
END
$$;

-- Build a features table and the candidate pairs of a model over a source, with their comparison vectors.
-- Leaves pg_temp._ecrm_feat (id, c1..), pg_temp._ecrm_keys (id, k1..) and pg_temp._ecrm_pairs
-- (id_l, id_r, rules, gamma), where rules has bit i - 1 set when key i agrees; returns statistics.
CREATE FUNCTION ecrm._build_pairs(model ecrm.match_model, source text, id_expr text) RETURNS jsonb
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET jit = off AS
$$
DECLARE
    nkeys   int := jsonb_array_length(model.blocking);
    agree   text[];
    parts   text[] := '{}';
    skipped jsonb;
    n       bigint;
    nrows   bigint;
BEGIN
    PERFORM ecrm._drop_temp('{_ecrm_feat,_ecrm_keys,_ecrm_pairs,_ecrm_pid,_ecrm_big}');
    -- features and keys in two narrow tables: the joins read only the keys
    EXECUTE 'CREATE TEMP TABLE _ecrm_feat ON COMMIT DROP AS ' || ecrm._features_sql(model, source, id_expr, false);
    GET DIAGNOSTICS nrows = ROW_COUNT;
    EXECUTE 'CREATE TEMP TABLE _ecrm_keys ON COMMIT DROP AS ' || ecrm._features_sql(model, source, id_expr, true, true);
    RAISE DEBUG 'ecrm: features of % rows computed at %', nrows, clock_timestamp();
    IF EXISTS (SELECT FROM pg_temp._ecrm_keys f WHERE f.id IS NULL) THEN
        RAISE EXCEPTION 'the id of every row must be a non-null integer' USING ERRCODE = 'null_value_not_allowed';
    END IF;

    -- Key values shared by more rows than max_block_size would compare too many pairs: skip them.
    -- Such values are among the most common values ANALYZE finds (a large sample per key); their
    -- counts are then checked exactly in one pass.
    FOR i IN 1 .. nkeys LOOP
        EXECUTE format('ALTER TABLE pg_temp._ecrm_keys ALTER COLUMN k%s SET STATISTICS 1000', i);
    END LOOP;
    ANALYZE pg_temp._ecrm_keys;
    CREATE TEMP TABLE _ecrm_big ON COMMIT DROP AS
    SELECT substr(s.attname, 2)::int AS key, v.val
      FROM pg_stats s,
           LATERAL (SELECT x::text AS val, f FROM unnest(s.most_common_vals::text::text[], s.most_common_freqs) y(x, f)) v
     WHERE s.schemaname = (SELECT nspname FROM pg_namespace WHERE oid = pg_my_temp_schema())
       AND s.tablename = '_ecrm_keys' AND s.attname ~ '^k[0-9]+$'
       AND v.f * nrows > model.max_block_size / 2.0;
    IF EXISTS (SELECT FROM pg_temp._ecrm_big) THEN
        EXECUTE format('CREATE TEMP TABLE _ecrm_bigcount ON COMMIT DROP AS
                        SELECT b.key, b.val, count(*) AS n FROM pg_temp._ecrm_keys f, LATERAL (VALUES %s) v(key, val)
                          JOIN pg_temp._ecrm_big b ON b.key = v.key AND b.val = v.val
                         GROUP BY b.key, b.val',
                       (SELECT string_agg(format('(%s, f.k%s)', i, i), ', ') FROM generate_series(1, nkeys) i));
        DELETE FROM pg_temp._ecrm_big b
         WHERE NOT EXISTS (SELECT FROM pg_temp._ecrm_bigcount c WHERE c.key = b.key AND c.val = b.val AND c.n > model.max_block_size);
        DROP TABLE pg_temp._ecrm_bigcount;
    END IF;
    SELECT coalesce(jsonb_agg(jsonb_build_object('key', b.key, 'values_skipped', b.n) ORDER BY b.key), '[]') INTO skipped
      FROM (SELECT x.key, count(*) AS n FROM pg_temp._ecrm_big x GROUP BY x.key) b;
    RAISE DEBUG 'ecrm: blocking keys checked at %', clock_timestamp();

    -- the pairs of ids: one join per key on (id, key); rules collects the keys that found a pair
    FOR i IN 1 .. nkeys LOOP
        parts := parts || format('SELECT l.id AS id_l, r.id AS id_r, %s AS bit FROM pg_temp._ecrm_keys l
                                    JOIN pg_temp._ecrm_keys r ON l.k%s = r.k%s AND l.id < r.id %s',
                                 1 << (i - 1), i, i,
                                 CASE WHEN EXISTS (SELECT FROM pg_temp._ecrm_big x WHERE x.key = i)
                                      THEN format('WHERE l.k%1$s NOT IN (SELECT x.val FROM pg_temp._ecrm_big x WHERE x.key = %1$s)', i)
                                      ELSE '' END);
    END LOOP;
    EXECUTE 'CREATE TEMP TABLE _ecrm_pid ON COMMIT DROP AS SELECT id_l, id_r, bit_or(bit) AS rules FROM ('
            || array_to_string(parts, ' UNION ALL ') || ') u GROUP BY id_l, id_r';
    RAISE DEBUG 'ecrm: candidate pairs found at %', clock_timestamp();
    -- then their comparison vectors
    EXECUTE format('CREATE TEMP TABLE _ecrm_pairs ON COMMIT DROP AS
                    SELECT p.id_l, p.id_r, p.rules, %s AS gamma
                      FROM pg_temp._ecrm_pid p JOIN pg_temp._ecrm_feat l ON l.id = p.id_l JOIN pg_temp._ecrm_feat r ON r.id = p.id_r',
                   ecrm._gamma_sql(model));
    GET DIAGNOSTICS n = ROW_COUNT;
    RAISE DEBUG 'ecrm: % candidate pairs compared at %', n, clock_timestamp();
    RETURN jsonb_build_object('rows', nrows, 'candidate_pairs', n, 'skipped_keys', skipped);
END
$$;

-- Estimate u from random pairs of pg_temp._ecrm_feat (a seeded sample of rows, all pairs among them).
CREATE FUNCTION ecrm._estimate_u(model ecrm.match_model, random_pairs bigint, seed integer) RETURNS jsonb
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET jit = off AS
$$
DECLARE
    nrows  bigint := (SELECT count(*) FROM pg_temp._ecrm_feat);
    k      bigint := least(nrows, ceil(sqrt(2.0 * random_pairs) + 1)::bigint);
    comps  jsonb := model.comparisons;
    res    jsonb := '[]';
    c      jsonb;
    i      int := 0;
    total  double precision;
    cnt    double precision[];
    n      int;
BEGIN
    PERFORM ecrm._drop_temp('{_ecrm_sample,_ecrm_upat}');
    CREATE TEMP TABLE _ecrm_sample ON COMMIT DROP AS
    SELECT * FROM pg_temp._ecrm_feat f ORDER BY hashint8extended(f.id, seed), f.id LIMIT k;
    EXECUTE format('CREATE TEMP TABLE _ecrm_upat ON COMMIT DROP AS
                    SELECT %s AS gamma, count(*)::double precision AS n
                      FROM pg_temp._ecrm_sample l JOIN pg_temp._ecrm_sample r ON l.id < r.id GROUP BY 1',
                   ecrm._gamma_sql(model));
    FOR c IN SELECT e FROM jsonb_array_elements(comps) e LOOP
        i := i + 1;
        n := (c ->> 'levels')::int;
        SELECT array_agg(coalesce(s.cnt, 0) ORDER BY l) INTO cnt
          FROM generate_series(0, n - 1) l
          LEFT JOIN (SELECT p.gamma[i] AS lv, sum(p.n) AS cnt FROM pg_temp._ecrm_upat p GROUP BY 1) s ON s.lv = l;
        total := (SELECT sum(x) FROM unnest(cnt) x);
        IF total > 0 THEN
            -- Laplace smoothing: a level never seen among random pairs gets about 1 / pairs
            c := jsonb_set(c, '{u}', (SELECT to_jsonb(array_agg((x + 1) / (total + n) ORDER BY o))
                                        FROM unnest(cnt) WITH ORDINALITY y(x, o)));
        END IF;
        res := res || c;
    END LOOP;
    RETURN jsonb_build_object('comparisons', res, 'sample_rows', k,
                              'random_pairs', (SELECT sum(p.n) FROM pg_temp._ecrm_upat p));
END
$$;

-- Train m by EM on each blocking key's pairs of pg_temp._ecrm_pairs, with u fixed and the comparisons
-- the key involves left out (their agreement is forced by the key, so it says nothing there); each m is
-- the mean over the sessions that did not block on its comparison.
CREATE FUNCTION ecrm._estimate_m(model ecrm.match_model, max_iterations integer) RETURNS jsonb
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET jit = off AS
$$
DECLARE
    comps    jsonb := model.comparisons;
    ncomp    int := jsonb_array_length(comps);
    nkeys    int := jsonb_array_length(model.blocking);
    m0       double precision[] := ecrm._mu_matrix(comps, 'm');
    u0       double precision[] := ecrm._mu_matrix(comps, 'u');
    nlev     int := array_length(m0, 2);
    mm       double precision[] := m0;
    msum     double precision[] := array_fill(0::double precision, ARRAY[ncomp, nlev]);
    mcnt     int[] := array_fill(0, ARRAY[ncomp]);
    involved bool[];
    keycols  text[];
    mask     text;
    pats     smallint[];
    cnts     double precision[];
    npairs   double precision;
    em       record;
    sessions jsonb := '[]';
BEGIN
    FOR k IN 1 .. nkeys LOOP
        CONTINUE WHEN NOT EXISTS (SELECT FROM pg_temp._ecrm_pairs p WHERE p.rules & (1 << (k - 1)) <> 0);
        -- the comparisons a key involves: those it names, else those over a column the key uses
        IF model.blocking -> (k - 1) ? 'involves' THEN
            SELECT array_agg((model.blocking -> (k - 1) -> 'involves') ? (c ->> 'name') ORDER BY o) INTO involved
              FROM jsonb_array_elements(comps) WITH ORDINALITY x(c, o);
        ELSE
            keycols := ecrm._expression_columns(ecrm._blocking_key(model.blocking -> (k - 1)));
            SELECT array_agg(ecrm._expression_columns(c ->> 'expression') && keycols ORDER BY o) INTO involved
              FROM jsonb_array_elements(comps) WITH ORDINALITY x(c, o);
        END IF;
        IF NOT (false = ANY (involved)) THEN
            sessions := sessions || jsonb_build_object('key', k, 'trained', false);
            CONTINUE;
        END IF;
        mask := (SELECT format('ARRAY[%s]::smallint[]',
                               string_agg(CASE WHEN involved[o] THEN '-1' ELSE format('p.gamma[%s]', o) END, ', ' ORDER BY o))
                   FROM generate_series(1, ncomp) o);
        -- array_agg over arrays gives the two-dimensional patterns array
        EXECUTE format('SELECT array_agg(g ORDER BY g), array_agg(n ORDER BY g), sum(n)
                          FROM (SELECT %s AS g, count(*)::double precision AS n FROM pg_temp._ecrm_pairs p
                                 WHERE p.rules & %s <> 0 GROUP BY 1) s', mask, 1 << (k - 1))
            INTO pats, cnts, npairs;
        -- u is estimated too: inside a block non-matches agree more often than random pairs do
        SELECT * INTO em FROM ecrm.fs_em(pats, cnts, m0, u0, 0.1, false, max_iterations);
        FOR c IN 1 .. ncomp LOOP
            CONTINUE WHEN involved[c];
            mcnt[c] := mcnt[c] + 1;
            FOR l IN 1 .. nlev LOOP
                msum[c][l] := msum[c][l] + coalesce(em.m[c][l], 0);
            END LOOP;
        END LOOP;
        sessions := sessions || jsonb_build_object(
            'key', k, 'trained', true, 'pairs', npairs, 'lambda', round(em.lambda::numeric, 6),
            'iterations', em.iterations, 'converged', em.converged,
            'left_out', (SELECT coalesce(jsonb_agg(comps -> (o - 1) ->> 'name' ORDER BY o), '[]')
                           FROM generate_series(1, ncomp) o WHERE involved[o]));
    END LOOP;
    FOR c IN 1 .. ncomp LOOP
        CONTINUE WHEN mcnt[c] = 0;
        FOR l IN 1 .. nlev LOOP
            IF m0[c][l] IS NOT NULL THEN
                mm[c][l] := greatest(msum[c][l] / mcnt[c], 1e-9);
            END IF;
        END LOOP;
    END LOOP;
    RETURN jsonb_build_object('m', to_jsonb(mm), 'sessions', sessions,
                              'untrained', (SELECT coalesce(jsonb_agg(comps -> (c - 1) ->> 'name'), '[]')
                                              FROM generate_series(1, ncomp) c WHERE mcnt[c] = 0));
END
$$;

-- Which rows a model runs over: a relation with an integer id column, or for the customer model
-- by default the active customer profiles.
CREATE FUNCTION ecrm._source(model ecrm.match_model, relation regclass, id_column name,
                             OUT source text, OUT id_expr text)
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    col name := coalesce(id_column, 'id');
BEGIN
    IF relation IS NULL THEN
        IF model.name <> 'customer' THEN
            RAISE EXCEPTION 'relation must not be null for model "%"', model.name USING ERRCODE = 'null_value_not_allowed',
                HINT = 'Only the customer model runs over the CRM''s profiles by default.';
        END IF;
        source := '(SELECT * FROM ecrm.customer_profile WHERE status = ''active'') src';
        id_expr := 'customer_id';
        RETURN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = relation AND a.attname = col AND a.attnum > 0
                                                AND NOT a.attisdropped) THEN
        RAISE EXCEPTION 'column "%" of relation % does not exist', col, relation USING ERRCODE = 'undefined_column',
            HINT = 'Name the integer id column with id_column.';
    END IF;
    IF NOT has_table_privilege(relation, 'SELECT') THEN
        RAISE EXCEPTION 'permission denied for relation %', relation USING ERRCODE = 'insufficient_privilege';
    END IF;
    source := format('%s src', relation);
    id_expr := format('src.%I', col);
END
$$;

-- The prior: matches expected among candidate pairs (EM on lambda alone, m and u fixed) over all pairs.
CREATE FUNCTION ecrm._estimate_prior(model ecrm.match_model, nrows bigint, OUT prior double precision,
                                     OUT expected_matches double precision)
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    w      double precision[] := ecrm._weights(model.comparisons);
    lam    double precision := 0.1;
    prev   double precision;
    npairs double precision;
BEGIN
    PERFORM ecrm._drop_temp('{_ecrm_bf}');
    CREATE TEMP TABLE _ecrm_bf ON COMMIT DROP AS
    SELECT power(2::double precision, least(ecrm.match_weight(p.gamma, w, 0.5), 1000)) AS bf, count(*)::double precision AS n
      FROM pg_temp._ecrm_pairs p GROUP BY p.gamma;
    npairs := (SELECT sum(b.n) FROM pg_temp._ecrm_bf b);
    IF coalesce(npairs, 0) = 0 OR nrows < 2 THEN
        prior := model.prior;
        expected_matches := 0;
        RETURN;
    END IF;
    FOR i IN 1 .. 500 LOOP
        prev := lam;
        lam := (SELECT sum(b.n * lam * b.bf / (lam * b.bf + 1 - lam)) FROM pg_temp._ecrm_bf b) / npairs;
        lam := least(greatest(lam, 1e-12), 1 - 1e-12);
        EXIT WHEN abs(lam - prev) < 1e-9;
    END LOOP;
    expected_matches := lam * npairs;
    prior := least(greatest(expected_matches / (nrows * (nrows - 1) / 2.0), 1e-12), 0.5);
END
$$;

-- An integer argument within bounds, or an error that names it.
CREATE FUNCTION ecrm._check_between(value bigint, lo bigint, hi bigint, what text) RETURNS void
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    IF value IS NULL OR value NOT BETWEEN lo AND hi THEN
        RAISE EXCEPTION '% must be between % and %, not %', what, lo, hi, coalesce(value::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
END
$$;

CREATE FUNCTION ecrm._check_training_args(random_pairs bigint, max_iterations integer) RETURNS void
    LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT ecrm._check_between(random_pairs, 1000, 100000000, 'random_pairs');
    SELECT ecrm._check_between(max_iterations, 1, 10000, 'max_iterations');
$$;

CREATE FUNCTION ecrm.train_match_model(model text, relation regclass DEFAULT NULL, id_column name DEFAULT NULL,
                                       random_pairs bigint DEFAULT 1000000, max_iterations integer DEFAULT 100,
                                       seed integer DEFAULT 42) RETURNS jsonb
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET jit = off AS
$$
DECLARE
    mdl    ecrm.match_model := ecrm._model(model);
    src    record;
    stats  jsonb;
    us     jsonb;
    ms     jsonb;
    pr     record;
    t0     timestamptz := clock_timestamp();
BEGIN
    PERFORM ecrm._check_training_args(random_pairs, max_iterations);
    IF seed IS NULL THEN
        RAISE EXCEPTION 'seed must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    src := ecrm._source(mdl, relation, id_column);
    stats := ecrm._build_pairs(mdl, src.source, src.id_expr);
    -- u from random pairs, then m by EM on the candidate pairs, then the prior
    us := ecrm._estimate_u(mdl, random_pairs, seed);
    mdl.comparisons := us -> 'comparisons';
    ms := ecrm._estimate_m(mdl, max_iterations);
    mdl.comparisons := (SELECT jsonb_agg(jsonb_set(c, '{m}',
                                   (SELECT to_jsonb(array_agg(x ORDER BY l))
                                      FROM jsonb_array_elements_text(ms -> 'm' -> (o - 1)::int) WITH ORDINALITY y(x, l)
                                     WHERE l <= (c ->> 'levels')::int)) ORDER BY o)
                          FROM jsonb_array_elements(mdl.comparisons) WITH ORDINALITY z(c, o));
    -- rows normalised again (they are means of normalised rows, up to rounding)
    mdl.comparisons := ecrm._check_model(
        (SELECT jsonb_agg(jsonb_set(c, '{m}', (SELECT to_jsonb(array_agg(x::double precision / s.t ORDER BY l))
                                                 FROM jsonb_array_elements_text(c -> 'm') WITH ORDINALITY y(x, l),
                                                      (SELECT sum(v::double precision) AS t FROM jsonb_array_elements_text(c -> 'm') v) s))
                   ORDER BY o)
           FROM jsonb_array_elements(mdl.comparisons) WITH ORDINALITY z(c, o)), mdl.blocking);
    pr := ecrm._estimate_prior(mdl, (stats ->> 'rows')::bigint);
    stats := stats || jsonb_build_object('method', 'em', 'sample_rows', us -> 'sample_rows', 'random_pairs', us -> 'random_pairs',
                                         'sessions', ms -> 'sessions', 'untrained', ms -> 'untrained',
                                         'prior', pr.prior, 'expected_matches', round(pr.expected_matches::numeric, 1),
                                         'seconds', round(extract(epoch FROM clock_timestamp() - t0)::numeric, 3));
    UPDATE ecrm.match_model m SET comparisons = mdl.comparisons, prior = pr.prior, trained_at = now(), training = stats
     WHERE m.model_id = mdl.model_id;
    RETURN stats;
END
$$;
COMMENT ON FUNCTION ecrm.train_match_model(text, regclass, name, bigint, integer, integer) IS
    'Train a match model without labels, inside the database: u from random pairs (a seeded sample), m by expectation-maximisation on each blocking key''s candidate pairs (leaving out the comparisons the key forces to agree), the prior from the expected number of matches. The relation defaults to the active customer profiles for the customer model. Returns training statistics';

CREATE FUNCTION ecrm.train_match_model_labelled(model text, labels regclass, relation regclass DEFAULT NULL,
                                                id_column name DEFAULT NULL, random_pairs bigint DEFAULT 1000000,
                                                seed integer DEFAULT 42) RETURNS jsonb
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET jit = off AS
$$
DECLARE
    mdl     ecrm.match_model := ecrm._model(model);
    src     record;
    stats   jsonb;
    us      jsonb;
    pr      record;
    nmatch  bigint;
    comps   jsonb := '[]';
    c       jsonb;
    i       int := 0;
    n       int;
    cnt     double precision[];
    total   double precision;
    t0      timestamptz := clock_timestamp();
BEGIN
    PERFORM ecrm._check_training_args(random_pairs, 1);
    IF labels IS NULL THEN
        RAISE EXCEPTION 'labels must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF (SELECT count(*) FROM pg_attribute a WHERE a.attrelid = labels AND a.attname IN ('id_l', 'id_r', 'is_match')
                                             AND NOT a.attisdropped) <> 3 THEN
        RAISE EXCEPTION 'labels % must have columns id_l, id_r and is_match', labels USING ERRCODE = 'undefined_column';
    END IF;
    src := ecrm._source(mdl, relation, id_column);
    stats := ecrm._build_pairs(mdl, src.source, src.id_expr);
    us := ecrm._estimate_u(mdl, random_pairs, seed);
    mdl.comparisons := us -> 'comparisons';
    -- m: how often labelled matches are at each level
    PERFORM ecrm._drop_temp('{_ecrm_lab}');
    EXECUTE format('CREATE TEMP TABLE _ecrm_lab ON COMMIT DROP AS
                    SELECT %s AS gamma FROM %s lb
                      JOIN pg_temp._ecrm_feat l ON l.id = lb.id_l::bigint
                      JOIN pg_temp._ecrm_feat r ON r.id = lb.id_r::bigint
                     WHERE lb.is_match', ecrm._gamma_sql(mdl), labels);
    GET DIAGNOSTICS nmatch = ROW_COUNT;
    IF nmatch = 0 THEN
        RAISE EXCEPTION 'labels % hold no matching pair of rows of the relation', labels USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Label pairs (id_l, id_r) of ids of the relation, with is_match true for the pairs that are one entity.';
    END IF;
    FOR c IN SELECT e FROM jsonb_array_elements(mdl.comparisons) e LOOP
        i := i + 1;
        n := (c ->> 'levels')::int;
        SELECT array_agg(coalesce(s.cnt, 0) ORDER BY l) INTO cnt
          FROM generate_series(0, n - 1) l
          LEFT JOIN (SELECT b.gamma[i] AS lv, count(*)::double precision AS cnt FROM pg_temp._ecrm_lab b GROUP BY 1) s ON s.lv = l;
        total := (SELECT sum(x) FROM unnest(cnt) x);
        IF total > 0 THEN
            c := jsonb_set(c, '{m}', (SELECT to_jsonb(array_agg((x + 0.5) / (total + 0.5 * n) ORDER BY o))
                                        FROM unnest(cnt) WITH ORDINALITY y(x, o)));
        END IF;
        comps := comps || c;
    END LOOP;
    mdl.comparisons := comps;
    pr := ecrm._estimate_prior(mdl, (stats ->> 'rows')::bigint);
    stats := stats || jsonb_build_object('method', 'labelled', 'labelled_matches', nmatch, 'random_pairs', us -> 'random_pairs',
                                         'prior', pr.prior, 'expected_matches', round(pr.expected_matches::numeric, 1),
                                         'seconds', round(extract(epoch FROM clock_timestamp() - t0)::numeric, 3));
    UPDATE ecrm.match_model m SET comparisons = mdl.comparisons, prior = pr.prior, trained_at = now(), training = stats
     WHERE m.model_id = mdl.model_id;
    RETURN stats;
END
$$;
COMMENT ON FUNCTION ecrm.train_match_model_labelled(text, regclass, regclass, name, bigint, integer) IS
    'Train a match model from labelled pairs: m from the comparison levels of the pairs labelled is_match (a table with columns id_l, id_r, is_match), u from random pairs, the prior from the expected number of matches. Returns training statistics';

CREATE FUNCTION ecrm.predict_matches(model text, relation regclass DEFAULT NULL, id_column name DEFAULT NULL,
                                     threshold double precision DEFAULT 0.5)
    RETURNS TABLE (id_l bigint, id_r bigint, match_weight double precision, match_probability double precision,
                   gamma smallint[])
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET jit = off AS
$$
DECLARE
    mdl ecrm.match_model := ecrm._model(model);
    src record;
BEGIN
    IF threshold IS NULL OR NOT (threshold >= 0 AND threshold <= 1) THEN
        RAISE EXCEPTION 'threshold must be a probability between 0 and 1, not %', coalesce(threshold::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    src := ecrm._source(mdl, relation, id_column);
    PERFORM ecrm._build_pairs(mdl, src.source, src.id_expr);
    RETURN QUERY
    SELECT s.id_l, s.id_r, s.w, ecrm.match_probability(s.w), s.gamma
      FROM (SELECT p.id_l, p.id_r, p.gamma, ecrm.match_weight(p.gamma, w.w, mdl.prior) AS w
              FROM pg_temp._ecrm_pairs p, (SELECT ecrm._weights(mdl.comparisons) AS w) w) s
     WHERE ecrm.match_probability(s.w) >= threshold
     ORDER BY s.id_l, s.id_r;
END
$$;
COMMENT ON FUNCTION ecrm.predict_matches(text, regclass, name, double precision) IS
    'Score every candidate pair (rows sharing a blocking key) of a relation with a match model: match weight, match probability and comparison vector of the pairs at or above threshold';

CREATE FUNCTION ecrm.match_clusters(model text, relation regclass DEFAULT NULL, id_column name DEFAULT NULL,
                                    threshold double precision DEFAULT 0.5)
    RETURNS TABLE (id bigint, cluster_id bigint)
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET jit = off AS
$$
DECLARE
    mdl ecrm.match_model := ecrm._model(model);
    src record;
    w   double precision[];
BEGIN
    IF threshold IS NULL OR NOT (threshold > 0 AND threshold <= 1) THEN
        RAISE EXCEPTION 'threshold must be a probability above 0 and at most 1, not %', coalesce(threshold::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    src := ecrm._source(mdl, relation, id_column);
    PERFORM ecrm._build_pairs(mdl, src.source, src.id_expr);
    w := ecrm._weights(mdl.comparisons);
    RETURN QUERY
    SELECT c.node, c.component
      FROM ecrm.components((SELECT ecrm.connected_components(e.a, e.b, e.linked)
                              FROM (SELECT f.id AS a, f.id AS b, false AS linked FROM pg_temp._ecrm_feat f
                                    UNION ALL
                                    SELECT p.id_l, p.id_r, ecrm.match_probability(ecrm.match_weight(p.gamma, w, mdl.prior)) >= threshold
                                      FROM pg_temp._ecrm_pairs p) e)) c;
END
$$;
COMMENT ON FUNCTION ecrm.match_clusters(text, regclass, name, double precision) IS
    'Cluster the rows of a relation: connected components of the candidate pairs whose match probability is at or above threshold; every row gets a cluster id, the smallest id in its cluster';

CREATE FUNCTION ecrm._level_label(kind text, thresholds jsonb, levels integer, level integer) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT CASE
        WHEN level = -1 THEN 'missing'
        WHEN level = levels - 1 THEN 'exact'
        WHEN level = 0 THEN 'different'
        WHEN kind = 'date' AND level = levels - 2 THEN 'typo or day/month swapped'
        WHEN kind IN ('jaro_winkler', 'jaro', 'token_set') THEN format('%s >= %s', kind, thresholds ->> (levels - 2 - level))
        WHEN kind = 'damerau_levenshtein' THEN format('distance <= %s', thresholds ->> (levels - 2 - level))
        WHEN kind = 'numeric' THEN format('difference <= %s', thresholds ->> (levels - 2 - level))
        WHEN kind = 'date' THEN format('within %s days', thresholds ->> (levels - 3 - level))
    END
$$;

CREATE FUNCTION ecrm.model_weights(model text)
    RETURNS TABLE (comparison text, level integer, description text, m double precision, u double precision,
                   match_weight double precision)
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT c ->> 'name', l, ecrm._level_label(c ->> 'kind', c -> 'thresholds', (c ->> 'levels')::int, l),
           (c -> 'm' ->> l)::double precision, (c -> 'u' ->> l)::double precision,
           log(2, (c -> 'm' ->> l)::numeric / (c -> 'u' ->> l)::numeric)::double precision
      FROM jsonb_array_elements((ecrm._model(model)).comparisons) WITH ORDINALITY x(c, o),
           generate_series((c ->> 'levels')::int - 1, 0, -1) l
     ORDER BY o, l DESC
$$;
COMMENT ON FUNCTION ecrm.model_weights(text) IS
    'The parameters of a match model, one row per comparison level: m, u and the match weight log2(m/u) that a pair at that level adds';

------------------------------------------------------------------------------
-- The customer model: how ecrm compares two customer profiles.  Its m and u
-- are hand-set defaults until ecrm.train_match_model('customer') learns them
-- from the CRM's own profiles.
------------------------------------------------------------------------------
INSERT INTO ecrm.match_model (name, comparisons, blocking, prior, review_threshold, auto_merge_threshold,
                              max_block_size, description, builtin)
SELECT 'customer', ecrm._check_model(c, b), b, 0.00001, 0.8, 0.99, 1000,
       'Customer profiles of the CRM: names, email, phone, birth date and address', true
  FROM (SELECT '[
    {"name": "first_name", "expression": "ecrm.normalize_name(first_name)", "kind": "jaro_winkler", "thresholds": [0.92, 0.8],
     "m": [0.05, 0.05, 0.15, 0.75], "u": [0.93, 0.05, 0.015, 0.005]},
    {"name": "last_name", "expression": "ecrm.normalize_name(last_name)", "kind": "jaro_winkler", "thresholds": [0.92, 0.8],
     "m": [0.05, 0.05, 0.15, 0.75], "u": [0.95, 0.04, 0.007, 0.003]},
    {"name": "email", "expression": "ecrm.normalize_email(email)", "kind": "damerau_levenshtein", "thresholds": [1],
     "m": [0.6, 0.1, 0.3], "u": [0.9989, 0.001, 0.0001]},
    {"name": "phone", "expression": "phone", "kind": "damerau_levenshtein", "thresholds": [1],
     "m": [0.2, 0.05, 0.75], "u": [0.99989, 0.0001, 0.00001]},
    {"name": "birth_date", "expression": "birth_date", "kind": "date", "thresholds": [],
     "m": [0.05, 0.1, 0.85], "u": [0.9989, 0.001, 0.0001]},
    {"name": "postal_code", "expression": "ecrm.normalize_postal_code(postal_code)", "kind": "damerau_levenshtein", "thresholds": [1],
     "m": [0.15, 0.05, 0.8], "u": [0.995, 0.004, 0.001]},
    {"name": "city", "expression": "ecrm.fold(city)", "kind": "jaro_winkler", "thresholds": [0.9],
     "m": [0.15, 0.05, 0.8], "u": [0.9, 0.01, 0.09]},
    {"name": "street", "expression": "ecrm.normalize_address(street)", "kind": "token_set", "thresholds": [0.5],
     "m": [0.3, 0.2, 0.5], "u": [0.999, 0.0009, 0.0001]},
    {"name": "country", "expression": "country", "kind": "exact",
     "m": [0.05, 0.95], "u": [0.8, 0.2]}
  ]'::jsonb AS c,
  '[{"key": "ecrm.normalize_name(last_name) || ecrm.soundex(ecrm.normalize_name(first_name))",
     "involves": ["first_name", "last_name", "country"]},
    {"key": "ecrm.normalize_postal_code(postal_code) || ecrm.soundex(ecrm.normalize_name(last_name))",
     "involves": ["postal_code", "last_name", "city", "street", "country"]},
    {"key": "ecrm.normalize_postal_code(postal_code) || ecrm.soundex(ecrm.normalize_name(first_name))",
     "involves": ["postal_code", "first_name", "city", "street", "country"]},
    {"key": "ecrm.email_key(email)", "involves": ["email", "first_name", "last_name", "country"]},
    {"key": "phone", "involves": ["phone", "country"]},
    {"key": "(birth_date - DATE ''1900-01-01'')::text || ecrm.soundex(ecrm.normalize_name(first_name))",
     "involves": ["birth_date", "first_name", "country"]},
    {"key": "(birth_date - DATE ''1900-01-01'')::text || ecrm.soundex(ecrm.normalize_name(last_name))",
     "involves": ["birth_date", "last_name", "country"]}]'::jsonb AS b) d;

-- (Re)create the expression indexes on the active profiles that make the candidates of one profile an index lookup.
CREATE FUNCTION ecrm.create_blocking_indexes() RETURNS integer
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    mdl ecrm.match_model := ecrm._model('customer');
    idx text;
    n   int := 0;
BEGIN
    FOR idx IN SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                WHERE i.indrelid = 'ecrm.customer_profile'::regclass AND c.relname LIKE 'customer_profile_match_key%' LOOP
        EXECUTE format('DROP INDEX ecrm.%I', idx);
    END LOOP;
    FOR i IN 1 .. jsonb_array_length(mdl.blocking) LOOP
        EXECUTE format('CREATE INDEX %I ON ecrm.customer_profile ((%s)) WHERE status = ''active''',
                       'customer_profile_match_key' || i || '_idx', ecrm._blocking_key(mdl.blocking -> (i - 1)));
        n := n + 1;
    END LOOP;
    RETURN n;
END
$$;
COMMENT ON FUNCTION ecrm.create_blocking_indexes() IS
    'Create one expression index on the active customer profiles per blocking key of the customer model (run it after changing the keys), so that finding the candidates of one profile is an index lookup. Returns the number of indexes';
SELECT ecrm.create_blocking_indexes();

------------------------------------------------------------------------------
-- Dedupe runs, the review queue, merges and their ledger
------------------------------------------------------------------------------
CREATE TABLE ecrm.dedupe_run (
    run_id      bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    model_id    bigint NOT NULL REFERENCES ecrm.match_model ON DELETE CASCADE,
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    applied_at  timestamptz,
    stats       jsonb NOT NULL DEFAULT '{}'
);
COMMENT ON TABLE ecrm.dedupe_run IS 'Runs of ecrm.dedupe(): when, with which model, and what they found (stats) and merged (applied_at)';

CREATE TABLE ecrm.dedupe_cluster (
    run_id      bigint NOT NULL REFERENCES ecrm.dedupe_run ON DELETE CASCADE,
    customer_id bigint NOT NULL REFERENCES ecrm.customer_profile (customer_id),
    cluster_id  bigint NOT NULL,
    PRIMARY KEY (run_id, customer_id)
);
CREATE INDEX dedupe_cluster_cluster_idx ON ecrm.dedupe_cluster (run_id, cluster_id);
COMMENT ON TABLE ecrm.dedupe_cluster IS
    'The auto-merge list of a dedupe run: profiles joined by pairs above the auto-merge threshold, by cluster (named by its smallest customer id)';

CREATE TABLE ecrm.match_candidate (
    candidate_id      bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    customer_id       bigint NOT NULL REFERENCES ecrm.customer_profile (customer_id),
    other_id          bigint NOT NULL REFERENCES ecrm.customer_profile (customer_id),
    model_id          bigint NOT NULL REFERENCES ecrm.match_model ON DELETE CASCADE,
    run_id            bigint REFERENCES ecrm.dedupe_run ON DELETE SET NULL,
    match_weight      double precision,
    match_probability double precision,
    gamma             smallint[],
    found_by          text NOT NULL CHECK (found_by IN ('dedupe', 'realtime', 'unmerge')),
    status            text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'merged', 'rejected')),
    merge_id          bigint,
    created_at        timestamptz NOT NULL DEFAULT now(),
    decided_at        timestamptz,
    decided_by        text,
    CONSTRAINT match_candidate_order_chk CHECK (customer_id < other_id),
    CONSTRAINT match_candidate_pair_key UNIQUE (customer_id, other_id)
);
CREATE INDEX match_candidate_other_idx ON ecrm.match_candidate (other_id);
CREATE INDEX match_candidate_pending_idx ON ecrm.match_candidate (match_probability DESC) WHERE status = 'pending';
COMMENT ON TABLE ecrm.match_candidate IS
    'Pairs of profiles that may be one customer (customer_id < other_id): pending review, merged, or rejected (a rejected pair is never merged automatically again)';

CREATE TABLE ecrm.merge_event (
    merge_id     bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    customer_id  bigint NOT NULL REFERENCES ecrm.customer_profile (customer_id),
    survivor_id  bigint NOT NULL REFERENCES ecrm.customer_profile (customer_id),
    merged_ids   bigint[] NOT NULL,
    source       text NOT NULL CHECK (source IN ('manual', 'review', 'dedupe', 'realtime')),
    reason       text,
    probability  double precision,
    run_id       bigint REFERENCES ecrm.dedupe_run ON DELETE SET NULL,
    survivorship jsonb NOT NULL DEFAULT '{}',
    golden       jsonb,
    merged_at    timestamptz NOT NULL DEFAULT now(),
    merged_by    text NOT NULL DEFAULT current_user,
    unmerged_at  timestamptz,
    unmerged_by  text
);
CREATE INDEX merge_event_customer_idx ON ecrm.merge_event (customer_id);
CREATE INDEX merge_event_survivor_idx ON ecrm.merge_event (survivor_id);
CREATE INDEX merge_event_merged_idx ON ecrm.merge_event USING gin (merged_ids);
COMMENT ON TABLE ecrm.merge_event IS
    'Every merge: the survivor, the profiles merged into it, why, the survivorship rules used and the golden values written; unmerged_at once undone. customer_id is the live customer the history belongs to (it follows later merges; erasure deletes by it)';
COMMENT ON COLUMN ecrm.merge_event.golden IS 'The survivor''s profile as the merge wrote it, kept current with writes recorded for its profiles (unmerge keeps fields changed otherwise since)';

CREATE TABLE ecrm.merge_image (
    image_id      bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    merge_id      bigint NOT NULL REFERENCES ecrm.merge_event ON DELETE CASCADE,
    customer_id   bigint NOT NULL REFERENCES ecrm.customer_profile (customer_id),
    relid         regclass NOT NULL,
    from_customer bigint NOT NULL,
    action        text NOT NULL CHECK (action IN ('profile', 'repointed', 'deleted', 'created')),
    row_data      jsonb NOT NULL
);
CREATE INDEX merge_image_merge_idx ON ecrm.merge_image (merge_id, relid);
CREATE INDEX merge_image_customer_idx ON ecrm.merge_image (customer_id);
COMMENT ON TABLE ecrm.merge_image IS
    'The merge ledger: before-images of the profiles (profile), keys of the rows re-pointed (repointed, an array per table and profile), whole rows deleted (deleted) and keys of rows the merge created (created), so ecrm.unmerge() restores them exactly';

-- Survivorship: which profile a field of the golden record comes from.  The defaults are in
-- ecrm._survivorship(); rows here override them.
CREATE TABLE ecrm.survivorship_rule (
    field           name PRIMARY KEY,
    rule            text NOT NULL,
    field_group     text CHECK (field_group ~ '^[a-z][a-z0-9_]{0,62}$'),
    source_priority text[]
);
COMMENT ON TABLE ecrm.survivorship_rule IS
    'Overrides of the default survivorship rules (see ecrm.survivorship): per profile field a rule (most_recent, oldest, most_complete, most_frequent, longest, source_priority with source_priority, survivor, furthest_stage, union) and a field_group whose fields come from one profile together';

INSERT INTO ecrm.customer_table (relid, on_merge, on_erase, pii_columns, note, builtin) VALUES
    ('ecrm.match_candidate', 'keep', 'delete', '{}', 'review decisions are kept by pair; merges and unmerges update them', true),
    ('ecrm.dedupe_cluster', 'keep', 'delete', '{}', NULL, true),
    ('ecrm.merge_event', 'repoint', 'delete', '{golden}', 'merge history follows the live customer', true),
    ('ecrm.merge_image', 'repoint', 'delete', '{row_data}', 'before-images of merges; erasure must purge them', true);

-- The survivorship rules in force: defaults, overridden by ecrm.survivorship_rule, overridden by a merge's own.
CREATE FUNCTION ecrm._survivorship(override jsonb DEFAULT NULL)
    RETURNS TABLE (field name, rule text, field_group text, source_priority text[])
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    r    jsonb := '{
        "first_name": {"rule": "most_complete", "group": "name"}, "last_name": {"rule": "most_complete", "group": "name"},
        "email": {"rule": "survivor"}, "phone": {"rule": "most_recent"}, "birth_date": {"rule": "most_frequent"},
        "company": {"rule": "most_recent", "group": "work"}, "job_title": {"rule": "most_recent", "group": "work"},
        "street": {"rule": "most_recent", "group": "address"}, "city": {"rule": "most_recent", "group": "address"},
        "postal_code": {"rule": "most_recent", "group": "address"}, "region": {"rule": "most_recent", "group": "address"},
        "country": {"rule": "most_recent", "group": "address"}, "language": {"rule": "most_recent"},
        "lifecycle_stage": {"rule": "furthest_stage"}, "owner": {"rule": "survivor"}, "source": {"rule": "oldest"},
        "attributes": {"rule": "union"}, "created_at": {"rule": "oldest"}}';
    k    text;
    v    jsonb;
BEGIN
    IF override IS NOT NULL AND jsonb_typeof(override) <> 'object' THEN
        RAISE EXCEPTION 'survivorship must be a JSON object {"field": "rule" or {"rule", "group", "source_priority"}}'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT r || coalesce(jsonb_object_agg(s.field, jsonb_strip_nulls(jsonb_build_object(
                   'rule', s.rule, 'group', s.field_group, 'source_priority', s.source_priority))), '{}')
      INTO r FROM ecrm.survivorship_rule s WHERE r ? s.field;
    FOR k, v IN SELECT * FROM jsonb_each(coalesce(override, '{}')) LOOP
        IF NOT r ? k THEN
            RAISE EXCEPTION 'survivorship names unknown field "%"', left(k, 100) USING ERRCODE = 'invalid_parameter_value',
                HINT = format('Fields: %s.', (SELECT string_agg(x, ', ' ORDER BY x) FROM jsonb_object_keys(r) x));
        END IF;
        IF jsonb_typeof(v) = 'string' THEN
            r := jsonb_set(r, ARRAY[k], jsonb_build_object('rule', v));
        ELSIF jsonb_typeof(v) = 'object' AND jsonb_typeof(v -> 'rule') = 'string'
              AND (NOT v ? 'source_priority' OR (jsonb_typeof(v -> 'source_priority') = 'array'
                   AND NOT EXISTS (SELECT FROM jsonb_array_elements(v -> 'source_priority') e WHERE jsonb_typeof(e) <> 'string')))
              AND (NOT v ? 'group' OR jsonb_typeof(v -> 'group') IN ('string', 'null')) THEN
            r := jsonb_set(r, ARRAY[k], jsonb_strip_nulls(v));
        ELSE
            RAISE EXCEPTION 'survivorship of field "%" must be a rule name or {"rule", "group", "source_priority"}', k
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END LOOP;
    FOR k, v IN SELECT * FROM jsonb_each(r) LOOP
        IF (v ->> 'rule') NOT IN ('most_recent', 'oldest', 'most_complete', 'most_frequent', 'longest', 'source_priority',
                                  'survivor', 'furthest_stage', 'union')
           OR (v ->> 'rule' = 'furthest_stage' AND k <> 'lifecycle_stage') OR (v ->> 'rule' = 'union' AND k <> 'attributes') THEN
            RAISE EXCEPTION 'invalid survivorship rule "%" for field "%"', left(v ->> 'rule', 100), k
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Use most_recent, oldest, most_complete, most_frequent, longest, source_priority or survivor; furthest_stage only for lifecycle_stage, union only for attributes.';
        END IF;
        IF v ->> 'rule' = 'source_priority' AND coalesce(jsonb_array_length(v -> 'source_priority'), 0) = 0 THEN
            RAISE EXCEPTION 'rule source_priority of field "%" needs a non-empty source_priority list', k
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF (v ->> 'group') !~ '^[a-z][a-z0-9_]{0,62}$' THEN
            RAISE EXCEPTION 'invalid survivorship group "%"', left(v ->> 'group', 100) USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END LOOP;
    -- the fields of one group share one rule: that of its first field in name order
    RETURN QUERY
    WITH x AS (SELECT e.key AS f, e.value ->> 'rule' AS rl, e.value ->> 'group' AS grp,
                      (SELECT array_agg(p ORDER BY o) FROM jsonb_array_elements_text(e.value -> 'source_priority') WITH ORDINALITY y(p, o)) AS prio
                 FROM jsonb_each(r) e),
         g AS (SELECT DISTINCT ON (x.grp) x.grp, x.rl, x.prio FROM x
                WHERE x.grp IS NOT NULL AND x.rl NOT IN ('furthest_stage', 'union') ORDER BY x.grp, x.f)
    SELECT x.f::name, CASE WHEN x.rl IN ('furthest_stage', 'union') THEN x.rl ELSE coalesce(g.rl, x.rl) END,
           CASE WHEN x.rl IN ('furthest_stage', 'union') THEN NULL ELSE x.grp END,
           CASE WHEN g.grp IS NOT NULL AND x.rl NOT IN ('furthest_stage', 'union') THEN g.prio ELSE x.prio END
      FROM x LEFT JOIN g ON g.grp = x.grp
     ORDER BY 1;
END
$$;

CREATE VIEW ecrm.survivorship AS
    SELECT s.field, s.rule, s.field_group, s.source_priority FROM ecrm._survivorship() s;
COMMENT ON VIEW ecrm.survivorship IS
    'The survivorship rules in force: for each field of the golden record, which merged profile it comes from (defaults overridden by ecrm.survivorship_rule)';
COMMENT ON COLUMN ecrm.survivorship.rule IS
    'most_recent (last updated), oldest (first created), most_complete (most fields filled), most_frequent (value most profiles agree on), longest, source_priority, survivor, furthest_stage (lifecycle), union (attributes; newer keys win)';
COMMENT ON COLUMN ecrm.survivorship.field IS 'Field of the golden record (a column of ecrm.customer_profile)';
COMMENT ON COLUMN ecrm.survivorship.source_priority IS 'For rule source_priority: profile sources in order of preference';
COMMENT ON COLUMN ecrm.survivorship.field_group IS 'Fields of one group are taken together from one profile (an address is not mixed from two)';

-- SQL computing the golden record of each merge of pg_temp._ecrm_merge_map (merge_id, survivor, customer_id)
-- into pg_temp._ecrm_golden: one row per merge with every profile field and the source profile of each.
CREATE FUNCTION ecrm._golden_sql(override jsonb) RETURNS text
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    u      record;
    ord    text;
    filt   text;
    picks  text[] := '{}';
    joins  text[] := '{}';
    cols   text[] := '{}';
    srcs   text[] := '{}';
    freqs  text[] := '{}';
    n      int := 0;
    f      text;
BEGIN
    FOR u IN SELECT coalesce(s.field_group, s.field) AS unit, min(s.rule) AS rule, (array_agg(s.source_priority) FILTER (WHERE s.source_priority IS NOT NULL))[1] AS prio,
                    array_agg(s.field::text ORDER BY s.field) AS fields
               FROM ecrm._survivorship(override) s GROUP BY 1 ORDER BY 1 LOOP
        n := n + 1;
        IF u.rule = 'furthest_stage' THEN
            picks := picks || 'max(mp.lifecycle_stage) AS v_lifecycle_stage'::text;
            cols := cols || 'pk.v_lifecycle_stage AS lifecycle_stage'::text;
            CONTINUE;
        ELSIF u.rule = 'union' THEN
            cols := cols || 'coalesce(at.v, ''{}'') AS attributes'::text;
            CONTINUE;
        END IF;
        ord := CASE u.rule
            WHEN 'most_recent' THEN 'mp.updated_at DESC, mp.customer_id DESC'
            WHEN 'oldest' THEN 'mp.created_at, mp.customer_id'
            WHEN 'most_complete' THEN 'mp.completeness DESC, mp.updated_at DESC, mp.customer_id DESC'
            WHEN 'most_frequent' THEN format('mp.freq_%s DESC, mp.completeness DESC, mp.updated_at DESC, mp.customer_id DESC', n)
            WHEN 'longest' THEN format('length(concat_ws('' '', %s)) DESC, mp.updated_at DESC, mp.customer_id DESC',
                                       (SELECT string_agg(format('mp.%I::text', x), ', ') FROM unnest(u.fields) x))
            WHEN 'source_priority' THEN format('array_position(%L::text[], mp.source), mp.updated_at DESC, mp.customer_id DESC', u.prio)
            WHEN 'survivor' THEN 'mp.is_survivor DESC, mp.updated_at DESC, mp.customer_id DESC'
        END;
        IF u.rule = 'most_frequent' THEN
            freqs := freqs || format('count(*) OVER (PARTITION BY m.merge_id, %s) AS freq_%s',
                                     (SELECT string_agg(format('p.%I', x), ', ') FROM unnest(u.fields) x), n);
        END IF;
        filt := (SELECT string_agg(format('mp.%I IS NOT NULL', x), ' OR ') FROM unnest(u.fields) x);
        picks := picks || format('(array_agg(mp.customer_id ORDER BY %s) FILTER (WHERE %s))[1] AS src_%s', ord, filt, n);
        joins := joins || format('LEFT JOIN ecrm.customer_profile g%1$s ON g%1$s.customer_id = pk.src_%1$s', n);
        FOREACH f IN ARRAY u.fields LOOP
            cols := cols || format('g%s.%I', n, f);
            srcs := srcs || format('%L, pk.src_%s', f, n);
        END LOOP;
    END LOOP;
    RETURN format(
        'WITH mp AS (SELECT m.merge_id, m.survivor, (p.customer_id = m.survivor) AS is_survivor,
                            num_nonnulls(p.first_name, p.last_name, p.email, p.phone, p.birth_date, p.company, p.job_title,
                                         p.street, p.city, p.postal_code, p.region, p.country, p.language) AS completeness,
                            %s p.*
                       FROM pg_temp._ecrm_merge_map m JOIN ecrm.customer_profile p ON p.customer_id = m.customer_id),
              pk AS (SELECT mp.merge_id, max(mp.survivor) AS survivor, %s FROM mp GROUP BY mp.merge_id),
              at AS (SELECT mp.merge_id, jsonb_object_agg(e.key, e.value ORDER BY mp.updated_at, mp.customer_id) AS v
                       FROM mp, jsonb_each(mp.attributes) e GROUP BY mp.merge_id)
         SELECT pk.merge_id, pk.survivor, %s, jsonb_build_object(%s) AS sources
           FROM pk LEFT JOIN at ON at.merge_id = pk.merge_id %s',
        (SELECT coalesce(string_agg(x || ',', ' '), '') FROM unnest(freqs) x),
        array_to_string(picks, ', '), array_to_string(cols, ', '), array_to_string(srcs, ', '),
        array_to_string(joins, ' '));
END
$$;

-- Primary-key columns of a table, in key order; NULL when it has none.
CREATE FUNCTION ecrm._pk_columns(relid regclass) RETURNS name[]
    LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT array_agg(a.attname ORDER BY k.o)
      FROM pg_index i CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY k(attnum, o)
      JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
     WHERE i.indrelid = relid AND i.indisprimary
$$;

-- "x.a = k.a AND x.b = k.b" over the primary key of a table.
CREATE FUNCTION ecrm._pk_match(relid regclass, x text, k text) RETURNS text
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    pk name[] := ecrm._pk_columns(relid);
BEGIN
    IF pk IS NULL THEN
        RAISE EXCEPTION 'table % is registered in ecrm.customer_table with on_merge ''repoint'' but has no primary key', relid
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Give the table a primary key, or register it with on_merge ''cascade'', ''keep'' or ''delete''.';
    END IF;
    RETURN (SELECT string_agg(format('%s.%I = %s.%I', x, c, k, c), ' AND ') FROM unnest(pk) c);
END
$$;

CREATE FUNCTION ecrm._check_merge_isolation() RETURNS void
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    -- Under REPEATABLE READ a merge could not see rows that a concurrent transaction added for a
    -- merged profile while the merge waited for its lock: they would be left on the tombstone.
    IF current_setting('transaction_isolation') = 'repeatable read' THEN
        RAISE EXCEPTION 'merging and unmerging customers needs READ COMMITTED or SERIALIZABLE isolation'
            USING ERRCODE = 'active_sql_transaction',
                  DETAIL = 'Under REPEATABLE READ rows added concurrently for a merged profile would stay invisible to the merge.';
    END IF;
END
$$;

-- Validate the ids of a merge; returns the live customers they stand for (a merged id follows its merge
-- chain, as everywhere in the API), distinct and sorted, the survivor included.  One id only when they
-- all stand for one customer already (a concurrent merge may have joined them).
CREATE FUNCTION ecrm._check_merge_ids(customer_ids bigint[], survivor bigint) RETURNS bigint[]
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    ids bigint[];
    r   record;
BEGIN
    IF customer_ids IS NULL OR cardinality(customer_ids) = 0 THEN
        RAISE EXCEPTION 'customer_ids must name the customers to merge' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF array_position(customer_ids, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'customer_ids must not contain nulls' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF cardinality(customer_ids) > 1000 THEN
        RAISE EXCEPTION 'at most 1000 customers can be merged at once, not %', cardinality(customer_ids)
            USING ERRCODE = 'program_limit_exceeded';
    END IF;
    ids := ARRAY(SELECT DISTINCT u FROM unnest(customer_ids || survivor) u WHERE u IS NOT NULL ORDER BY u);
    IF cardinality(ids) < 2 THEN
        RAISE EXCEPTION 'cannot merge customer % into itself', ids[1] USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Name at least two different customers.';
    END IF;
    FOR r IN SELECT u.id, p.status, p.merged_into FROM unnest(ids) u(id)
               LEFT JOIN ecrm.customer_profile p ON p.customer_id = u.id ORDER BY u.id LOOP
        IF r.status IS NULL THEN
            RAISE EXCEPTION 'customer % does not exist', r.id USING ERRCODE = 'foreign_key_violation';
        ELSIF r.status = 'erased' THEN
            RAISE EXCEPTION 'customer % has been erased', r.id USING ERRCODE = 'invalid_parameter_value',
                DETAIL = 'Erased profiles cannot be merged.';
        END IF;
    END LOOP;
    RETURN ARRAY(SELECT DISTINCT ecrm.resolve_customer(u) FROM unnest(ids) u ORDER BY 1);
END
$$;

-- Apply the merges of pg_temp._ecrm_merge_map (merge_id, survivor, customer_id; survivors included), whose
-- ecrm.merge_event rows exist: lock, golden records, ledger, re-point, consents, tombstones.
CREATE FUNCTION ecrm._merge_apply(survivorship jsonb) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    r          record;
    t          record;
    cols       text;
    lc_before  bigint;
    reason     text := coalesce(current_setting('ecrm.lifecycle_reason', true), '');
BEGIN
    -- the planner must know how small the map is (else it scans every profile to join two)
    ANALYZE pg_temp._ecrm_merge_map;
    -- Lock every profile in id order (two merges never wait on each other in a cycle), then check
    -- that none was merged or erased while we waited.
    FOR r IN SELECT p.customer_id, p.status, p.merged_into FROM ecrm.customer_profile p
              WHERE p.customer_id IN (SELECT m.customer_id FROM pg_temp._ecrm_merge_map m)
              ORDER BY p.customer_id FOR UPDATE OF p LOOP
        IF r.status <> 'active' THEN
            RAISE EXCEPTION 'customer % was % by a concurrent transaction', r.customer_id,
                            CASE WHEN r.status = 'merged' THEN format('merged into customer %s', r.merged_into) ELSE 'erased' END
                USING ERRCODE = 'serialization_failure',
                      HINT = 'Retry with the ids as they are now (ecrm.resolve_customer).';
        END IF;
    END LOOP;

    PERFORM ecrm._drop_temp('{_ecrm_golden,_ecrm_consent}');
    EXECUTE 'CREATE TEMP TABLE _ecrm_golden ON COMMIT DROP AS ' || ecrm._golden_sql(_merge_apply.survivorship);
    ANALYZE pg_temp._ecrm_golden;

    -- consent in force per profile and purpose before the merge
    CREATE TEMP TABLE _ecrm_consent ON COMMIT DROP AS
    SELECT m.merge_id, m.survivor, l.purpose,
           array_agg(m.customer_id ORDER BY m.customer_id) FILTER (WHERE NOT l.granted) AS withdrawn_by,
           (array_agg(l.granted ORDER BY l.recorded_at DESC, l.consent_event_id DESC))[1] AS latest_granted,
           max(l.recorded_at) AS latest_at
      FROM pg_temp._ecrm_merge_map m
      JOIN LATERAL (SELECT DISTINCT ON (e.purpose) e.purpose, e.granted, e.recorded_at, e.consent_event_id
                      FROM ecrm.consent_event e WHERE e.customer_id = m.customer_id
                     ORDER BY e.purpose, e.recorded_at DESC, e.consent_event_id DESC) l ON true
     GROUP BY m.merge_id, m.survivor, l.purpose;

    INSERT INTO ecrm.merge_image (merge_id, customer_id, relid, from_customer, action, row_data)
    SELECT m.merge_id, m.survivor, 'ecrm.customer_profile', p.customer_id, 'profile', to_jsonb(p)
      FROM pg_temp._ecrm_merge_map m JOIN ecrm.customer_profile p ON p.customer_id = m.customer_id;

    -- provenance: an identity keeps the profile that brought it, so an unmerge gives it back even when
    -- a later merge or a write on that profile's behalf moved it (see ecrm.identity.member_id)
    UPDATE ecrm.identity i SET member_id = i.customer_id
      FROM pg_temp._ecrm_merge_map m
     WHERE i.customer_id = m.customer_id AND m.customer_id <> m.survivor AND i.member_id IS NULL;

    -- every customer-keyed table, as registered
    FOR t IN SELECT c.relid, c.key_column, c.on_merge FROM ecrm.customer_table c
              WHERE c.relid <> 'ecrm.customer_profile'::regclass AND c.on_merge IN ('repoint', 'delete')
              ORDER BY c.relid::text LOOP
        IF t.on_merge = 'repoint' THEN
            -- a row that would break a unique constraint on the survivor loses to the survivor's (or an
            -- earlier profile's) row: it is deleted, with its image, instead of re-pointed
            FOR cols IN SELECT coalesce(string_agg(format(' AND y.%1$I = x.%1$I', a.attname), '')
                                        FILTER (WHERE a.attname <> t.key_column), '')
                          FROM pg_index i CROSS JOIN LATERAL unnest(i.indkey) k(attnum)
                          JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                         WHERE i.indrelid = t.relid AND i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL
                         GROUP BY i.indexrelid HAVING bool_or(a.attname = t.key_column) LOOP
                EXECUTE format(
                    'WITH gone AS (DELETE FROM %1$s x USING pg_temp._ecrm_merge_map m
                                    WHERE x.%2$I = m.customer_id AND m.customer_id <> m.survivor
                                      AND EXISTS (SELECT FROM %1$s y JOIN pg_temp._ecrm_merge_map m2 ON y.%2$I = m2.customer_id
                                                   WHERE m2.merge_id = m.merge_id
                                                     AND (m2.customer_id = m2.survivor OR m2.customer_id < m.customer_id) %3$s)
                                RETURNING m.merge_id, m.survivor, m.customer_id AS from_customer, to_jsonb(x) AS img)
                     INSERT INTO ecrm.merge_image (merge_id, customer_id, relid, from_customer, action, row_data)
                     SELECT g.merge_id, g.survivor, %4$L::regclass, g.from_customer, ''deleted'', g.img FROM gone g',
                    t.relid, t.key_column, cols, t.relid::text);
            END LOOP;
            PERFORM ecrm._pk_match(t.relid, 'x', 'k');
            EXECUTE format(
                'WITH moved AS (UPDATE %1$s x SET %2$I = m.survivor FROM pg_temp._ecrm_merge_map m
                                 WHERE x.%2$I = m.customer_id AND m.customer_id <> m.survivor
                             RETURNING m.merge_id, m.survivor, m.customer_id AS from_customer, jsonb_build_object(%3$s) AS k)
                 INSERT INTO ecrm.merge_image (merge_id, customer_id, relid, from_customer, action, row_data)
                 SELECT mv.merge_id, mv.survivor, %4$L::regclass, mv.from_customer, ''repointed'', jsonb_agg(mv.k)
                   FROM moved mv GROUP BY mv.merge_id, mv.survivor, mv.from_customer',
                t.relid, t.key_column,
                (SELECT string_agg(format('%L, x.%I', c, c), ', ') FROM unnest(ecrm._pk_columns(t.relid)) c),
                t.relid::text);
        ELSE
            EXECUTE format(
                'WITH gone AS (DELETE FROM %1$s x USING pg_temp._ecrm_merge_map m
                                WHERE x.%2$I = m.customer_id AND m.customer_id <> m.survivor
                            RETURNING m.merge_id, m.survivor, m.customer_id AS from_customer, to_jsonb(x) AS img)
                 INSERT INTO ecrm.merge_image (merge_id, customer_id, relid, from_customer, action, row_data)
                 SELECT g.merge_id, g.survivor, %3$L::regclass, g.from_customer, ''deleted'', g.img FROM gone g',
                t.relid, t.key_column, t.relid::text);
        END IF;
    END LOOP;

    -- Consents: the union of the profiles' histories, but the least permissive answer wins: when one
    -- profile withdrew or refused a purpose that the latest record of another grants, record a withdrawal.
    WITH ins AS (
        INSERT INTO ecrm.consent_event AS e (customer_id, purpose, granted, recorded_at, source, evidence)
        SELECT c.survivor, c.purpose, false, greatest(now(), c.latest_at + interval '1 microsecond'), 'merge',
               jsonb_build_object('merge_id', c.merge_id, 'withdrawn_by', to_jsonb(c.withdrawn_by))
          FROM pg_temp._ecrm_consent c WHERE c.withdrawn_by IS NOT NULL AND c.latest_granted
        RETURNING e.consent_event_id, e.customer_id, e.evidence)
    INSERT INTO ecrm.merge_image (merge_id, customer_id, relid, from_customer, action, row_data)
    SELECT (i.evidence ->> 'merge_id')::bigint, i.customer_id, 'ecrm.consent_event', i.customer_id, 'created',
           jsonb_build_object('consent_event_id', i.consent_event_id)
      FROM ins i;

    -- tombstones, then the golden records (a lifecycle move it makes is recorded with reason "merge")
    UPDATE ecrm.customer_profile p SET status = 'merged', merged_into = m.survivor
      FROM pg_temp._ecrm_merge_map m WHERE p.customer_id = m.customer_id AND m.customer_id <> m.survivor;
    lc_before := coalesce((SELECT max(l.change_id) FROM ecrm.lifecycle_change l), 0);
    PERFORM set_config('ecrm.lifecycle_reason', 'merge', true);
    UPDATE ecrm.customer_profile p SET
        first_name = g.first_name, last_name = g.last_name, email = g.email, phone = g.phone, birth_date = g.birth_date,
        company = g.company, job_title = g.job_title, street = g.street, city = g.city, postal_code = g.postal_code,
        region = g.region, country = g.country, language = g.language, lifecycle_stage = g.lifecycle_stage,
        owner = g.owner, source = g.source, attributes = g.attributes, created_at = g.created_at
      FROM pg_temp._ecrm_golden g WHERE p.customer_id = g.survivor;
    PERFORM set_config('ecrm.lifecycle_reason', reason, true);
    INSERT INTO ecrm.merge_image (merge_id, customer_id, relid, from_customer, action, row_data)
    SELECT g.merge_id, g.survivor, 'ecrm.lifecycle_change', g.survivor, 'created', jsonb_build_object('change_id', l.change_id)
      FROM ecrm.lifecycle_change l JOIN pg_temp._ecrm_golden g ON g.survivor = l.customer_id
     WHERE l.change_id > lc_before;

    UPDATE ecrm.merge_event e
       SET golden = to_jsonb(p),
           survivorship = jsonb_build_object('rules', coalesce(_merge_apply.survivorship, '{}'), 'sources', g.sources)
      FROM pg_temp._ecrm_golden g JOIN ecrm.customer_profile p ON p.customer_id = g.survivor
     WHERE e.merge_id = g.merge_id;

    UPDATE ecrm.match_candidate c SET status = 'merged', merge_id = m1.merge_id, decided_at = now(),
                                      decided_by = coalesce(c.decided_by, current_user)
      FROM pg_temp._ecrm_merge_map m1 JOIN pg_temp._ecrm_merge_map m2 ON m2.merge_id = m1.merge_id
     WHERE c.customer_id = m1.customer_id AND c.other_id = m2.customer_id AND c.status <> 'merged';
END
$$;

-- Lock the profiles of a merge in id order (two merges never wait on each other in a cycle); a profile merged
-- or erased by a concurrent transaction since its id was resolved is a serialization failure.
CREATE FUNCTION ecrm._lock_merge_profiles(ids bigint[]) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT p.customer_id, p.status, p.merged_into FROM ecrm.customer_profile p
              WHERE p.customer_id = ANY (ids) ORDER BY p.customer_id FOR UPDATE OF p LOOP
        IF r.status <> 'active' THEN
            RAISE EXCEPTION 'customer % was % by a concurrent transaction', r.customer_id,
                            CASE WHEN r.status = 'merged' THEN format('merged into customer %s', r.merged_into) ELSE 'erased' END
                USING ERRCODE = 'serialization_failure',
                      HINT = 'Retry with the ids as they are now (ecrm.resolve_customer).';
        END IF;
    END LOOP;
END
$$;

-- One merge: record the event, map it, apply it. Returns the merge id.
CREATE FUNCTION ecrm._merge_one(customer_ids bigint[], survivor bigint, survivorship jsonb, reason text,
                                source text, probability double precision) RETURNS bigint
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    ids bigint[];
    sv  bigint := survivor;
    mid bigint;
BEGIN
    PERFORM ecrm._finite(probability, 'probability');
    PERFORM ecrm._check_merge_isolation();
    ids := ecrm._check_merge_ids(customer_ids, survivor);
    sv := ecrm.resolve_customer(sv);
    IF cardinality(ids) = 1 THEN
        RAISE NOTICE 'customers % are one customer already: %', array_to_string(customer_ids, ', '), ids[1]
            USING DETAIL = 'They were merged before (see ecrm.merge_history); nothing was merged.';
        RETURN NULL;
    END IF;
    PERFORM ecrm._survivorship(survivorship);
    IF reason IS NOT NULL AND length(reason) > 1000 THEN
        RAISE EXCEPTION 'reason is too long (% characters, at most 1000)', length(reason) USING ERRCODE = 'string_data_right_truncation';
    END IF;
    IF sv IS NULL THEN
        SELECT p.customer_id INTO sv FROM ecrm.customer_profile p WHERE p.customer_id = ANY (ids)
         ORDER BY p.created_at, p.customer_id LIMIT 1;
    END IF;
    -- Lock the profiles before the merge gets its id: a later merge of any of them waits for this one to
    -- commit and so gets a higher id (unmerge undoes merges of a customer in id order).
    BEGIN
        PERFORM ecrm._lock_merge_profiles(ids);
    EXCEPTION WHEN deadlock_detected OR lock_not_available THEN
        RAISE EXCEPTION 'merge of customers % conflicted with a concurrent transaction', array_to_string(ids, ', ')
            USING ERRCODE = SQLSTATE, DETAIL = SQLERRM, HINT = 'Nothing was merged. Retry the merge.';
    END;
    INSERT INTO ecrm.merge_event AS e (customer_id, survivor_id, merged_ids, source, reason, probability)
    VALUES (sv, sv, array_remove(ids, sv), source, reason, probability)
    RETURNING e.merge_id INTO mid;
    PERFORM ecrm._drop_temp('{_ecrm_merge_map}');
    CREATE TEMP TABLE _ecrm_merge_map ON COMMIT DROP AS
    SELECT mid AS merge_id, sv AS survivor, u AS customer_id FROM unnest(ids) u;
    BEGIN
        PERFORM ecrm._merge_apply(survivorship);
    EXCEPTION WHEN deadlock_detected OR lock_not_available THEN
        RAISE EXCEPTION 'merge of customers % conflicted with a concurrent transaction', array_to_string(ids, ', ')
            USING ERRCODE = SQLSTATE, DETAIL = SQLERRM,
                  HINT = 'Nothing was merged. Retry the merge.';
    END;
    RETURN mid;
END
$$;

-- SECURITY DEFINER: a merge re-points rows of every registered table, which agents may not update
-- directly; the ids are validated and the SQL is built from the registry only.
CREATE FUNCTION ecrm.merge_customers(customer_ids bigint[], survivor bigint DEFAULT NULL,
                                     survivorship jsonb DEFAULT NULL, reason text DEFAULT NULL) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    RETURN ecrm._merge_one(customer_ids, survivor, survivorship, reason, 'manual', NULL);
END
$$;
COMMENT ON FUNCTION ecrm.merge_customers(bigint[], bigint, jsonb, text) IS
    'Merge customer profiles into one golden record in one transaction: the survivor (default the oldest profile) keeps its id and gets each field by the survivorship rules (overridable per call, e.g. {"email": "most_recent"}); every customer-keyed table is walked (ecrm.customer_table) and its rows re-pointed, deleted or kept; consents are unioned with the least permissive answer winning; the others become tombstones (status merged, merged_into). Everything is recorded for ecrm.unmerge(). Returns the merge id';

CREATE FUNCTION ecrm.merge_preview(customer_ids bigint[], survivor bigint DEFAULT NULL, survivorship jsonb DEFAULT NULL)
    RETURNS TABLE (section text, item text, value text, source_customer bigint, note text)
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS
$$
-- SECURITY DEFINER: it counts the rows of every registered table (see merge_customers); it writes nothing.
DECLARE
    ids bigint[] := ecrm._check_merge_ids(customer_ids, survivor);
    sv  bigint := survivor;
    t   record;
    n   bigint;
    g   jsonb;
    cur jsonb;
BEGIN
    IF cardinality(ids) = 1 THEN
        RAISE EXCEPTION 'customers % are one customer already: %', array_to_string(customer_ids, ', '), ids[1]
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'They were merged before (see ecrm.merge_history).';
    END IF;
    sv := ecrm.resolve_customer(sv);
    IF sv IS NULL THEN
        SELECT p.customer_id INTO sv FROM ecrm.customer_profile p WHERE p.customer_id = ANY (ids)
         ORDER BY p.created_at, p.customer_id LIMIT 1;
    END IF;
    PERFORM ecrm._drop_temp('{_ecrm_merge_map,_ecrm_golden}');
    CREATE TEMP TABLE _ecrm_merge_map ON COMMIT DROP AS SELECT 0::bigint AS merge_id, sv AS survivor, u AS customer_id FROM unnest(ids) u;
    EXECUTE 'CREATE TEMP TABLE _ecrm_golden ON COMMIT DROP AS ' || ecrm._golden_sql(survivorship);
    SELECT to_jsonb(x) INTO g FROM pg_temp._ecrm_golden x;
    SELECT to_jsonb(p) INTO cur FROM ecrm.customer_profile p WHERE p.customer_id = sv;

    section := 'survivor'; item := 'customer_id'; value := sv::text; source_customer := sv;
    note := format('keeps its id; %s become tombstones pointing to it', array_to_string(array_remove(ids, sv), ', '));
    RETURN NEXT;
    FOR item, value, source_customer, note IN
        SELECT s.field::text, g ->> s.field::text, (g -> 'sources' ->> s.field::text)::bigint,
               s.rule || CASE WHEN (g -> s.field::text) IS DISTINCT FROM (cur -> s.field::text)
                              THEN format(' (was: %s)', coalesce(cur ->> s.field::text, 'null')) ELSE '' END
          FROM ecrm._survivorship(survivorship) s ORDER BY s.field LOOP
        section := 'field';
        RETURN NEXT;
    END LOOP;
    FOR t IN SELECT c.relid, c.key_column, c.on_merge FROM ecrm.customer_table c
              WHERE c.relid <> 'ecrm.customer_profile'::regclass ORDER BY c.relid::text LOOP
        EXECUTE format('SELECT count(*) FROM %s x WHERE x.%I = ANY ($1)', t.relid, t.key_column)
            INTO n USING array_remove(ids, sv);
        CONTINUE WHEN n = 0;
        section := 'rows'; item := t.relid::text; value := n::text; source_customer := NULL;
        note := CASE t.on_merge WHEN 'repoint' THEN 're-pointed to the survivor' WHEN 'delete' THEN 'deleted (kept in the ledger)'
                                WHEN 'cascade' THEN 'follow their parent rows' ELSE 'kept on the tombstones' END;
        RETURN NEXT;
    END LOOP;
    FOR item, note IN
        SELECT l.purpose, format('withdrawn: customer %s withdrew or refused it and the least permissive answer wins',
                                 string_agg(l.customer_id::text, ', ' ORDER BY l.customer_id) FILTER (WHERE NOT l.granted))
          FROM (SELECT DISTINCT ON (e.customer_id, e.purpose) e.customer_id, e.purpose, e.granted, e.recorded_at, e.consent_event_id
                  FROM ecrm.consent_event e WHERE e.customer_id = ANY (ids)
                 ORDER BY e.customer_id, e.purpose, e.recorded_at DESC, e.consent_event_id DESC) l
         GROUP BY l.purpose
        HAVING bool_or(NOT l.granted)
           AND (array_agg(l.granted ORDER BY l.recorded_at DESC, l.consent_event_id DESC))[1] LOOP
        section := 'consent'; value := 'false'; source_customer := NULL;
        RETURN NEXT;
    END LOOP;
END
$$;
COMMENT ON FUNCTION ecrm.merge_preview(bigint[], bigint, jsonb) IS
    'Dry run of ecrm.merge_customers(): the survivor, every field of the golden record with the profile it comes from and the rule (and the value it replaces), the rows of each customer-keyed table that would be re-pointed or deleted, and the consents that would be withdrawn. Writes nothing';

-- A write for one profile of a merged customer (ecrm.upsert_customer found it by that profile's identity, was
-- given its id, or wrote for the survivor itself) changed the golden record on that profile's behalf.  Record it
-- where an unmerge reads it: in that profile's own before-images (its image in the merge that absorbed it, and the
-- survivor's image of every merge it survived since), likewise up the merge chain for each survivor whose side now
-- includes it, and in the golden values of those merges.  An unmerge then gives every field back to the profile
-- whose input it was, and the survivor recomputes it from its remaining members.  SECURITY DEFINER: it writes the
-- merge ledger, which agents may not; it accepts only a profile of the live customer and the fields of upsert_customer.
CREATE FUNCTION ecrm._record_for_member(live bigint, member bigint, fields jsonb, attributes jsonb) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    node   bigint := member;
    parent bigint;
    mid    bigint;
    since  bigint := 0;
    f      jsonb := coalesce(fields, '{}');
    bad    text;
    attrs  jsonb;
BEGIN
    IF jsonb_typeof(f) <> 'object' OR jsonb_typeof(coalesce(attributes, '{}')) <> 'object' THEN
        RAISE EXCEPTION 'fields and attributes must be JSON objects' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT k INTO bad FROM jsonb_object_keys(f) k
     WHERE k NOT IN ('first_name', 'last_name', 'email', 'phone', 'birth_date', 'company', 'job_title', 'street', 'city',
                     'postal_code', 'region', 'country', 'language', 'owner', 'lifecycle_stage') LIMIT 1;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'invalid profile field "%"', left(bad, 100)
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'Only the profile fields of ecrm.upsert_customer are recorded.';
    END IF;
    PERFORM jsonb_populate_record(NULL::ecrm.customer_profile, f);
    SELECT jsonb_build_object('attributes', p.attributes) INTO attrs
      FROM ecrm.customer_profile p WHERE p.customer_id = live AND p.status = 'active' FOR NO KEY UPDATE;
    IF NOT FOUND OR ecrm.resolve_customer(member) IS DISTINCT FROM live THEN
        RAISE EXCEPTION 'customer % is not one of customer %''s profiles', member, live
            USING ERRCODE = 'serialization_failure', DETAIL = 'A concurrent merge, unmerge or erasure changed them.',
                  HINT = 'Retry the call.';
    END IF;
    IF attributes IS NULL THEN
        attrs := '{}';
    END IF;
    LOOP
        -- the node's own side of every merge it survived (since the one that brought the write up here)
        UPDATE ecrm.merge_image i
           SET row_data = i.row_data || f
                          || CASE WHEN attributes IS NULL THEN '{}'::jsonb
                                  ELSE jsonb_build_object('attributes', jsonb_strip_nulls(coalesce(i.row_data -> 'attributes', '{}') || attributes)) END
          FROM ecrm.merge_event e
         WHERE e.survivor_id = node AND e.merge_id > since AND e.unmerged_at IS NULL
           AND i.merge_id = e.merge_id AND i.action = 'profile' AND i.from_customer = node;
        UPDATE ecrm.merge_event e SET golden = e.golden || f || CASE WHEN node = live THEN attrs ELSE '{}' END
         WHERE e.survivor_id = node AND e.merge_id > since AND e.unmerged_at IS NULL;
        -- then the merge that absorbed the node, one level up
        SELECT p.merged_into INTO parent FROM ecrm.customer_profile p WHERE p.customer_id = node AND p.status = 'merged';
        EXIT WHEN parent IS NULL;
        SELECT max(e.merge_id) INTO mid FROM ecrm.merge_event e
         WHERE e.survivor_id = parent AND node = ANY (e.merged_ids) AND e.unmerged_at IS NULL;
        EXIT WHEN mid IS NULL;
        UPDATE ecrm.merge_image i
           SET row_data = i.row_data || f
                          || CASE WHEN attributes IS NULL THEN '{}'::jsonb
                                  ELSE jsonb_build_object('attributes', jsonb_strip_nulls(coalesce(i.row_data -> 'attributes', '{}') || attributes)) END
         WHERE i.merge_id = mid AND i.action = 'profile' AND i.from_customer = node;
        UPDATE ecrm.merge_event e SET golden = e.golden || f || CASE WHEN parent = live THEN attrs ELSE '{}' END
         WHERE e.merge_id = mid;
        since := mid;
        node := parent;
        parent := NULL;
    END LOOP;
END
$$;

-- Rows added to the survivor after a merge that hang (by a foreign key) on a row that an unmerge gave back
-- to a restored profile follow that row: a ticket event of a ticket that went back goes back too.
CREATE FUNCTION ecrm._follow_parents(survivor bigint, restored bigint[]) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    f record;
BEGIN
    FOR f IN SELECT c.conrelid::regclass AS child, ct.key_column AS child_key, c.confrelid::regclass AS parent,
                    pt.key_column AS parent_key,
                    (SELECT string_agg(format('x.%I = y.%I', ca.attname, pa.attname), ' AND ')
                       FROM unnest(c.conkey, c.confkey) k(ck, pk)
                       JOIN pg_attribute ca ON ca.attrelid = c.conrelid AND ca.attnum = k.ck
                       JOIN pg_attribute pa ON pa.attrelid = c.confrelid AND pa.attnum = k.pk) AS cond
               FROM pg_constraint c
               JOIN ecrm.customer_table ct ON ct.relid = c.conrelid AND ct.on_merge = 'repoint'
               JOIN ecrm.customer_table pt ON pt.relid = c.confrelid AND pt.relid <> 'ecrm.customer_profile'::regclass
              WHERE c.contype = 'f' AND c.conrelid <> c.confrelid
                AND NOT EXISTS (SELECT FROM unnest(c.conkey) k(ck) JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.ck
                                 WHERE a.attname = ct.key_column)
              ORDER BY 1, 3 LOOP
        EXECUTE format('UPDATE %s x SET %I = y.%I FROM %s y WHERE %s AND x.%I = $1 AND y.%I = ANY ($2)',
                       f.child, f.child_key, f.parent_key, f.parent, f.cond, f.child_key, f.parent_key)
            USING survivor, restored;
    END LOOP;
END
$$;

-- Undo one merge whose later dependants are undone already.
CREATE FUNCTION ecrm._unmerge_one(ev ecrm.merge_event) RETURNS bigint[]
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    r         record;
    t         record;
    key       name;
    cols      text;
    ovr       text;
    lc_before bigint;
    n         bigint;
    skipped   bigint := 0;
BEGIN
    PERFORM FROM ecrm.customer_profile p
      WHERE p.customer_id = ev.survivor_id OR p.customer_id = ANY (ev.merged_ids)
      ORDER BY p.customer_id FOR UPDATE OF p;
    -- unmerge() looked for later merges before these locks: one committed since would be undone with this one
    IF EXISTS (SELECT FROM ecrm.merge_event e
                WHERE e.merge_id > ev.merge_id AND e.unmerged_at IS NULL
                  AND (e.survivor_id = ev.survivor_id OR ev.survivor_id = ANY (e.merged_ids))) THEN
        RAISE EXCEPTION 'customer % was merged again by a concurrent transaction', ev.survivor_id
            USING ERRCODE = 'serialization_failure', DETAIL = format('Merge %s was not undone.', ev.merge_id),
                  HINT = 'Retry the unmerge (with cascade => true to undo the later merge too).';
    END IF;
    FOR r IN SELECT p.customer_id, p.status, p.merged_into FROM ecrm.customer_profile p
              WHERE p.customer_id = ev.survivor_id OR p.customer_id = ANY (ev.merged_ids)
              ORDER BY p.customer_id LOOP
        IF r.customer_id = ev.survivor_id AND r.status <> 'active' THEN
            RAISE EXCEPTION 'merge % cannot be undone: its survivor, customer %, is %', ev.merge_id, r.customer_id, r.status
                USING ERRCODE = 'object_not_in_prerequisite_state';
        ELSIF r.customer_id <> ev.survivor_id AND (r.status <> 'merged' OR r.merged_into <> ev.survivor_id) THEN
            RAISE EXCEPTION 'merge % cannot be undone: customer % is no longer merged into customer %', ev.merge_id,
                            r.customer_id, ev.survivor_id
                USING ERRCODE = 'object_not_in_prerequisite_state';
        END IF;
    END LOOP;

    -- rows the merge created go
    FOR t IN SELECT DISTINCT i.relid FROM ecrm.merge_image i WHERE i.merge_id = ev.merge_id AND i.action = 'created' LOOP
        EXECUTE format('DELETE FROM %1$s x USING ecrm.merge_image i, jsonb_populate_record(NULL::%1$s, i.row_data) k
                         WHERE i.merge_id = $1 AND i.relid = %2$L::regclass AND i.action = ''created'' AND %3$s',
                       t.relid, t.relid::text, ecrm._pk_match(t.relid, 'x', 'k'))
            USING ev.merge_id;
    END LOOP;
    -- re-pointed rows go back to the profile they came from
    FOR t IN SELECT DISTINCT i.relid FROM ecrm.merge_image i WHERE i.merge_id = ev.merge_id AND i.action = 'repointed' LOOP
        SELECT c.key_column INTO key FROM ecrm.customer_table c WHERE c.relid = t.relid;
        IF key IS NULL THEN
            RAISE EXCEPTION 'merge % cannot be undone: table % is no longer registered in ecrm.customer_table', ev.merge_id, t.relid
                USING ERRCODE = 'object_not_in_prerequisite_state';
        END IF;
        EXECUTE format('UPDATE %1$s x SET %2$I = i.from_customer
                          FROM ecrm.merge_image i, jsonb_populate_recordset(NULL::%1$s, i.row_data) k
                         WHERE i.merge_id = $1 AND i.relid = %3$L::regclass AND i.action = ''repointed''
                           AND x.%2$I = $2 AND %4$s',
                       t.relid, key, t.relid::text, ecrm._pk_match(t.relid, 'x', 'k'))
            USING ev.merge_id, ev.survivor_id;
    END LOOP;
    -- deleted rows come back as they were
    FOR t IN SELECT DISTINCT i.relid FROM ecrm.merge_image i WHERE i.merge_id = ev.merge_id AND i.action = 'deleted' LOOP
        SELECT string_agg(format('%I', a.attname), ', ' ORDER BY a.attnum),
               CASE WHEN bool_or(a.attidentity = 'a') THEN 'OVERRIDING SYSTEM VALUE' ELSE '' END
          INTO cols, ovr
          FROM pg_attribute a WHERE a.attrelid = t.relid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '';
        EXECUTE format('INSERT INTO %1$s (%2$s) %3$s
                        SELECT %4$s FROM ecrm.merge_image i, jsonb_populate_record(NULL::%1$s, i.row_data) r
                         WHERE i.merge_id = $1 AND i.relid = %5$L::regclass AND i.action = ''deleted''
                         ORDER BY i.image_id ON CONFLICT DO NOTHING',
                       t.relid, cols, ovr, (SELECT string_agg('r.' || c, ', ') FROM unnest(string_to_array(cols, ', ')) c),
                       t.relid::text)
            USING ev.merge_id;
        GET DIAGNOSTICS n = ROW_COUNT;
        skipped := skipped + (SELECT count(*) FROM ecrm.merge_image i WHERE i.merge_id = ev.merge_id AND i.relid = t.relid
                                                                       AND i.action = 'deleted') - n;
    END LOOP;
    IF skipped > 0 THEN
        RAISE NOTICE '% deleted rows of merge % were not restored: rows with the same keys exist again', skipped, ev.merge_id;
    END IF;
    PERFORM ecrm._follow_parents(ev.survivor_id, ev.merged_ids);

    -- profiles: the merged ones as they were; the survivor as it was, except fields changed since the merge
    lc_before := coalesce((SELECT max(l.change_id) FROM ecrm.lifecycle_change l), 0);
    UPDATE ecrm.customer_profile p SET
        status = b.status, merged_into = b.merged_into, first_name = b.first_name, last_name = b.last_name,
        email = b.email, phone = b.phone, birth_date = b.birth_date, company = b.company, job_title = b.job_title,
        street = b.street, city = b.city, postal_code = b.postal_code, region = b.region, country = b.country,
        language = b.language, lifecycle_stage = b.lifecycle_stage, owner = b.owner, source = b.source,
        attributes = b.attributes, created_at = b.created_at, updated_at = b.updated_at
      FROM ecrm.merge_image i, jsonb_populate_record(NULL::ecrm.customer_profile, i.row_data) b
     WHERE i.merge_id = ev.merge_id AND i.action = 'profile' AND i.from_customer <> ev.survivor_id
       AND p.customer_id = i.from_customer;
    UPDATE ecrm.customer_profile p SET
        first_name = CASE WHEN p.first_name IS NOT DISTINCT FROM g.first_name THEN b.first_name ELSE p.first_name END,
        last_name = CASE WHEN p.last_name IS NOT DISTINCT FROM g.last_name THEN b.last_name ELSE p.last_name END,
        email = CASE WHEN p.email IS NOT DISTINCT FROM g.email THEN b.email ELSE p.email END,
        phone = CASE WHEN p.phone IS NOT DISTINCT FROM g.phone THEN b.phone ELSE p.phone END,
        birth_date = CASE WHEN p.birth_date IS NOT DISTINCT FROM g.birth_date THEN b.birth_date ELSE p.birth_date END,
        company = CASE WHEN p.company IS NOT DISTINCT FROM g.company THEN b.company ELSE p.company END,
        job_title = CASE WHEN p.job_title IS NOT DISTINCT FROM g.job_title THEN b.job_title ELSE p.job_title END,
        street = CASE WHEN p.street IS NOT DISTINCT FROM g.street THEN b.street ELSE p.street END,
        city = CASE WHEN p.city IS NOT DISTINCT FROM g.city THEN b.city ELSE p.city END,
        postal_code = CASE WHEN p.postal_code IS NOT DISTINCT FROM g.postal_code THEN b.postal_code ELSE p.postal_code END,
        region = CASE WHEN p.region IS NOT DISTINCT FROM g.region THEN b.region ELSE p.region END,
        country = CASE WHEN p.country IS NOT DISTINCT FROM g.country THEN b.country ELSE p.country END,
        language = CASE WHEN p.language IS NOT DISTINCT FROM g.language THEN b.language ELSE p.language END,
        lifecycle_stage = CASE WHEN p.lifecycle_stage IS NOT DISTINCT FROM g.lifecycle_stage THEN b.lifecycle_stage ELSE p.lifecycle_stage END,
        owner = CASE WHEN p.owner IS NOT DISTINCT FROM g.owner THEN b.owner ELSE p.owner END,
        source = CASE WHEN p.source IS NOT DISTINCT FROM g.source THEN b.source ELSE p.source END,
        attributes = CASE WHEN p.attributes IS NOT DISTINCT FROM g.attributes THEN b.attributes ELSE p.attributes END,
        created_at = CASE WHEN p.created_at IS NOT DISTINCT FROM g.created_at THEN b.created_at ELSE p.created_at END,
        updated_at = CASE WHEN p.updated_at IS NOT DISTINCT FROM g.updated_at THEN b.updated_at ELSE p.updated_at END
      FROM ecrm.merge_image i, jsonb_populate_record(NULL::ecrm.customer_profile, i.row_data) b,
           jsonb_populate_record(NULL::ecrm.customer_profile, ev.golden) g
     WHERE i.merge_id = ev.merge_id AND i.action = 'profile' AND i.from_customer = ev.survivor_id
       AND p.customer_id = ev.survivor_id;
    -- identities attached since on behalf of a restored profile (or of one merged into it) go back with it
    UPDATE ecrm.identity i SET customer_id = ecrm.resolve_customer(i.member_id)
     WHERE i.customer_id = ev.survivor_id AND i.member_id <> ev.survivor_id
       AND ecrm.resolve_customer(i.member_id) = ANY (ev.merged_ids);
    -- an identity back on the profile that brought it needs no provenance: as before the merge
    UPDATE ecrm.identity i SET member_id = NULL WHERE i.customer_id = ANY (ev.merged_ids) AND i.member_id = i.customer_id;
    -- the stage moves of this restore are not history: the merge's own move went above
    DELETE FROM ecrm.lifecycle_change l
     WHERE l.change_id > lc_before AND (l.customer_id = ev.survivor_id OR l.customer_id = ANY (ev.merged_ids));

    -- these profiles were judged different: never merge them automatically again
    INSERT INTO ecrm.match_candidate AS c (customer_id, other_id, model_id, match_weight, match_probability, gamma,
                                           found_by, status, merge_id, decided_at, decided_by)
    SELECT least(a, b), greatest(a, b), (ecrm._model('customer')).model_id, NULL, NULL, NULL, 'unmerge', 'rejected',
           ev.merge_id, now(), current_user
      FROM unnest(ev.survivor_id || ev.merged_ids) a, unnest(ev.survivor_id || ev.merged_ids) b
     WHERE a < b
    ON CONFLICT ON CONSTRAINT match_candidate_pair_key
        DO UPDATE SET status = 'rejected', decided_at = now(), decided_by = current_user;

    UPDATE ecrm.merge_event e SET unmerged_at = now(), unmerged_by = current_user WHERE e.merge_id = ev.merge_id;
    RETURN ev.merged_ids;
END
$$;

-- SECURITY DEFINER for the reason given at merge_customers.
CREATE FUNCTION ecrm.unmerge(merge_id bigint, cascade boolean DEFAULT false) RETURNS bigint[]
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    ev         ecrm.merge_event;
    later      bigint;
    restored   bigint[] := '{}';
    was_active boolean;
BEGIN
    PERFORM ecrm._check_merge_isolation();
    IF unmerge.merge_id IS NULL THEN
        RAISE EXCEPTION 'merge_id must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    LOOP
        SELECT e.unmerged_at IS NULL INTO was_active FROM ecrm.merge_event e WHERE e.merge_id = unmerge.merge_id;
        SELECT * INTO ev FROM ecrm.merge_event e WHERE e.merge_id = unmerge.merge_id FOR UPDATE;
        IF was_active AND ev.unmerged_at IS NOT NULL THEN
            RAISE EXCEPTION 'merge % was undone by a concurrent transaction', ev.merge_id
                USING ERRCODE = 'serialization_failure', DETAIL = 'Another unmerge committed while this one waited.',
                      HINT = 'Retry: the merge history shows it undone now.';
        END IF;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'merge % does not exist', unmerge.merge_id USING ERRCODE = 'no_data_found',
                HINT = 'See ecrm.merge_history; the history of an erased customer is gone with it.';
        END IF;
        IF ev.unmerged_at IS NOT NULL THEN
            RAISE EXCEPTION 'merge % was already undone', ev.merge_id
                USING ERRCODE = 'object_not_in_prerequisite_state';
        END IF;
        -- a later merge that changed the survivor again must be undone first
        SELECT max(e.merge_id) INTO later FROM ecrm.merge_event e
         WHERE e.merge_id > ev.merge_id AND e.unmerged_at IS NULL
           AND (e.survivor_id = ev.survivor_id OR ev.survivor_id = ANY (e.merged_ids));
        EXIT WHEN later IS NULL;
        IF NOT cascade THEN
            RAISE EXCEPTION 'merge % cannot be undone before the later merge % of customer %', ev.merge_id, later, ev.survivor_id
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = format('Undo merge %s first, or call ecrm.unmerge(%s, cascade => true).', later, ev.merge_id);
        END IF;
        -- lock it first: if a concurrent unmerge undid it meanwhile, look again
        PERFORM FROM ecrm.merge_event e WHERE e.merge_id = later AND e.unmerged_at IS NULL FOR UPDATE;
        CONTINUE WHEN NOT FOUND;
        restored := restored || ecrm.unmerge(later, true);
    END LOOP;
    BEGIN
        restored := restored || ecrm._unmerge_one(ev);
    EXCEPTION WHEN deadlock_detected OR lock_not_available THEN
        RAISE EXCEPTION 'unmerge of merge % conflicted with a concurrent transaction', ev.merge_id
            USING ERRCODE = SQLSTATE, DETAIL = SQLERRM, HINT = 'Nothing was undone. Retry the unmerge.';
    END;
    RETURN restored;
END
$$;
COMMENT ON FUNCTION ecrm.unmerge(bigint, boolean) IS
    'Undo a merge exactly: merged profiles come back as they were, re-pointed rows return to the profile they came from, deleted rows are restored, rows the merge created are removed, identities and fields written since for a merged profile (upsert_customer, by provenance) go back to it, and the survivor gets its own fields back (edits outside upsert_customer since the merge are kept). Other rows added after the merge stay with the survivor unless they hang on a row that went back (a ticket event on a restored ticket). The pairs are marked rejected. A later merge of the survivor must be undone first (cascade => true does so). Returns the restored customer ids';

------------------------------------------------------------------------------
-- Candidates of one profile (index lookups by blocking key), real-time resolution
------------------------------------------------------------------------------

-- Score the active profiles sharing a blocking key with a probe profile (a customer_profile row as JSON).
CREATE FUNCTION ecrm._score_probe(mdl ecrm.match_model, probe jsonb, probe_id bigint, max_candidates integer)
    RETURNS TABLE (other_id bigint, match_weight double precision, match_probability double precision, gamma smallint[])
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    nkeys int := jsonb_array_length(mdl.blocking);
    keys  text[];
    cands bigint[];
    w     double precision[] := ecrm._weights(mdl.comparisons);
BEGIN
    EXECUTE format('SELECT ARRAY[%s]::text[] FROM jsonb_populate_record(NULL::ecrm.customer_profile, $1) src',
                   (SELECT string_agg(format('((%s))::text', ecrm._blocking_key(b)), ', ' ORDER BY o)
                      FROM jsonb_array_elements(mdl.blocking) WITH ORDINALITY x(b, o)))
        INTO keys USING probe;
    IF (SELECT bool_and(k IS NULL) FROM unnest(keys) k) THEN
        RETURN;
    END IF;
    -- one index scan per key (the expressions are those of ecrm.create_blocking_indexes)
    -- (a materialized CTE is planned for all its rows: a LIMIT inside would tempt the planner to scan the table)
    EXECUTE format('WITH c AS MATERIALIZED (SELECT p.customer_id FROM ecrm.customer_profile p
                     WHERE p.status = ''active'' AND p.customer_id IS DISTINCT FROM $1 AND (%s))
                    SELECT array_agg(x.customer_id) FROM (SELECT c.customer_id FROM c ORDER BY c.customer_id LIMIT $3) x',
                   (SELECT string_agg(format('((%s))::text = $2[%s]', ecrm._blocking_key(mdl.blocking -> (i - 1)), i), ' OR ')
                      FROM generate_series(1, nkeys) i))
        INTO cands USING probe_id, keys, max_candidates;
    IF cands IS NULL THEN
        RETURN;
    END IF;
    RETURN QUERY EXECUTE format(
        'WITH l AS (%s), r AS (%s)
         SELECT s.id, s.w, ecrm.match_probability(s.w), s.gamma
           FROM (SELECT r.id, ecrm.match_weight(%s, $3, $4) AS w, %s AS gamma FROM l, r) s
          ORDER BY 3 DESC, 1',
        ecrm._features_sql(mdl, '(SELECT * FROM jsonb_populate_record(NULL::ecrm.customer_profile, $1)) src', 'coalesce(src.customer_id, -1)', false),
        ecrm._features_sql(mdl, '(SELECT * FROM ecrm.customer_profile WHERE customer_id = ANY ($2)) src', 'src.customer_id', false),
        ecrm._gamma_sql(mdl), ecrm._gamma_sql(mdl))
        USING probe, cands, w, mdl.prior;
END
$$;

CREATE FUNCTION ecrm._check_max_candidates(max_candidates integer) RETURNS void
    LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
    RETURN ecrm._check_between(max_candidates, 1, 10000, 'max_candidates');

CREATE FUNCTION ecrm.match_candidates(customer_id bigint, max_candidates integer DEFAULT 100)
    RETURNS TABLE (other_id bigint, match_weight double precision, match_probability double precision, gamma smallint[])
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    probe jsonb;
BEGIN
    PERFORM ecrm._check_max_candidates(max_candidates);
    IF match_candidates.customer_id IS NULL THEN
        RAISE EXCEPTION 'customer_id must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT to_jsonb(p) INTO probe FROM ecrm.customer_profile p WHERE p.customer_id = match_candidates.customer_id;
    IF probe IS NULL THEN
        RAISE EXCEPTION 'customer % does not exist', coalesce(match_candidates.customer_id::text, 'NULL')
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN QUERY SELECT * FROM ecrm._score_probe(ecrm._model('customer'), probe, match_candidates.customer_id, max_candidates);
END
$$;
COMMENT ON FUNCTION ecrm.match_candidates(bigint, integer) IS
    'The active profiles that may be the same customer as this one: those sharing a blocking key of the customer model (found through its expression indexes, at most max_candidates), scored and best first';

CREATE FUNCTION ecrm.find_matches(customer jsonb, max_candidates integer DEFAULT 100)
    RETURNS TABLE (customer_id bigint, match_weight double precision, match_probability double precision, gamma smallint[])
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    doc jsonb;
BEGIN
    PERFORM ecrm._check_max_candidates(max_candidates);
    IF customer IS NULL THEN
        RAISE EXCEPTION 'customer must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    doc := ecrm._check_object(customer, 'customer', 65536) - 'customer_id';
    -- phone as stored (E.164), unreadable values count as missing
    IF doc ? 'phone' THEN
        doc := jsonb_set(doc, '{phone}', coalesce(to_jsonb(ecrm.normalize_phone(ecrm._json_text(doc, 'phone', 64))), 'null'));
    END IF;
    IF doc ? 'birth_date' THEN
        doc := jsonb_set(doc, '{birth_date}', coalesce(to_jsonb(ecrm.normalize_date(ecrm._json_text(doc, 'birth_date', 40), 'YMD')), 'null'));
    END IF;
    IF doc ? 'country' THEN
        doc := jsonb_set(doc, '{country}', to_jsonb(upper(ecrm._json_text(doc, 'country', 100))));
    END IF;
    doc := doc - 'status' - 'merged_into' - 'lifecycle_stage' - 'created_at' - 'updated_at' - 'attributes';
    BEGIN
        PERFORM jsonb_populate_record(NULL::ecrm.customer_profile, doc);
    EXCEPTION WHEN data_exception THEN
        RAISE EXCEPTION 'customer is not a valid profile: %', SQLERRM USING ERRCODE = 'invalid_parameter_value';
    END;
    RETURN QUERY SELECT * FROM ecrm._score_probe(ecrm._model('customer'), doc, NULL, max_candidates);
END
$$;
COMMENT ON FUNCTION ecrm.find_matches(jsonb, integer) IS
    'The active profiles that may be the customer described by a JSON object (the fields of ecrm.upsert_customer), found through the blocking-key indexes and scored, best first; nothing is written';

-- Real-time resolution, called by ecrm.upsert_customer: SECURITY DEFINER because it may merge (see merge_customers).
CREATE FUNCTION ecrm.resolve_duplicates(customer_id bigint) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    mode     text := coalesce(nullif(current_setting('ecrm.realtime_resolution', true), ''), 'merge');
    id       bigint := ecrm.resolve_customer(customer_id);
    mdl      ecrm.match_model;
    probe    jsonb;
    c        record;
    best     bigint;
    best_p   double precision;
    survivor bigint;
BEGIN
    IF customer_id IS NULL THEN
        RAISE EXCEPTION 'customer_id must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF id IS NULL THEN
        RAISE EXCEPTION 'customer % does not exist', customer_id USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF mode = 'off' THEN
        RETURN id;
    END IF;
    SELECT to_jsonb(p) INTO probe FROM ecrm.customer_profile p WHERE p.customer_id = id AND p.status = 'active';
    IF probe IS NULL THEN
        RETURN id;
    END IF;
    -- a merge under REPEATABLE READ could miss concurrent rows: queue for review instead
    IF current_setting('transaction_isolation') = 'repeatable read' THEN
        mode := 'review';
    END IF;
    mdl := ecrm._model('customer');
    FOR c IN SELECT s.* FROM ecrm._score_probe(mdl, probe, id, 100) s
              WHERE s.match_probability >= mdl.review_threshold
                AND NOT EXISTS (SELECT FROM ecrm.match_candidate m
                                 WHERE m.customer_id = least(id, s.other_id) AND m.other_id = greatest(id, s.other_id)
                                   AND m.status = 'rejected')
              ORDER BY s.match_probability DESC, s.other_id LOOP
        IF best IS NULL AND mode = 'merge' AND c.match_probability >= mdl.auto_merge_threshold THEN
            best := c.other_id;
            best_p := c.match_probability;
            CONTINUE;
        END IF;
        INSERT INTO ecrm.match_candidate AS m (customer_id, other_id, model_id, match_weight, match_probability, gamma, found_by)
        VALUES (least(id, c.other_id), greatest(id, c.other_id), mdl.model_id, c.match_weight, c.match_probability, c.gamma, 'realtime')
        ON CONFLICT ON CONSTRAINT match_candidate_pair_key DO UPDATE
            SET match_weight = EXCLUDED.match_weight, match_probability = EXCLUDED.match_probability, gamma = EXCLUDED.gamma
          WHERE m.status = 'pending';
    END LOOP;
    IF best IS NULL THEN
        RETURN id;
    END IF;
    -- the older profile survives, so established ids stay
    SELECT p.customer_id INTO survivor FROM ecrm.customer_profile p WHERE p.customer_id IN (id, best)
     ORDER BY p.created_at, p.customer_id LIMIT 1;
    PERFORM ecrm._merge_one(ARRAY[id, best], survivor, NULL, 'real-time resolution', 'realtime', best_p);
    RETURN ecrm.resolve_customer(survivor);
END
$$;
COMMENT ON FUNCTION ecrm.resolve_duplicates(bigint) IS
    'Resolve a profile against the others (ecrm.upsert_customer calls it): by ecrm.realtime_resolution, merge it with its best match at or above the customer model''s auto-merge threshold (the older profile survives) and queue the matches at or above the review threshold; rejected pairs are left alone. Returns the live customer id';

------------------------------------------------------------------------------
-- Dedupe runs over the CRM and the review queue
------------------------------------------------------------------------------
CREATE FUNCTION ecrm.dedupe(merge boolean DEFAULT false, model text DEFAULT 'customer', max_cluster_size integer DEFAULT 20)
    RETURNS TABLE (run_id bigint, profiles bigint, candidate_pairs bigint, review_pairs bigint, auto_merge_pairs bigint,
                   auto_merge_clusters bigint, profiles_in_clusters bigint, merges bigint, seconds numeric)
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET jit = off AS
$$
DECLARE
    mdl   ecrm.match_model := ecrm._model(model);
    rid   bigint;
    st    jsonb;
    w     double precision[] := ecrm._weights(mdl.comparisons);
    t0    timestamptz := clock_timestamp();
    nrev  bigint;
    nauto bigint;
    ncl   bigint;
    nprof bigint;
    big   bigint;
    nm    bigint := 0;
BEGIN
    PERFORM ecrm._check_between(max_cluster_size, 2, 1000, 'max_cluster_size');
    IF merge IS NULL THEN
        RAISE EXCEPTION 'merge must be true or false, not null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    INSERT INTO ecrm.dedupe_run AS r (model_id) VALUES (mdl.model_id) RETURNING r.run_id INTO rid;
    st := ecrm._build_pairs(mdl, '(SELECT * FROM ecrm.customer_profile WHERE status = ''active'') src', 'customer_id');

    -- pairs at or above the review threshold, minus those a person rejected
    PERFORM ecrm._drop_temp('{_ecrm_scored}');
    CREATE TEMP TABLE _ecrm_scored ON COMMIT DROP AS
    SELECT s.id_l, s.id_r, s.w, ecrm.match_probability(s.w) AS p, s.gamma
      FROM (SELECT p.id_l, p.id_r, p.gamma, ecrm.match_weight(p.gamma, w, mdl.prior) AS w FROM pg_temp._ecrm_pairs p) s
     WHERE ecrm.match_probability(s.w) >= mdl.review_threshold
       AND NOT EXISTS (SELECT FROM ecrm.match_candidate m WHERE m.customer_id = s.id_l AND m.other_id = s.id_r AND m.status = 'rejected');

    RAISE DEBUG 'ecrm: pairs scored at %', clock_timestamp();
    -- the auto-merge list: connected components of the pairs above the auto-merge threshold;
    -- a cluster larger than max_cluster_size (a chain of doubtful links) goes to review instead
    PERFORM ecrm._drop_temp('{_ecrm_cluster}');
    CREATE TEMP TABLE _ecrm_cluster ON COMMIT DROP AS
    SELECT c.node AS customer_id, c.component AS cluster_id
      FROM ecrm.components((SELECT ecrm.connected_components(s.id_l, s.id_r) FROM pg_temp._ecrm_scored s
                             WHERE s.p >= mdl.auto_merge_threshold)) c;
    WITH big AS (SELECT c.cluster_id FROM pg_temp._ecrm_cluster c GROUP BY 1 HAVING count(*) > max_cluster_size),
         del AS (DELETE FROM pg_temp._ecrm_cluster c USING big WHERE c.cluster_id = big.cluster_id RETURNING 1)
    SELECT count(*) INTO big FROM del;
    ANALYZE pg_temp._ecrm_cluster;
    INSERT INTO ecrm.dedupe_cluster (run_id, customer_id, cluster_id) SELECT rid, c.customer_id, c.cluster_id FROM pg_temp._ecrm_cluster c;
    SELECT count(DISTINCT c.cluster_id), count(*) INTO ncl, nprof FROM pg_temp._ecrm_cluster c;
    RAISE DEBUG 'ecrm: clusters found at %', clock_timestamp();

    -- the review queue: pairs between the thresholds, and auto pairs of oversized clusters,
    -- unless both profiles will be merged together anyway
    INSERT INTO ecrm.match_candidate AS m (customer_id, other_id, model_id, run_id, match_weight, match_probability, gamma, found_by)
    SELECT s.id_l, s.id_r, mdl.model_id, rid, s.w, s.p, s.gamma, 'dedupe'
      FROM pg_temp._ecrm_scored s
      LEFT JOIN pg_temp._ecrm_cluster a ON a.customer_id = s.id_l
      LEFT JOIN pg_temp._ecrm_cluster b ON b.customer_id = s.id_r
     WHERE a.cluster_id IS NULL OR b.cluster_id IS NULL OR a.cluster_id <> b.cluster_id
    ON CONFLICT ON CONSTRAINT match_candidate_pair_key DO UPDATE
        SET match_weight = EXCLUDED.match_weight, match_probability = EXCLUDED.match_probability, gamma = EXCLUDED.gamma,
            run_id = EXCLUDED.run_id
      WHERE m.status = 'pending';
    GET DIAGNOSTICS nrev = ROW_COUNT;
    SELECT count(*) INTO nauto FROM pg_temp._ecrm_scored s WHERE s.p >= mdl.auto_merge_threshold;

    st := st || jsonb_build_object('review_pairs', nrev, 'auto_merge_pairs', nauto, 'auto_merge_clusters', ncl,
                                   'profiles_in_clusters', nprof, 'oversized_cluster_profiles', big,
                                   'review_threshold', mdl.review_threshold, 'auto_merge_threshold', mdl.auto_merge_threshold);
    UPDATE ecrm.dedupe_run r SET finished_at = clock_timestamp(), stats = st WHERE r.run_id = rid;
    IF merge THEN
        nm := ecrm.apply_dedupe(rid);
    END IF;
    RETURN QUERY SELECT rid, (st ->> 'rows')::bigint, (st ->> 'candidate_pairs')::bigint, nrev, nauto, ncl, nprof, nm,
                        round(extract(epoch FROM clock_timestamp() - t0)::numeric, 3);
END
$$;
COMMENT ON FUNCTION ecrm.dedupe(boolean, text, integer) IS
    'Find duplicate customers: candidate pairs by blocking key, scored by the customer model; pairs between the review and auto-merge thresholds go to the review queue (ecrm.merge_review_queue), pairs above the auto-merge threshold form clusters, the auto-merge list (ecrm.dedupe_cluster). Merges the clusters only when merge is true (else see ecrm.apply_dedupe). Returns the run''s figures';

-- SECURITY DEFINER for the reason given at merge_customers.
CREATE FUNCTION ecrm.apply_dedupe(run_id bigint) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    run ecrm.dedupe_run;
    n   bigint;
BEGIN
    PERFORM ecrm._check_merge_isolation();
    SELECT * INTO run FROM ecrm.dedupe_run r WHERE r.run_id = apply_dedupe.run_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'dedupe run % does not exist', coalesce(apply_dedupe.run_id::text, 'NULL') USING ERRCODE = 'no_data_found';
    END IF;
    IF run.applied_at IS NOT NULL THEN
        RAISE EXCEPTION 'dedupe run % was already applied', run.run_id
            USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'See ecrm.merge_history for its merges.';
    END IF;
    PERFORM ecrm._drop_temp('{_ecrm_merge_map}');
    CREATE TEMP TABLE _ecrm_merge_map (merge_id bigint, survivor bigint, customer_id bigint) ON COMMIT DROP;
    -- lock before the merges get their ids (see _merge_one); profiles merged or erased meanwhile are left out below
    BEGIN
        PERFORM FROM ecrm.customer_profile p
          WHERE p.customer_id IN (SELECT d.customer_id FROM ecrm.dedupe_cluster d WHERE d.run_id = run.run_id)
          ORDER BY p.customer_id FOR UPDATE OF p;
    EXCEPTION WHEN deadlock_detected OR lock_not_available THEN
        RAISE EXCEPTION 'applying dedupe run % conflicted with a concurrent transaction', run.run_id
            USING ERRCODE = SQLSTATE, DETAIL = SQLERRM, HINT = 'Nothing was merged. Retry.';
    END;
    -- each cluster's profiles that are still active; the oldest survives
    WITH c AS (SELECT d.cluster_id, array_agg(p.customer_id ORDER BY p.created_at, p.customer_id) AS ids
                 FROM ecrm.dedupe_cluster d JOIN ecrm.customer_profile p ON p.customer_id = d.customer_id
                WHERE d.run_id = run.run_id AND p.status = 'active'
                GROUP BY d.cluster_id HAVING count(*) >= 2),
         ev AS (INSERT INTO ecrm.merge_event AS e (customer_id, survivor_id, merged_ids, source, reason, run_id)
                SELECT c.ids[1], c.ids[1], c.ids[2:], 'dedupe', format('dedupe run %s', run.run_id), run.run_id FROM c
                RETURNING e.merge_id, e.survivor_id, e.merged_ids)
    INSERT INTO pg_temp._ecrm_merge_map SELECT ev.merge_id, ev.survivor_id, u FROM ev, unnest(ev.survivor_id || ev.merged_ids) u;
    SELECT count(DISTINCT m.merge_id) INTO n FROM pg_temp._ecrm_merge_map m;
    IF n > 0 THEN
        BEGIN
            PERFORM ecrm._merge_apply(NULL);
        EXCEPTION WHEN deadlock_detected OR lock_not_available THEN
            RAISE EXCEPTION 'applying dedupe run % conflicted with a concurrent transaction', run.run_id
                USING ERRCODE = SQLSTATE, DETAIL = SQLERRM, HINT = 'Nothing was merged. Retry.';
        END;
    END IF;
    UPDATE ecrm.dedupe_run r SET applied_at = now(), stats = r.stats || jsonb_build_object('merges', n)
     WHERE r.run_id = run.run_id;
    RETURN n;
END
$$;
COMMENT ON FUNCTION ecrm.apply_dedupe(bigint) IS
    'Merge every cluster of a dedupe run''s auto-merge list (each into its oldest profile), set-based in one transaction, each merge recorded for ecrm.unmerge(). Returns the number of merges';

-- SECURITY DEFINER for the reason given at merge_customers.
CREATE FUNCTION ecrm.decide_match(candidate_id bigint, decision text, survivor bigint DEFAULT NULL) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    c   ecrm.match_candidate;
    a   bigint;
    b   bigint;
    mid bigint;
BEGIN
    IF decision IS NULL OR decision NOT IN ('merge', 'reject') THEN
        RAISE EXCEPTION 'decision must be merge or reject, not %', coalesce('"' || left(decision, 40) || '"', 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF decide_match.candidate_id IS NULL THEN
        RAISE EXCEPTION 'candidate_id must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT * INTO c FROM ecrm.match_candidate m WHERE m.candidate_id = decide_match.candidate_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'match candidate % does not exist', coalesce(decide_match.candidate_id::text, 'NULL')
            USING ERRCODE = 'no_data_found';
    END IF;
    IF c.status <> 'pending' THEN
        RAISE EXCEPTION 'match candidate % was already decided: %', c.candidate_id, c.status
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    a := ecrm.resolve_customer(c.customer_id);
    b := ecrm.resolve_customer(c.other_id);
    IF decision = 'reject' THEN
        UPDATE ecrm.match_candidate m SET status = 'rejected', decided_at = now(), decided_by = current_user
         WHERE m.candidate_id = c.candidate_id;
        RETURN NULL;
    END IF;
    IF survivor IS NOT NULL AND survivor NOT IN (a, b) THEN
        RAISE EXCEPTION 'survivor % is neither of the pair''s customers % and %', survivor, a, b
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF a = b THEN
        UPDATE ecrm.match_candidate m SET status = 'merged', decided_at = now(), decided_by = current_user
         WHERE m.candidate_id = c.candidate_id;
        RETURN NULL;
    END IF;
    mid := ecrm._merge_one(ARRAY[a, b], survivor, NULL, 'reviewed', 'review', c.match_probability);
    UPDATE ecrm.match_candidate m SET status = 'merged', merge_id = mid, decided_at = now(), decided_by = current_user
     WHERE m.candidate_id = c.candidate_id;
    RETURN mid;
END
$$;
COMMENT ON FUNCTION ecrm.decide_match(bigint, text, bigint) IS
    'Decide a pair of the review queue: merge (survivor optional; returns the merge id) or reject (the pair is never merged automatically again)';

-- The level of each comparison of a comparison vector, as {"comparison": "level"}.
CREATE FUNCTION ecrm.explain_gamma(model text, gamma smallint[]) RETURNS jsonb
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT jsonb_object_agg(c ->> 'name', ecrm._level_label(c ->> 'kind', c -> 'thresholds', (c ->> 'levels')::int, gamma[o]::int)
                            ORDER BY o)
      FROM jsonb_array_elements((ecrm._model(model)).comparisons) WITH ORDINALITY x(c, o)
     WHERE o <= cardinality(gamma)
$$;
COMMENT ON FUNCTION ecrm.explain_gamma(text, smallint[]) IS
    'A comparison vector in words: {"first_name": "exact", "email": "missing", ...}';

CREATE VIEW ecrm.merge_review_queue AS
SELECT c.candidate_id, a.customer_id, b.customer_id AS other_id,
       round(c.match_probability::numeric, 4) AS match_probability, round(c.match_weight::numeric, 2) AS match_weight,
       nullif(concat_ws(' ', a.first_name, a.last_name), '') AS full_name,
       nullif(concat_ws(' ', b.first_name, b.last_name), '') AS other_full_name,
       a.email, b.email AS other_email, a.phone, b.phone AS other_phone,
       concat_ws(' ', a.postal_code, a.city) AS place, concat_ws(' ', b.postal_code, b.city) AS other_place,
       ecrm.explain_gamma(mm.name, c.gamma) AS evidence, c.found_by, c.created_at
  FROM ecrm.match_candidate c
  JOIN ecrm.match_model mm ON mm.model_id = c.model_id
  JOIN ecrm.customer_profile a ON a.customer_id = ecrm.resolve_customer(c.customer_id)
  JOIN ecrm.customer_profile b ON b.customer_id = ecrm.resolve_customer(c.other_id)
 WHERE c.status = 'pending' AND a.customer_id <> b.customer_id AND a.status = 'active' AND b.status = 'active';
COMMENT ON VIEW ecrm.merge_review_queue IS
    'Pairs of profiles that may be one customer, waiting for a person (ecrm.decide_match): both as they are now (merged ids resolved), with the evidence per field';
COMMENT ON COLUMN ecrm.merge_review_queue.candidate_id IS 'Id to pass to ecrm.decide_match';
COMMENT ON COLUMN ecrm.merge_review_queue.match_probability IS 'Probability that the two profiles are one customer';
COMMENT ON COLUMN ecrm.merge_review_queue.match_weight IS 'log2 of the odds that they are one customer';
COMMENT ON COLUMN ecrm.merge_review_queue.evidence IS 'How each field compares: exact, similar, different or missing';
COMMENT ON COLUMN ecrm.merge_review_queue.other_id IS 'The other profile of the pair';
COMMENT ON COLUMN ecrm.merge_review_queue.other_full_name IS 'First and last name of the other profile';
COMMENT ON COLUMN ecrm.merge_review_queue.other_email IS 'Email of the other profile';
COMMENT ON COLUMN ecrm.merge_review_queue.other_phone IS 'Phone of the other profile';
COMMENT ON COLUMN ecrm.merge_review_queue.place IS 'Postal code and city of the profile';
COMMENT ON COLUMN ecrm.merge_review_queue.other_place IS 'Postal code and city of the other profile';
COMMENT ON COLUMN ecrm.merge_review_queue.found_by IS 'dedupe (a dedupe run) or realtime (when a profile was written)';

CREATE VIEW ecrm.merge_history AS
SELECT e.merge_id, e.survivor_id, e.merged_ids, e.source, e.reason, e.probability, e.run_id, e.merged_at, e.merged_by,
       e.unmerged_at, e.unmerged_by,
       coalesce(i.repointed, 0) AS rows_repointed, coalesce(i.deleted, 0) AS rows_deleted
  FROM ecrm.merge_event e
  LEFT JOIN (SELECT x.merge_id,
                    sum(jsonb_array_length(x.row_data)) FILTER (WHERE x.action = 'repointed') AS repointed,
                    count(*) FILTER (WHERE x.action = 'deleted') AS deleted
               FROM ecrm.merge_image x GROUP BY x.merge_id) i ON i.merge_id = e.merge_id;
COMMENT ON VIEW ecrm.merge_history IS 'Every merge, who made it and why, how many rows it moved, and whether it was undone';
COMMENT ON COLUMN ecrm.merge_history.survivor_id IS 'The profile that kept its id';
COMMENT ON COLUMN ecrm.merge_history.merged_ids IS 'The profiles merged into it (now tombstones, unless undone)';
COMMENT ON COLUMN ecrm.merge_history.source IS 'manual, review, dedupe or realtime';
COMMENT ON COLUMN ecrm.merge_history.rows_repointed IS 'Rows of customer-keyed tables moved to the survivor';
COMMENT ON COLUMN ecrm.merge_history.rows_deleted IS 'Rows deleted by the merge (kept in the ledger for unmerge)';
COMMENT ON COLUMN ecrm.merge_history.unmerged_at IS 'When the merge was undone (ecrm.unmerge)';
COMMENT ON COLUMN ecrm.merge_history.merge_id IS 'Merge id (to pass to ecrm.unmerge)';
COMMENT ON COLUMN ecrm.merge_history.reason IS 'Why the profiles were merged';
COMMENT ON COLUMN ecrm.merge_history.probability IS 'Match probability of the pair, for merges found by a model';
COMMENT ON COLUMN ecrm.merge_history.run_id IS 'The dedupe run that proposed the merge';
COMMENT ON COLUMN ecrm.merge_history.merged_at IS 'When the merge was made';
COMMENT ON COLUMN ecrm.merge_history.merged_by IS 'Who made it (database role)';
COMMENT ON COLUMN ecrm.merge_history.unmerged_by IS 'Who undid it';

------------------------------------------------------------------------------
-- pg_dump keeps the user data of identity resolution; privileges
------------------------------------------------------------------------------
DO $dump$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['ecrm.dedupe_run', 'ecrm.dedupe_cluster', 'ecrm.match_candidate', 'ecrm.merge_event',
                             'ecrm.merge_image', 'ecrm.survivorship_rule'] LOOP
        PERFORM pg_catalog.pg_extension_config_dump(t::regclass, '');
        PERFORM pg_catalog.pg_extension_config_dump(s.seq, '')
           FROM (SELECT pg_catalog.pg_get_serial_sequence(t, a.attname)::regclass AS seq
                   FROM pg_catalog.pg_attribute a
                  WHERE a.attrelid = t::regclass AND a.attidentity <> '' LIMIT 1) s;
    END LOOP;
END
$dump$;
-- Every model is dumped, the built-in customer model too (trained, it is worth keeping).  CREATE EXTENSION
-- makes that row again before the data is restored, so while restoring, the dumped row updates it.
CREATE FUNCTION ecrm._match_model_restore() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    IF ecrm._restoring() AND NEW.builtin THEN
        UPDATE ecrm.match_model m
           SET comparisons = NEW.comparisons, blocking = NEW.blocking, prior = NEW.prior,
               review_threshold = NEW.review_threshold, auto_merge_threshold = NEW.auto_merge_threshold,
               max_block_size = NEW.max_block_size, trained_at = NEW.trained_at, training = NEW.training,
               description = NEW.description, created_at = NEW.created_at
         WHERE m.name = NEW.name AND m.builtin AND m.model_id = NEW.model_id;
        IF FOUND THEN
            RETURN NULL;
        END IF;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER match_model_restore BEFORE INSERT ON ecrm.match_model
    FOR EACH ROW EXECUTE FUNCTION ecrm._match_model_restore();
SELECT pg_catalog.pg_extension_config_dump('ecrm.match_model', '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('ecrm.match_model', 'model_id')::regclass, '');

-- The pure kernel: everyone who works with ecrm. Writers of profiles need the functions of the
-- blocking-key indexes, which run with the writer's privileges.
GRANT EXECUTE ON FUNCTION
    ecrm.normalize_name(text, boolean), ecrm.normalize_address(text), ecrm.normalize_postal_code(text),
    ecrm.normalize_date(text, text), ecrm.fold(text), ecrm.soundex(text), ecrm.email_key(text),
    ecrm.jaro(text, text), ecrm.jaro_winkler(text, text, double precision), ecrm.damerau_levenshtein(text, text),
    ecrm.damerau_levenshtein(text, text, integer), ecrm.token_set_similarity(text, text),
    ecrm.numeric_closeness(double precision, double precision, double precision), ecrm.date_closeness(date, date, integer),
    ecrm.comparison_level(text, text, text, double precision[]), ecrm.comparison_level(date, date, text, double precision[]),
    ecrm.comparison_level(double precision, double precision, text, double precision[]),
    ecrm.comparison_level_count(text, double precision[]),
    ecrm.match_weight(smallint[], double precision[], double precision), ecrm.match_probability(double precision),
    ecrm.level_weights(double precision[], double precision[]),
    ecrm.fs_em(smallint[], double precision[], double precision[], double precision[], double precision, boolean, integer, double precision),
    ecrm._cc_trans(internal, bigint, bigint), ecrm._cc_trans(internal, bigint, bigint, boolean),
    ecrm._cc_combine(internal, internal), ecrm._cc_serialize(internal), ecrm._cc_deserialize(bytea, internal),
    ecrm._cc_final(internal), ecrm.connected_components(bigint, bigint), ecrm.connected_components(bigint, bigint, boolean),
    ecrm.components(bigint[])
   TO ecrm_agent, ecrm_analyst;

-- Agents find, review, merge and unmerge duplicates (merges run as the extension owner, see merge_customers).
GRANT SELECT ON ecrm.match_model, ecrm.survivorship_rule, ecrm.match_candidate, ecrm.merge_event, ecrm.dedupe_run,
                ecrm.dedupe_cluster, ecrm.merge_review_queue, ecrm.merge_history, ecrm.survivorship
   TO ecrm_agent;
GRANT EXECUTE ON FUNCTION
    ecrm.match_candidates(bigint, integer), ecrm.find_matches(jsonb, integer), ecrm.resolve_duplicates(bigint),
    ecrm.merge_customers(bigint[], bigint, jsonb, text), ecrm.merge_preview(bigint[], bigint, jsonb),
    ecrm.unmerge(bigint, boolean), ecrm.decide_match(bigint, text, bigint), ecrm.explain_gamma(text, smallint[]),
    ecrm._record_for_member(bigint, bigint, jsonb, jsonb),
    ecrm.model_weights(text),
    -- internal helpers the functions above call as the invoking role
    ecrm._model(text), ecrm._check_max_candidates(integer), ecrm._check_between(bigint, bigint, bigint, text), ecrm._score_probe(ecrm.match_model, jsonb, bigint, integer),
    ecrm._features_sql(ecrm.match_model, text, text, boolean, boolean), ecrm._gamma_sql(ecrm.match_model, text, text),
    ecrm._weights(jsonb), ecrm._mu_matrix(jsonb, text), ecrm._blocking_key(jsonb), ecrm._level_label(text, jsonb, integer, integer),
    ecrm._survivorship(jsonb)
   TO ecrm_agent;
