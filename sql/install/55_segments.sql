
------------------------------------------------------------------------------
-- Segments (issue 6).  Part 1: the idset type (src/idset.c, src/idset_agg.c)
-- a compressed set of customer ids on roaring bitmaps.
------------------------------------------------------------------------------
CREATE TYPE ecrm.idset;

CREATE FUNCTION ecrm.idset_in(cstring) RETURNS ecrm.idset
    AS 'MODULE_PATHNAME', 'ecrm_idset_in' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION ecrm.idset_out(ecrm.idset) RETURNS cstring
    AS 'MODULE_PATHNAME', 'ecrm_idset_out' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION ecrm.idset_recv(internal) RETURNS ecrm.idset
    AS 'MODULE_PATHNAME', 'ecrm_idset_recv' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION ecrm.idset_send(ecrm.idset) RETURNS bytea
    AS 'MODULE_PATHNAME', 'ecrm_idset_send' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE TYPE ecrm.idset (
    INPUT = ecrm.idset_in,
    OUTPUT = ecrm.idset_out,
    RECEIVE = ecrm.idset_recv,
    SEND = ecrm.idset_send,
    INTERNALLENGTH = VARIABLE,
    ALIGNMENT = int4,
    STORAGE = extended
);
COMMENT ON TYPE ecrm.idset IS
    'A compressed set of non-negative bigint ids (customer ids) on roaring bitmaps; text form {1,2,5-9}';

COMMENT ON FUNCTION ecrm.idset_in(cstring) IS 'Text input of idset: {1,2,5-9}';
COMMENT ON FUNCTION ecrm.idset_out(ecrm.idset) IS 'Text output of idset: ascending ids, runs of three or more as ranges';
COMMENT ON FUNCTION ecrm.idset_recv(internal) IS 'Binary input of idset; every byte is validated';
COMMENT ON FUNCTION ecrm.idset_send(ecrm.idset) IS 'Binary output of idset (versioned, little-endian, portable roaring bitmaps)';

-- Building
CREATE FUNCTION ecrm.idset(ids bigint[]) RETURNS ecrm.idset
    AS 'MODULE_PATHNAME', 'ecrm_idset_from_array' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.idset(bigint[]) IS 'The set of the ids in an array (duplicates collapse; NULL elements and negative ids are errors)';
CREATE CAST (bigint[] AS ecrm.idset) WITH FUNCTION ecrm.idset(bigint[]);

CREATE FUNCTION ecrm.idset_range(lo bigint, hi bigint) RETURNS ecrm.idset
    AS 'MODULE_PATHNAME', 'ecrm_idset_range' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.idset_range(bigint, bigint) IS 'Every id from lo to hi inclusive (empty when lo > hi)';

CREATE FUNCTION ecrm.idset_add(set ecrm.idset, id bigint) RETURNS ecrm.idset
    AS 'MODULE_PATHNAME', 'ecrm_idset_add' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.idset_add(ecrm.idset, bigint) IS 'The set with one more id (operator |); to build a large set use idset_agg()';
CREATE FUNCTION ecrm.idset_remove(set ecrm.idset, id bigint) RETURNS ecrm.idset
    AS 'MODULE_PATHNAME', 'ecrm_idset_remove' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.idset_remove(ecrm.idset, bigint) IS 'The set without one id (operator -)';

-- Reading
CREATE FUNCTION ecrm.idset_cardinality(set ecrm.idset) RETURNS bigint
    AS 'MODULE_PATHNAME', 'ecrm_idset_cardinality' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.idset_cardinality(ecrm.idset) IS 'Number of ids in the set (read from the header, constant time)';
CREATE FUNCTION ecrm.idset_is_empty(set ecrm.idset) RETURNS boolean
    AS 'MODULE_PATHNAME', 'ecrm_idset_is_empty' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.idset_is_empty(ecrm.idset) IS 'Whether the set has no ids';
CREATE FUNCTION ecrm.idset_min(set ecrm.idset) RETURNS bigint
    AS 'MODULE_PATHNAME', 'ecrm_idset_min' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.idset_min(ecrm.idset) IS 'Smallest id; NULL for an empty set';
CREATE FUNCTION ecrm.idset_max(set ecrm.idset) RETURNS bigint
    AS 'MODULE_PATHNAME', 'ecrm_idset_max' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.idset_max(ecrm.idset) IS 'Largest id; NULL for an empty set';
CREATE FUNCTION ecrm.idset_to_array(set ecrm.idset) RETURNS bigint[]
    AS 'MODULE_PATHNAME', 'ecrm_idset_to_array' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.idset_to_array(ecrm.idset) IS 'The ids as an ascending array (at most 134 million)';
CREATE CAST (ecrm.idset AS bigint[]) WITH FUNCTION ecrm.idset_to_array(ecrm.idset);
CREATE FUNCTION ecrm.idset_unnest(set ecrm.idset) RETURNS SETOF bigint
    AS 'MODULE_PATHNAME', 'ecrm_idset_unnest' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE ROWS 1000;
COMMENT ON FUNCTION ecrm.idset_unnest(ecrm.idset) IS 'The ids as rows, ascending (streamed)';
CREATE FUNCTION ecrm.idset_rank(set ecrm.idset, id bigint) RETURNS bigint
    AS 'MODULE_PATHNAME', 'ecrm_idset_rank' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.idset_rank(ecrm.idset, bigint) IS 'How many ids of the set are <= id (the 1-based position of id when it is in the set)';
CREATE FUNCTION ecrm.idset_select(set ecrm.idset, n bigint) RETURNS bigint
    AS 'MODULE_PATHNAME', 'ecrm_idset_select' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.idset_select(ecrm.idset, bigint) IS 'The n-th smallest id (1-based; the inverse of idset_rank); NULL when n < 1 or n > cardinality';

-- Set algebra
CREATE FUNCTION ecrm.idset_or(a ecrm.idset, b ecrm.idset) RETURNS ecrm.idset
    AS 'MODULE_PATHNAME', 'ecrm_idset_or' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.idset_or(ecrm.idset, ecrm.idset) IS 'Union (operator |)';
CREATE FUNCTION ecrm.idset_and(a ecrm.idset, b ecrm.idset) RETURNS ecrm.idset
    AS 'MODULE_PATHNAME', 'ecrm_idset_and' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.idset_and(ecrm.idset, ecrm.idset) IS 'Intersection (operator &)';
CREATE FUNCTION ecrm.idset_andnot(a ecrm.idset, b ecrm.idset) RETURNS ecrm.idset
    AS 'MODULE_PATHNAME', 'ecrm_idset_andnot' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.idset_andnot(ecrm.idset, ecrm.idset) IS 'Difference: ids of a not in b (operator -)';
CREATE FUNCTION ecrm.idset_xor(a ecrm.idset, b ecrm.idset) RETURNS ecrm.idset
    AS 'MODULE_PATHNAME', 'ecrm_idset_xor' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.idset_xor(ecrm.idset, ecrm.idset) IS 'Symmetric difference: ids in exactly one of a and b (operator #)';
CREATE FUNCTION ecrm.idset_union(VARIADIC sets ecrm.idset[]) RETURNS ecrm.idset
    AS 'MODULE_PATHNAME', 'ecrm_idset_union' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.idset_union(ecrm.idset[]) IS 'Union of many sets (NULL elements are skipped)';
CREATE FUNCTION ecrm.idset_intersection(VARIADIC sets ecrm.idset[]) RETURNS ecrm.idset
    AS 'MODULE_PATHNAME', 'ecrm_idset_intersection' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.idset_intersection(ecrm.idset[]) IS 'Intersection of many sets, smallest first (NULL elements are skipped; NULL when none is left)';

-- Cardinalities without building the set
CREATE FUNCTION ecrm.idset_and_cardinality(a ecrm.idset, b ecrm.idset) RETURNS bigint
    AS 'MODULE_PATHNAME', 'ecrm_idset_and_cardinality' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.idset_and_cardinality(ecrm.idset, ecrm.idset) IS 'Size of the intersection, without building it';
CREATE FUNCTION ecrm.idset_or_cardinality(a ecrm.idset, b ecrm.idset) RETURNS bigint
    AS 'MODULE_PATHNAME', 'ecrm_idset_or_cardinality' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.idset_or_cardinality(ecrm.idset, ecrm.idset) IS 'Size of the union, without building it';
CREATE FUNCTION ecrm.idset_andnot_cardinality(a ecrm.idset, b ecrm.idset) RETURNS bigint
    AS 'MODULE_PATHNAME', 'ecrm_idset_andnot_cardinality' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.idset_andnot_cardinality(ecrm.idset, ecrm.idset) IS 'Size of the difference a - b, without building it';
CREATE FUNCTION ecrm.idset_xor_cardinality(a ecrm.idset, b ecrm.idset) RETURNS bigint
    AS 'MODULE_PATHNAME', 'ecrm_idset_xor_cardinality' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.idset_xor_cardinality(ecrm.idset, ecrm.idset) IS 'Size of the symmetric difference, without building it';
CREATE FUNCTION ecrm.idset_intersection_cardinality(VARIADIC sets ecrm.idset[]) RETURNS bigint
    AS 'MODULE_PATHNAME', 'ecrm_idset_intersection_cardinality' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.idset_intersection_cardinality(ecrm.idset[]) IS 'Size of the intersection of many sets (NULL elements are skipped; NULL when none is left)';
CREATE FUNCTION ecrm.idset_jaccard(a ecrm.idset, b ecrm.idset) RETURNS double precision
    AS 'MODULE_PATHNAME', 'ecrm_idset_jaccard' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.idset_jaccard(ecrm.idset, ecrm.idset) IS 'Jaccard index |a & b| / |a | b| in [0, 1]; NULL when both sets are empty';

-- Comparisons
CREATE FUNCTION ecrm.idset_eq(a ecrm.idset, b ecrm.idset) RETURNS boolean
    AS 'MODULE_PATHNAME', 'ecrm_idset_eq' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.idset_eq(ecrm.idset, ecrm.idset) IS 'Whether the sets hold the same ids (operator =)';
CREATE FUNCTION ecrm.idset_ne(a ecrm.idset, b ecrm.idset) RETURNS boolean
    AS 'MODULE_PATHNAME', 'ecrm_idset_ne' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.idset_ne(ecrm.idset, ecrm.idset) IS 'Whether the sets differ (operator <>)';
CREATE FUNCTION ecrm.idset_contains(a ecrm.idset, b ecrm.idset) RETURNS boolean
    AS 'MODULE_PATHNAME', 'ecrm_idset_contains' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.idset_contains(ecrm.idset, ecrm.idset) IS 'Whether a holds every id of b (operator @>)';
CREATE FUNCTION ecrm.idset_contained(a ecrm.idset, b ecrm.idset) RETURNS boolean
    AS 'MODULE_PATHNAME', 'ecrm_idset_contained' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.idset_contained(ecrm.idset, ecrm.idset) IS 'Whether every id of a is in b (operator <@)';
CREATE FUNCTION ecrm.idset_contains(set ecrm.idset, id bigint) RETURNS boolean
    AS 'MODULE_PATHNAME', 'ecrm_idset_contains_id' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.idset_contains(ecrm.idset, bigint) IS 'Whether the set holds the id (operator @>); reads the stored bytes without building the set';
CREATE FUNCTION ecrm.idset_contained(id bigint, set ecrm.idset) RETURNS boolean
    AS 'MODULE_PATHNAME', 'ecrm_idset_id_contained' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.idset_contained(bigint, ecrm.idset) IS 'Whether the id is in the set (operator <@)';
CREATE FUNCTION ecrm.idset_overlaps(a ecrm.idset, b ecrm.idset) RETURNS boolean
    AS 'MODULE_PATHNAME', 'ecrm_idset_overlaps' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.idset_overlaps(ecrm.idset, ecrm.idset) IS 'Whether the sets share an id (operator &&)';

CREATE OPERATOR ecrm.| (LEFTARG = ecrm.idset, RIGHTARG = ecrm.idset, FUNCTION = ecrm.idset_or, COMMUTATOR = OPERATOR(ecrm.|));
CREATE OPERATOR ecrm.& (LEFTARG = ecrm.idset, RIGHTARG = ecrm.idset, FUNCTION = ecrm.idset_and, COMMUTATOR = OPERATOR(ecrm.&));
CREATE OPERATOR ecrm.- (LEFTARG = ecrm.idset, RIGHTARG = ecrm.idset, FUNCTION = ecrm.idset_andnot);
CREATE OPERATOR ecrm.# (LEFTARG = ecrm.idset, RIGHTARG = ecrm.idset, FUNCTION = ecrm.idset_xor, COMMUTATOR = OPERATOR(ecrm.#));
CREATE OPERATOR ecrm.| (LEFTARG = ecrm.idset, RIGHTARG = bigint, FUNCTION = ecrm.idset_add);
CREATE OPERATOR ecrm.- (LEFTARG = ecrm.idset, RIGHTARG = bigint, FUNCTION = ecrm.idset_remove);
CREATE OPERATOR ecrm.= (LEFTARG = ecrm.idset, RIGHTARG = ecrm.idset, FUNCTION = ecrm.idset_eq,
    COMMUTATOR = OPERATOR(ecrm.=), NEGATOR = OPERATOR(ecrm.<>), RESTRICT = eqsel, JOIN = eqjoinsel);
CREATE OPERATOR ecrm.<> (LEFTARG = ecrm.idset, RIGHTARG = ecrm.idset, FUNCTION = ecrm.idset_ne,
    COMMUTATOR = OPERATOR(ecrm.<>), NEGATOR = OPERATOR(ecrm.=), RESTRICT = neqsel, JOIN = neqjoinsel);
CREATE OPERATOR ecrm.@> (LEFTARG = ecrm.idset, RIGHTARG = ecrm.idset, FUNCTION = ecrm.idset_contains,
    COMMUTATOR = OPERATOR(ecrm.<@), RESTRICT = contsel, JOIN = contjoinsel);
CREATE OPERATOR ecrm.<@ (LEFTARG = ecrm.idset, RIGHTARG = ecrm.idset, FUNCTION = ecrm.idset_contained,
    COMMUTATOR = OPERATOR(ecrm.@>), RESTRICT = contsel, JOIN = contjoinsel);
CREATE OPERATOR ecrm.@> (LEFTARG = ecrm.idset, RIGHTARG = bigint, FUNCTION = ecrm.idset_contains,
    COMMUTATOR = OPERATOR(ecrm.<@), RESTRICT = contsel, JOIN = contjoinsel);
CREATE OPERATOR ecrm.<@ (LEFTARG = bigint, RIGHTARG = ecrm.idset, FUNCTION = ecrm.idset_contained,
    COMMUTATOR = OPERATOR(ecrm.@>), RESTRICT = contsel, JOIN = contjoinsel);
CREATE OPERATOR ecrm.&& (LEFTARG = ecrm.idset, RIGHTARG = ecrm.idset, FUNCTION = ecrm.idset_overlaps,
    COMMUTATOR = OPERATOR(ecrm.&&), RESTRICT = areasel, JOIN = areajoinsel);

-- Aggregates: build, unite, intersect; parallel (combine + serialise) and pushed down to shards.
CREATE FUNCTION ecrm._idset_build_trans(internal, bigint) RETURNS internal
    AS 'MODULE_PATHNAME', 'ecrm_idset_build_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION ecrm._idset_union_trans(internal, ecrm.idset) RETURNS internal
    AS 'MODULE_PATHNAME', 'ecrm_idset_union_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION ecrm._idset_intersect_trans(internal, ecrm.idset) RETURNS internal
    AS 'MODULE_PATHNAME', 'ecrm_idset_intersect_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION ecrm._idset_union_combine(internal, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'ecrm_idset_union_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION ecrm._idset_intersect_combine(internal, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'ecrm_idset_intersect_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION ecrm._idset_agg_final(internal) RETURNS ecrm.idset
    AS 'MODULE_PATHNAME', 'ecrm_idset_agg_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION ecrm._idset_agg_serialize(internal) RETURNS bytea
    AS 'MODULE_PATHNAME', 'ecrm_idset_agg_serialize' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION ecrm._idset_agg_deserialize(bytea, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'ecrm_idset_agg_deserialize' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE AGGREGATE ecrm.idset_agg(bigint) (
    SFUNC = ecrm._idset_build_trans, STYPE = internal, FINALFUNC = ecrm._idset_agg_final,
    COMBINEFUNC = ecrm._idset_union_combine, SERIALFUNC = ecrm._idset_agg_serialize,
    DESERIALFUNC = ecrm._idset_agg_deserialize, PARALLEL = SAFE);
COMMENT ON AGGREGATE ecrm.idset_agg(bigint) IS 'The set of the ids of the rows (NULLs skipped; NULL when there are no ids)';
CREATE AGGREGATE ecrm.idset_union_agg(ecrm.idset) (
    SFUNC = ecrm._idset_union_trans, STYPE = internal, FINALFUNC = ecrm._idset_agg_final,
    COMBINEFUNC = ecrm._idset_union_combine, SERIALFUNC = ecrm._idset_agg_serialize,
    DESERIALFUNC = ecrm._idset_agg_deserialize, PARALLEL = SAFE);
COMMENT ON AGGREGATE ecrm.idset_union_agg(ecrm.idset) IS 'Union of the sets of the rows (NULLs skipped)';
CREATE AGGREGATE ecrm.idset_intersect_agg(ecrm.idset) (
    SFUNC = ecrm._idset_intersect_trans, STYPE = internal, FINALFUNC = ecrm._idset_agg_final,
    COMBINEFUNC = ecrm._idset_intersect_combine, SERIALFUNC = ecrm._idset_agg_serialize,
    DESERIALFUNC = ecrm._idset_agg_deserialize, PARALLEL = SAFE);
COMMENT ON AGGREGATE ecrm.idset_intersect_agg(ecrm.idset) IS 'Intersection of the sets of the rows (NULLs skipped)';

-- Binary form as bytea (the bytes binary output sends; input validated like binary input)
CREATE FUNCTION ecrm.idset(bytes bytea) RETURNS ecrm.idset
    AS 'MODULE_PATHNAME', 'ecrm_idset_from_bytea' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.idset(bytea) IS 'The set whose binary form (idset_to_bytea, binary COPY) these bytes are; every byte is validated';
CREATE FUNCTION ecrm.idset_to_bytea(set ecrm.idset) RETURNS bytea
    AS 'MODULE_PATHNAME', 'ecrm_idset_to_bytea' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.idset_to_bytea(ecrm.idset) IS 'The binary form of the set: version byte, header, then portable roaring bitmaps (little-endian)';

------------------------------------------------------------------------------
-- Part 2: k-means clustering (src/kmeans.c)
------------------------------------------------------------------------------
CREATE FUNCTION ecrm._kmeans_trans(internal, double precision[], integer) RETURNS internal
    AS 'MODULE_PATHNAME', 'ecrm_kmeans_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION ecrm._kmeans_trans(internal, double precision[], integer, integer, integer) RETURNS internal
    AS 'MODULE_PATHNAME', 'ecrm_kmeans_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION ecrm._kmeans_combine(internal, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'ecrm_kmeans_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION ecrm._kmeans_serialize(internal) RETURNS bytea
    AS 'MODULE_PATHNAME', 'ecrm_kmeans_serialize' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION ecrm._kmeans_deserialize(bytea, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'ecrm_kmeans_deserialize' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION ecrm._kmeans_final(internal) RETURNS double precision[]
    AS 'MODULE_PATHNAME', 'ecrm_kmeans_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;

-- the final function sorts the collected points in place (the result does not depend on row order)
CREATE AGGREGATE ecrm.kmeans(features double precision[], k integer) (
    SFUNC = ecrm._kmeans_trans, STYPE = internal, FINALFUNC = ecrm._kmeans_final, FINALFUNC_MODIFY = READ_WRITE,
    COMBINEFUNC = ecrm._kmeans_combine, SERIALFUNC = ecrm._kmeans_serialize,
    DESERIALFUNC = ecrm._kmeans_deserialize, PARALLEL = SAFE);
COMMENT ON AGGREGATE ecrm.kmeans(double precision[], integer) IS
    'k-means (k-means++ start, Lloyd iterations, at most 100, seed 0) over the feature vectors of the rows: the k centroids as a k x d array';
CREATE AGGREGATE ecrm.kmeans(features double precision[], k integer, max_iterations integer, seed integer) (
    SFUNC = ecrm._kmeans_trans, STYPE = internal, FINALFUNC = ecrm._kmeans_final, FINALFUNC_MODIFY = READ_WRITE,
    COMBINEFUNC = ecrm._kmeans_combine, SERIALFUNC = ecrm._kmeans_serialize,
    DESERIALFUNC = ecrm._kmeans_deserialize, PARALLEL = SAFE);
COMMENT ON AGGREGATE ecrm.kmeans(double precision[], integer, integer, integer) IS
    'k-means (k-means++ start, Lloyd iterations) over the feature vectors of the rows: the k centroids as a k x d array; deterministic for a seed';

CREATE FUNCTION ecrm.kmeans_assign(features double precision[], centroids double precision[]) RETURNS integer
    AS 'MODULE_PATHNAME', 'ecrm_kmeans_assign' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.kmeans_assign(double precision[], double precision[]) IS
    'The cluster (1 to k) whose centroid is nearest to the feature vector; centroids as ecrm.kmeans returns them';
