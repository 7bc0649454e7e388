
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
                   WHERE jsonb_typeof(b) <> 'string' OR btrim(b #>> '{}') = '' OR length(b #>> '{}') > 1000) THEN
        RAISE EXCEPTION 'blocking must be a non-empty JSON array of SQL key expressions (strings of 1 to 1000 characters)'
            USING ERRCODE = 'invalid_parameter_value';
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
    IF max_block_size IS NULL OR max_block_size NOT BETWEEN 2 AND 1000000 THEN
        RAISE EXCEPTION 'max_block_size must be between 2 and 1000000, not %', coalesce(max_block_size::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
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

-- SQL that computes the features (c1..cn) and blocking keys (k1..kn) of every row of a source.
CREATE FUNCTION ecrm._features_sql(model ecrm.match_model, source text, id_expr text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT format('SELECT (%s)::bigint AS id, %s, %s FROM %s',
                  id_expr,
                  (SELECT string_agg(format('(%s) AS c%s', c ->> 'expression', i), ', ' ORDER BY i)
                     FROM jsonb_array_elements(model.comparisons) WITH ORDINALITY x(c, i)),
                  (SELECT string_agg(format('(%s)::text AS k%s', b #>> '{}', i), ', ' ORDER BY i)
                     FROM jsonb_array_elements(model.blocking) WITH ORDINALITY x(b, i)),
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
-- Leaves pg_temp._ecrm_feat (id, c1.., k1..) and pg_temp._ecrm_pairs (id_l, id_r, rules, gamma);
-- returns statistics.
CREATE FUNCTION ecrm._build_pairs(model ecrm.match_model, source text, id_expr text) RETURNS jsonb
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    nkeys   int := jsonb_array_length(model.blocking);
    sel     text;
    cond    text;
    rules   text;
    parts   text[] := '{}';
    skipped jsonb := '[]';
    n       bigint;
    nrows   bigint;
BEGIN
    PERFORM ecrm._drop_temp('{_ecrm_feat,_ecrm_pairs}');
    EXECUTE 'CREATE TEMP TABLE _ecrm_feat ON COMMIT DROP AS ' || ecrm._features_sql(model, source, id_expr);
    GET DIAGNOSTICS nrows = ROW_COUNT;
    IF EXISTS (SELECT FROM pg_temp._ecrm_feat f WHERE f.id IS NULL) THEN
        RAISE EXCEPTION 'the id of every row must be a non-null integer' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- keys shared by too many rows would compare too many pairs: skip them
    FOR i IN 1 .. nkeys LOOP
        EXECUTE format('WITH big AS (SELECT k%1$s AS k, count(*) AS n FROM pg_temp._ecrm_feat WHERE k%1$s IS NOT NULL
                                     GROUP BY 1 HAVING count(*) > %2$s),
                             upd AS (UPDATE pg_temp._ecrm_feat f SET k%1$s = NULL FROM big WHERE f.k%1$s = big.k RETURNING 1)
                        SELECT count(*) FROM big', i, model.max_block_size) INTO n;
        IF n > 0 THEN
            skipped := skipped || jsonb_build_object('key', i, 'values_skipped', n);
        END IF;
    END LOOP;
    ANALYZE pg_temp._ecrm_feat;

    -- one branch per key; a pair found by an earlier key is not found again
    rules := (SELECT string_agg(format('(CASE WHEN l.k%1$s = r.k%1$s THEN %2$s ELSE 0 END)', i, 1 << (i - 1)), ' | ')
                FROM generate_series(1, nkeys) i);
    FOR i IN 1 .. nkeys LOOP
        cond := (SELECT string_agg(format(' AND NOT coalesce(l.k%1$s = r.k%1$s, false)', j), '')
                   FROM generate_series(1, i - 1) j);
        parts := parts || format('SELECT l.id AS id_l, r.id AS id_r, (%s) AS rules, %s AS gamma
                                    FROM pg_temp._ecrm_feat l JOIN pg_temp._ecrm_feat r ON l.k%s = r.k%s AND l.id < r.id
                                   WHERE true %s',
                                 rules, ecrm._gamma_sql(model), i, i, coalesce(cond, ''));
    END LOOP;
    EXECUTE 'CREATE TEMP TABLE _ecrm_pairs ON COMMIT DROP AS ' || array_to_string(parts, ' UNION ALL ');
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN jsonb_build_object('rows', nrows, 'candidate_pairs', n, 'skipped_keys', skipped);
END
$$;

-- Estimate u from random pairs of pg_temp._ecrm_feat (a seeded sample of rows, all pairs among them).
CREATE FUNCTION ecrm._estimate_u(model ecrm.match_model, random_pairs bigint, seed integer) RETURNS jsonb
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
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
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
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
        keycols := ecrm._expression_columns(model.blocking ->> (k - 1));
        SELECT array_agg(ecrm._expression_columns(c ->> 'expression') && keycols ORDER BY o) INTO involved
          FROM jsonb_array_elements(comps) WITH ORDINALITY x(c, o);
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
        SELECT * INTO em FROM ecrm.fs_em(pats, cnts, m0, u0, 0.1, true, max_iterations);
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

CREATE FUNCTION ecrm._check_training_args(random_pairs bigint, max_iterations integer) RETURNS void
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    IF random_pairs IS NULL OR random_pairs NOT BETWEEN 1000 AND 100000000 THEN
        RAISE EXCEPTION 'random_pairs must be between 1000 and 100000000, not %', coalesce(random_pairs::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF max_iterations IS NULL OR max_iterations NOT BETWEEN 1 AND 10000 THEN
        RAISE EXCEPTION 'max_iterations must be between 1 and 10000, not %', coalesce(max_iterations::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
END
$$;

CREATE FUNCTION ecrm.train_match_model(model text, relation regclass DEFAULT NULL, id_column name DEFAULT NULL,
                                       random_pairs bigint DEFAULT 1000000, max_iterations integer DEFAULT 100,
                                       seed integer DEFAULT 42) RETURNS jsonb
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
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
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
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
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
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
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
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
