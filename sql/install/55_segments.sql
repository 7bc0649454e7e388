
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
    -- never compressed: every read of a compressed set is a full pglz pass (3x the cost of an intersection
    -- size at 1.6M ids), most sets of customer ids do not compress (pglz gives up on them), and out of
    -- line uncompressed a set is read in slices (membership, min, max); pg_roaringbitmap does the same
    STORAGE = external
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

------------------------------------------------------------------------------
-- Part 3: segments in the CRM.
--
-- A segment is a definition (a JSON rule tree, or a static list, or a
-- k-means cluster) and its membership.  Membership is an idset (members, as
-- of refreshed_at) plus ecrm.segment_delta, the changes since: triggers on
-- the store re-evaluate just the customers a statement touched and write a
-- delta row and a segment_event per customer who entered or left, so the
-- big idset is never rewritten per event and concurrent writers of
-- different customers never wait for each other.  A refresh re-evaluates
-- everybody, writes the new idset and clears the deltas.
--
-- Locks: a refresh takes pg_advisory_xact_lock(736465, segment_id); the
-- triggers take the shared form, and lock the profile rows of the
-- customers they re-evaluate (FOR NO KEY UPDATE) so two transactions that
-- touch the same customer re-evaluate one after the other.
------------------------------------------------------------------------------
CREATE TABLE ecrm.segment (
    segment_id   bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    name         text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 200 AND name = btrim(name)),
    kind         text NOT NULL DEFAULT 'rule' CHECK (kind IN ('rule', 'static', 'cluster')),
    description  text CHECK (length(description) <= 2000),
    definition   jsonb,
    realtime     boolean NOT NULL DEFAULT true,
    members      ecrm.idset NOT NULL DEFAULT '{}',
    refreshed_at timestamptz,
    refresh_ms   double precision,
    sources      text[] NOT NULL DEFAULT '{}',
    depth        integer NOT NULL DEFAULT 0,
    compiled     text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT segment_definition_chk CHECK ((kind = 'rule') = (definition IS NOT NULL AND compiled IS NOT NULL))
);
-- uncompressed out-of-line storage lets a membership test read only the bytes it needs
ALTER TABLE ecrm.segment ALTER COLUMN members SET STORAGE EXTERNAL;
COMMENT ON TABLE ecrm.segment IS 'Segments: definitions (rule trees, static lists, clusters) and their membership as of the last refresh (ecrm.segment_delta holds the changes since)';
COMMENT ON COLUMN ecrm.segment.definition IS 'Rule tree (JSON) of a rule segment; see ecrm.define_segment';
COMMENT ON COLUMN ecrm.segment.realtime IS 'Whether membership follows interactions, orders and profile changes as they arrive';
COMMENT ON COLUMN ecrm.segment.members IS 'Members as of refreshed_at';
COMMENT ON COLUMN ecrm.segment.sources IS 'Store tables whose changes can move members (including through referenced segments)';
COMMENT ON COLUMN ecrm.segment.depth IS 'Longest chain of segment references below this one (refresh order)';
COMMENT ON COLUMN ecrm.segment.compiled IS 'The SQL the definition compiles to ($1: the customers to re-evaluate, NULL for all)';

CREATE TABLE ecrm.segment_dependency (
    segment_id bigint NOT NULL REFERENCES ecrm.segment ON DELETE CASCADE,
    uses       bigint NOT NULL REFERENCES ecrm.segment (segment_id),
    PRIMARY KEY (segment_id, uses)
);
CREATE INDEX segment_dependency_uses_idx ON ecrm.segment_dependency (uses);
COMMENT ON TABLE ecrm.segment_dependency IS 'Which segments a rule segment refers to (a referenced segment cannot be dropped)';

CREATE TABLE ecrm.segment_delta (
    segment_id  bigint NOT NULL REFERENCES ecrm.segment ON DELETE CASCADE,
    customer_id bigint NOT NULL REFERENCES ecrm.customer_profile (customer_id),
    is_member   boolean NOT NULL,
    changed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (segment_id, customer_id)
);
CREATE INDEX segment_delta_customer_idx ON ecrm.segment_delta (customer_id);
COMMENT ON TABLE ecrm.segment_delta IS 'Membership changes since the last refresh: a row exists exactly where current membership differs from ecrm.segment.members';

CREATE TABLE ecrm.segment_event (
    event_id    bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    segment_id  bigint NOT NULL REFERENCES ecrm.segment ON DELETE CASCADE,
    customer_id bigint NOT NULL REFERENCES ecrm.customer_profile (customer_id),
    kind        text NOT NULL CHECK (kind IN ('entered', 'exited')),
    occurred_at timestamptz NOT NULL DEFAULT now(),
    source      text NOT NULL
);
CREATE INDEX segment_event_segment_idx ON ecrm.segment_event (segment_id, occurred_at);
CREATE INDEX segment_event_customer_idx ON ecrm.segment_event (customer_id, occurred_at);
COMMENT ON TABLE ecrm.segment_event IS 'Customers entering and leaving segments, for automation to react to (poll by event_id, or LISTEN ecrm_segment)';
COMMENT ON COLUMN ecrm.segment_event.source IS 'What moved the customer: refresh, a store table (interaction, orders, ...), segment, merge, unmerge, manual';

CREATE TABLE ecrm.segment_size (
    segment_id  bigint NOT NULL REFERENCES ecrm.segment ON DELETE CASCADE,
    measured_at timestamptz NOT NULL,
    members     bigint NOT NULL,
    entered     bigint,
    exited      bigint,
    PRIMARY KEY (segment_id, measured_at)
);
COMMENT ON TABLE ecrm.segment_size IS 'Segment sizes over time: a row per refresh and per ecrm.record_segment_sizes() call';

CREATE TABLE ecrm.rfm_cutoff (
    singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    recency     double precision[] NOT NULL,
    frequency   double precision[] NOT NULL,
    monetary    double precision[] NOT NULL,
    customers   bigint NOT NULL,
    computed_at timestamptz NOT NULL
);
COMMENT ON TABLE ecrm.rfm_cutoff IS 'Quintile cut points of recency (days), frequency and monetary value at the last full refresh; real-time RFM rules score changed customers against them';

CREATE TABLE ecrm.cluster_model (
    model_id   bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    prefix     text NOT NULL,
    k          integer NOT NULL,
    features   text[] NOT NULL,
    means      double precision[] NOT NULL,
    stddevs    double precision[] NOT NULL,
    centroids  double precision[] NOT NULL,
    customers  bigint NOT NULL,
    seed       integer NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE ecrm.cluster_model IS 'k-means runs of ecrm.cluster_customers: features, their scaling and the centroids (in standard units)';

-- Profiles that are not golden records (merged, erased): few, found by index.
CREATE INDEX customer_profile_inactive_idx ON ecrm.customer_profile (customer_id) WHERE status <> 'active';

INSERT INTO ecrm.customer_table (relid, on_merge, on_erase, pii_columns, note, builtin) VALUES
    ('ecrm.segment_event', 'repoint', 'delete', '{}', 'segment history follows the customer; ecrm re-evaluates both profiles of a merge at commit', true),
    ('ecrm.segment_delta', 'delete', 'delete', '{}', 'pending membership changes; a merge or an erasure re-evaluates the customer at commit (ecrm._segment_on_status)', true);

------------------------------------------------------------------------------
-- Evaluation helpers
------------------------------------------------------------------------------

-- Active customers among the candidates (all when NULL).
CREATE FUNCTION ecrm._segment_universe(candidates bigint[]) RETURNS ecrm.idset
    LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    IF candidates IS NULL THEN
        RETURN coalesce((SELECT ecrm.idset_agg(c.customer_id) FROM ecrm.customer_profile c WHERE c.status = 'active'), '{}');
    END IF;
    RETURN coalesce((SELECT ecrm.idset_agg(c.customer_id) FROM ecrm.customer_profile c
                      WHERE c.customer_id = ANY (candidates) AND c.status = 'active'), '{}');
END
$$;

-- Profiles that are not golden records among the candidates (all when NULL).
CREATE FUNCTION ecrm._segment_inactive(candidates bigint[]) RETURNS ecrm.idset
    LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    IF candidates IS NULL THEN
        RETURN coalesce((SELECT ecrm.idset_agg(c.customer_id) FROM ecrm.customer_profile c WHERE c.status <> 'active'), '{}');
    END IF;
    RETURN coalesce((SELECT ecrm.idset_agg(c.customer_id) FROM ecrm.customer_profile c
                      WHERE c.customer_id = ANY (candidates) AND c.status <> 'active'), '{}');
END
$$;

-- Current membership of a segment (stored members with the deltas applied), among the candidates.
CREATE FUNCTION ecrm._segment_current(segment_id bigint, candidates bigint[] DEFAULT NULL) RETURNS ecrm.idset
    LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    base  ecrm.idset;
    plus  ecrm.idset;
    minus ecrm.idset;
BEGIN
    SELECT s.members INTO base FROM ecrm.segment s WHERE s.segment_id = _segment_current.segment_id;
    IF base IS NULL THEN
        RETURN NULL;
    END IF;
    IF candidates IS NULL THEN
        SELECT ecrm.idset_agg(d.customer_id) FILTER (WHERE d.is_member), ecrm.idset_agg(d.customer_id) FILTER (WHERE NOT d.is_member)
          INTO plus, minus
          FROM ecrm.segment_delta d WHERE d.segment_id = _segment_current.segment_id;
    ELSE
        base := ecrm.idset_and(base, ecrm.idset(candidates));
        SELECT ecrm.idset_agg(d.customer_id) FILTER (WHERE d.is_member), ecrm.idset_agg(d.customer_id) FILTER (WHERE NOT d.is_member)
          INTO plus, minus
          FROM ecrm.segment_delta d WHERE d.segment_id = _segment_current.segment_id AND d.customer_id = ANY (candidates);
    END IF;
    IF minus IS NOT NULL THEN
        base := ecrm.idset_andnot(base, minus);
    END IF;
    IF plus IS NOT NULL THEN
        base := ecrm.idset_or(base, plus);
    END IF;
    RETURN base;
END
$$;

------------------------------------------------------------------------------
-- RFM: recency, frequency and monetary quintile scores and named classes
------------------------------------------------------------------------------

-- 1 to 5: one more for every cut point the value beats (is above, or below when lower is better).
CREATE FUNCTION ecrm.rfm_score(value double precision, cutoffs double precision[], lower_is_better boolean DEFAULT false)
    RETURNS integer AS 'MODULE_PATHNAME', 'ecrm_rfm_score' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.rfm_score(double precision, double precision[], boolean) IS
    'Quintile score 1 to 5 of a value against four cut points (20th to 80th percentile): one more for every cut point it beats; ties share a score. NaN, infinities and cut points out of ascending order are refused (22023); a NULL value scores 1';

CREATE FUNCTION ecrm.rfm_class(r_score integer, f_score integer, m_score integer) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN (SELECT CASE
        WHEN r_score IS NULL OR x.fm IS NULL THEN NULL
        WHEN r_score = 5 AND x.fm >= 4 THEN 'champions'
        WHEN r_score IN (3, 4) AND x.fm >= 4 THEN 'loyal'
        WHEN r_score >= 4 AND x.fm IN (2, 3) THEN 'potential_loyalist'
        WHEN r_score = 5 AND x.fm = 1 THEN 'new_customer'
        WHEN r_score = 4 AND x.fm = 1 THEN 'promising'
        WHEN r_score = 3 AND x.fm = 3 THEN 'need_attention'
        WHEN r_score = 3 AND x.fm <= 2 THEN 'about_to_sleep'
        WHEN r_score <= 2 AND x.fm = 5 THEN 'cant_lose'
        WHEN r_score <= 2 AND x.fm >= 3 THEN 'at_risk'
        WHEN r_score = 1 AND x.fm = 1 THEN 'lost'
        ELSE 'hibernating' END
      FROM (SELECT (f_score + m_score + 1) / 2 AS fm) x);
COMMENT ON FUNCTION ecrm.rfm_class(integer, integer, integer) IS
    'Named RFM class from the R score and the rounded mean of the F and M scores: champions, loyal, potential_loyalist, new_customer, promising, need_attention, about_to_sleep, at_risk, cant_lose, hibernating, lost';

CREATE VIEW ecrm.rfm AS
WITH v AS (
    SELECT o.customer_id,
           max(o.ordered_at) FILTER (WHERE o.status NOT IN ('cancelled', 'returned')) AS last_order_at,
           extract(epoch FROM now() - max(o.ordered_at) FILTER (WHERE o.status NOT IN ('cancelled', 'returned')))::double precision / 86400 AS recency_days,
           count(*) FILTER (WHERE o.status NOT IN ('cancelled', 'returned')) AS frequency,
           coalesce(sum(o.total) FILTER (WHERE o.status <> 'cancelled'), 0) AS monetary
      FROM ecrm.orders o
      JOIN ecrm.customer_profile c ON c.customer_id = o.customer_id AND c.status = 'active'
     GROUP BY o.customer_id
    HAVING count(*) FILTER (WHERE o.status NOT IN ('cancelled', 'returned')) > 0),
cut AS (
    SELECT percentile_cont(ARRAY[0.2, 0.4, 0.6, 0.8]) WITHIN GROUP (ORDER BY v.recency_days) AS r,
           percentile_cont(ARRAY[0.2, 0.4, 0.6, 0.8]) WITHIN GROUP (ORDER BY v.frequency) AS f,
           percentile_cont(ARRAY[0.2, 0.4, 0.6, 0.8]) WITHIN GROUP (ORDER BY v.monetary) AS m
      FROM v)
SELECT v.customer_id, v.last_order_at, round(v.recency_days::numeric, 1) AS recency_days, v.frequency, v.monetary,
       s.r_score, s.f_score, s.m_score,
       s.r_score::text || s.f_score::text || s.m_score::text AS rfm_score,
       ecrm.rfm_class(s.r_score, s.f_score, s.m_score) AS rfm_class
  FROM v CROSS JOIN cut
  CROSS JOIN LATERAL (SELECT ecrm.rfm_score(v.recency_days, cut.r, true) AS r_score,
                             ecrm.rfm_score(v.frequency, cut.f) AS f_score,
                             ecrm.rfm_score(v.monetary::double precision, cut.m) AS m_score) s;
COMMENT ON VIEW ecrm.rfm IS 'RFM analysis of every customer with an order: recency, frequency and monetary value, their quintile scores 1 to 5 (5 best; ties share a score) and the named class';
COMMENT ON COLUMN ecrm.rfm.last_order_at IS 'Time of the latest placed order';
COMMENT ON COLUMN ecrm.rfm.recency_days IS 'Days since the latest placed order';
COMMENT ON COLUMN ecrm.rfm.frequency IS 'Placed orders (cancelled and returned left out)';
COMMENT ON COLUMN ecrm.rfm.monetary IS 'Net revenue (placed minus returned)';
COMMENT ON COLUMN ecrm.rfm.r_score IS 'Recency quintile score, 5 = most recent';
COMMENT ON COLUMN ecrm.rfm.f_score IS 'Frequency quintile score, 5 = most orders';
COMMENT ON COLUMN ecrm.rfm.m_score IS 'Monetary quintile score, 5 = most revenue';
COMMENT ON COLUMN ecrm.rfm.rfm_score IS 'The three scores as one code, such as 545';
COMMENT ON COLUMN ecrm.rfm.rfm_class IS 'champions, loyal, potential_loyalist, new_customer, promising, need_attention, about_to_sleep, at_risk, cant_lose, hibernating or lost';

CREATE VIEW ecrm.rfm_summary AS
SELECT r.rfm_class, count(*) AS customers,
       round(100.0 * count(*) / sum(count(*)) OVER (), 1) AS share_pct,
       round(avg(r.recency_days), 1) AS avg_recency_days,
       round(avg(r.frequency), 2) AS avg_frequency,
       round(avg(r.monetary), 2) AS avg_monetary,
       sum(r.monetary) AS monetary
  FROM ecrm.rfm r
 GROUP BY r.rfm_class;
COMMENT ON VIEW ecrm.rfm_summary IS 'Customers per RFM class with their average recency, frequency and monetary value (no personal data)';
COMMENT ON COLUMN ecrm.rfm_summary.share_pct IS 'Share of the customers with an order, in percent';
COMMENT ON COLUMN ecrm.rfm_summary.monetary IS 'Net revenue of the class';
COMMENT ON COLUMN ecrm.rfm_summary.rfm_class IS 'RFM class (champions, loyal, ..., lost)';
COMMENT ON COLUMN ecrm.rfm_summary.customers IS 'Customers in the class';
COMMENT ON COLUMN ecrm.rfm_summary.avg_recency_days IS 'Average days since the latest placed order';
COMMENT ON COLUMN ecrm.rfm_summary.avg_frequency IS 'Average number of placed orders';
COMMENT ON COLUMN ecrm.rfm_summary.avg_monetary IS 'Average net revenue per customer';

-- Store the current quintile cut points (a full refresh does this).
CREATE FUNCTION ecrm._rfm_store_cutoffs() RETURNS void
    LANGUAGE sql SET search_path = pg_catalog, pg_temp AS
$$
    INSERT INTO ecrm.rfm_cutoff (singleton, recency, frequency, monetary, customers, computed_at)
    SELECT true, coalesce(c.r, '{0,0,0,0}'), coalesce(c.f, '{0,0,0,0}'), coalesce(c.m, '{0,0,0,0}'), c.n, now()
      FROM (SELECT percentile_cont(ARRAY[0.2, 0.4, 0.6, 0.8]) WITHIN GROUP (ORDER BY v.recency_days) AS r,
                   percentile_cont(ARRAY[0.2, 0.4, 0.6, 0.8]) WITHIN GROUP (ORDER BY v.frequency) AS f,
                   percentile_cont(ARRAY[0.2, 0.4, 0.6, 0.8]) WITHIN GROUP (ORDER BY v.monetary) AS m,
                   count(*) AS n
              FROM (SELECT r.recency_days::double precision AS recency_days, r.frequency::double precision AS frequency,
                           r.monetary::double precision AS monetary FROM ecrm.rfm r) v) c
    ON CONFLICT (singleton) DO UPDATE SET recency = EXCLUDED.recency, frequency = EXCLUDED.frequency,
        monetary = EXCLUDED.monetary, customers = EXCLUDED.customers, computed_at = EXCLUDED.computed_at
$$;

-- RFM classes of the candidates: all from the live view, or the few from their own orders against the stored cut points.
CREATE FUNCTION ecrm._rfm_classify(candidates bigint[]) RETURNS TABLE (customer_id bigint, rfm_class text)
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    cut ecrm.rfm_cutoff;
BEGIN
    IF candidates IS NULL THEN
        PERFORM ecrm._rfm_store_cutoffs();
        RETURN QUERY SELECT r.customer_id, r.rfm_class FROM ecrm.rfm r;
        RETURN;
    END IF;
    SELECT * INTO cut FROM ecrm.rfm_cutoff;
    IF NOT FOUND THEN
        PERFORM ecrm._rfm_store_cutoffs();
        SELECT * INTO cut FROM ecrm.rfm_cutoff;
    END IF;
    RETURN QUERY
    SELECT v.customer_id,
           ecrm.rfm_class(ecrm.rfm_score(v.recency_days, cut.recency, true), ecrm.rfm_score(v.frequency, cut.frequency),
                          ecrm.rfm_score(v.monetary, cut.monetary))
      FROM (SELECT o.customer_id,
                   extract(epoch FROM now() - max(o.ordered_at) FILTER (WHERE o.status NOT IN ('cancelled', 'returned')))::double precision / 86400 AS recency_days,
                   (count(*) FILTER (WHERE o.status NOT IN ('cancelled', 'returned')))::double precision AS frequency,
                   coalesce(sum(o.total) FILTER (WHERE o.status <> 'cancelled'), 0)::double precision AS monetary
              FROM ecrm.orders o
             WHERE o.customer_id = ANY (candidates)
             GROUP BY o.customer_id
            HAVING count(*) FILTER (WHERE o.status NOT IN ('cancelled', 'returned')) > 0) v;
END
$$;

------------------------------------------------------------------------------
-- The rule language.  A rule is a JSON object with one of these keys:
--   {"all": [rule, ...]}  {"any": [rule, ...]}  {"not": rule}      set algebra
--   {"segment": "name"}                                            another segment's members
--   {"attribute": "country", "op": "in", "value": ["GB", "IE"]}    profile columns and "attributes.<key>"
--   {"consent": "marketing_email"}  or {"consent": {"purpose": ..., "granted": false}}
--   {"lead_score": {"op": ">=", "value": 60, "model_id": 1}}       needs table ecrm.lead_score
--   {"rfm_class": ["champions", "loyal"]}
--   {"bought": {"category": "Garden", "within": "90 days", "at_least": 1}}   also "sku", "product_id"
--   {"orders": {"at_least": 2, "within": "365 days", "min_revenue": 100}}
--   {"no_order_for": "180 days"}                                   ordered before, not since
--   {"campaign_event": {"kind": "opened", "at_least": 3, "within": "90 days", "campaign": "name", "channel": "email"}}
--   {"interaction": {"kind": "page_view", "channel": "web", "at_least": 5, "within": "30 days"}}
-- Each compiles to a SQL expression of type idset over $1 (bigint[]: the
-- customers to re-evaluate, NULL for everybody); literals are quoted.
------------------------------------------------------------------------------
CREATE FUNCTION ecrm._segment_rule_error(path text, message text, hint text DEFAULT NULL) RETURNS void
    LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    RAISE EXCEPTION 'invalid segment rule at %: %', path, message
        USING ERRCODE = 'invalid_parameter_value',
              HINT = coalesce(hint, 'A rule is an object with one of the keys all, any, not, segment, attribute, consent, lead_score, rfm_class, bought, orders, no_order_for, campaign_event, interaction.');
END
$$;

-- Check an object has only the allowed keys.
CREATE FUNCTION ecrm._segment_rule_keys(obj jsonb, allowed text[], path text) RETURNS void
    LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    k text;
BEGIN
    IF jsonb_typeof(obj) <> 'object' THEN
        PERFORM ecrm._segment_rule_error(path, format('expected an object, not %s', jsonb_typeof(obj)));
    END IF;
    FOR k IN SELECT jsonb_object_keys(obj) LOOP
        IF NOT k = ANY (allowed) THEN
            PERFORM ecrm._segment_rule_error(path, format('unknown key "%s"', left(k, 100)),
                                             'Allowed keys here: ' || array_to_string(allowed, ', ') || '.');
        END IF;
    END LOOP;
END
$$;

-- A positive interval written as text ("90 days").
CREATE FUNCTION ecrm._segment_rule_interval(v jsonb, path text) RETURNS interval
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    i interval;
BEGIN
    IF jsonb_typeof(v) <> 'string' THEN
        PERFORM ecrm._segment_rule_error(path, 'expected a time span such as "90 days"');
    END IF;
    BEGIN
        i := (v #>> '{}')::interval;
    EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow OR interval_field_overflow THEN
        PERFORM ecrm._segment_rule_error(path, format('"%s" is not a time span such as "90 days"', left(v #>> '{}', 100)));
    END;
    IF i <= interval '0' THEN
        PERFORM ecrm._segment_rule_error(path, 'the time span must be positive');
    END IF;
    RETURN i;
END
$$;

-- A count (at_least) from 1 to 1000000, default 1.
CREATE FUNCTION ecrm._segment_rule_count(v jsonb, path text) RETURNS integer
    LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    IF v IS NULL THEN
        RETURN 1;
    END IF;
    IF jsonb_typeof(v) <> 'number' OR (v #>> '{}') !~ '^[0-9]{1,7}$' OR (v #>> '{}')::integer NOT BETWEEN 1 AND 1000000 THEN
        PERFORM ecrm._segment_rule_error(path, 'expected a whole number from 1 to 1000000');
    END IF;
    RETURN (v #>> '{}')::integer;
END
$$;

-- A string or a non-empty array of strings, as text[].
CREATE FUNCTION ecrm._segment_rule_strings(v jsonb, path text) RETURNS text[]
    LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    r text[];
BEGIN
    IF jsonb_typeof(v) = 'string' THEN
        RETURN ARRAY[v #>> '{}'];
    END IF;
    IF jsonb_typeof(v) = 'array' AND jsonb_array_length(v) BETWEEN 1 AND 10000
       AND NOT EXISTS (SELECT FROM jsonb_array_elements(v) e WHERE jsonb_typeof(e) <> 'string') THEN
        SELECT array_agg(e #>> '{}') INTO r FROM jsonb_array_elements(v) e;
        RETURN r;
    END IF;
    PERFORM ecrm._segment_rule_error(path, 'expected a string or a non-empty array of strings');
    RETURN NULL;
END
$$;

-- "customer_id column is among the candidates", folded away when $1 is NULL.
CREATE FUNCTION ecrm._segment_restrict(col text) RETURNS text
    LANGUAGE sql IMMUTABLE RETURN format('($1 IS NULL OR %s = ANY ($1))', col);

-- An inner query of customer ids as an idset expression.
CREATE FUNCTION ecrm._segment_leaf(inner_sql text) RETURNS text
    LANGUAGE sql IMMUTABLE
    RETURN format('coalesce((SELECT ecrm.idset_agg(x.customer_id) FROM (%s) x), ''{}''::ecrm.idset)', inner_sql);

CREATE FUNCTION ecrm._segment_compile(node jsonb, path text, OUT sql text, OUT sources text[], OUT uses bigint[])
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    key      text;
    child    record;
    parts    text[] := '{}';
    elem     jsonb;
    n        int := 0;
    spec     jsonb;
    conds    text[] := '{}';
    field    text;
    op       text;
    val      jsonb;
    coltype  text;
    col      text;
    cnt      int;
    sid      bigint;
    v_purpose text;
    granted  boolean := true;
    classes  text[];
    allowed_fields text[] := ARRAY['first_name', 'last_name', 'email', 'phone', 'birth_date', 'company', 'job_title',
                                   'street', 'city', 'postal_code', 'region', 'country', 'language', 'lifecycle_stage',
                                   'owner', 'source', 'created_at', 'updated_at'];
    rfm_classes text[] := ARRAY['champions', 'loyal', 'potential_loyalist', 'new_customer', 'promising', 'need_attention',
                                'about_to_sleep', 'at_risk', 'cant_lose', 'hibernating', 'lost'];
BEGIN
    sources := '{}';
    uses := '{}';
    IF node IS NULL OR jsonb_typeof(node) <> 'object' THEN
        PERFORM ecrm._segment_rule_error(path, format('expected a rule object, not %s', coalesce(jsonb_typeof(node), 'nothing')));
    END IF;
    IF length(path) > 2000 THEN
        RAISE EXCEPTION 'segment rule is nested too deeply' USING ERRCODE = 'program_limit_exceeded';
    END IF;
    IF node ? 'attribute' THEN
        key := 'attribute';
    ELSIF (SELECT count(*) FROM jsonb_object_keys(node)) <> 1 THEN
        PERFORM ecrm._segment_rule_error(path, 'a rule object has exactly one key');
    ELSE
        key := (SELECT k FROM jsonb_object_keys(node) k);
    END IF;
    spec := node -> key;

    IF key IN ('all', 'any') THEN
        IF jsonb_typeof(spec) <> 'array' OR jsonb_array_length(spec) = 0 THEN
            PERFORM ecrm._segment_rule_error(path || '.' || key, 'expected a non-empty array of rules');
        END IF;
        FOR elem IN SELECT e FROM jsonb_array_elements(spec) e LOOP
            SELECT * INTO child FROM ecrm._segment_compile(elem, format('%s.%s[%s]', path, key, n));
            parts := parts || child.sql;
            sources := sources || child.sources;
            uses := uses || child.uses;
            n := n + 1;
        END LOOP;
        sql := CASE WHEN n = 1 THEN parts[1]
                    ELSE format('ecrm.idset_%s(VARIADIC ARRAY[%s])', CASE key WHEN 'all' THEN 'intersection' ELSE 'union' END,
                                array_to_string(parts, ', ')) END;
    ELSIF key = 'not' THEN
        SELECT * INTO child FROM ecrm._segment_compile(spec, path || '.not');
        sql := format('ecrm.idset_andnot(ecrm._segment_universe($1), %s)', child.sql);
        sources := child.sources || ARRAY['customer_profile'];
        uses := child.uses;
    ELSIF key = 'segment' THEN
        IF jsonb_typeof(spec) <> 'string' THEN
            PERFORM ecrm._segment_rule_error(path || '.segment', 'expected the name of a segment');
        END IF;
        SELECT s.segment_id, s.sources INTO sid, sources FROM ecrm.segment s WHERE s.name = spec #>> '{}';
        IF sid IS NULL THEN
            RAISE EXCEPTION 'segment "%" does not exist', left(spec #>> '{}', 200)
                USING ERRCODE = 'no_data_found', DETAIL = format('The rule at %s.segment refers to it.', path);
        END IF;
        sql := format('ecrm._segment_current(%s, $1)', sid);
        sources := sources || ARRAY['segment'];
        uses := ARRAY[sid];
    ELSIF key = 'attribute' THEN
        PERFORM ecrm._segment_rule_keys(node, ARRAY['attribute', 'op', 'value'], path);
        IF jsonb_typeof(spec) <> 'string' THEN
            PERFORM ecrm._segment_rule_error(path || '.attribute', 'expected a profile field name');
        END IF;
        field := spec #>> '{}';
        op := coalesce(node ->> 'op', '=');
        val := node -> 'value';
        IF op NOT IN ('=', '!=', '<', '<=', '>', '>=', 'in', 'not_in', 'is_set', 'is_not_set', 'contains', 'within', 'before') THEN
            PERFORM ecrm._segment_rule_error(path || '.op', format('unknown operator "%s"', left(op, 40)),
                                             'Use one of =, !=, <, <=, >, >=, in, not_in, is_set, is_not_set, contains, within, before.');
        END IF;
        IF op NOT IN ('is_set', 'is_not_set') AND (val IS NULL OR jsonb_typeof(val) = 'null') THEN
            PERFORM ecrm._segment_rule_error(path, format('operator "%s" needs a "value"', op));
        END IF;
        IF op IN ('in', 'not_in') AND (jsonb_typeof(val) <> 'array' OR jsonb_array_length(val) = 0) THEN
            PERFORM ecrm._segment_rule_error(path || '.value', format('operator "%s" needs a non-empty array', op));
        END IF;
        IF field ~ '^attributes\.' THEN
            col := format('(c.attributes -> %L)', substr(field, 12));
            IF length(field) < 12 OR length(field) > 111 THEN
                PERFORM ecrm._segment_rule_error(path || '.attribute', 'an attribute key has 1 to 100 characters');
            END IF;
            conds := ARRAY[CASE op
                WHEN '=' THEN format('%s = %L::jsonb', col, val)
                WHEN '!=' THEN format('%s <> %L::jsonb', col, val)
                WHEN 'in' THEN format('%L::jsonb @> jsonb_build_array(%s)', val, col)
                WHEN 'not_in' THEN format('NOT %L::jsonb @> jsonb_build_array(%s)', val, col)
                WHEN 'is_set' THEN format('c.attributes ? %L', substr(field, 12))
                WHEN 'is_not_set' THEN format('NOT c.attributes ? %L', substr(field, 12))
                WHEN 'contains' THEN format('(c.attributes ->> %L) ILIKE %L', substr(field, 12),
                                            '%' || replace(replace(replace(val #>> '{}', '\', '\\'), '%', '\%'), '_', '\_') || '%')
                WHEN 'within' THEN NULL WHEN 'before' THEN NULL
                ELSE format('jsonb_typeof(%s) = %L AND %s %s %L::jsonb', col, jsonb_typeof(val), col, op, val) END];
            IF conds[1] IS NULL THEN
                PERFORM ecrm._segment_rule_error(path || '.op', format('operator "%s" applies to dates and times of the profile', op));
            END IF;
        ELSE
            IF NOT field = ANY (allowed_fields) THEN
                PERFORM ecrm._segment_rule_error(path || '.attribute', format('unknown profile field "%s"', left(field, 100)),
                    'Use one of ' || array_to_string(allowed_fields, ', ') || ', or "attributes.<key>" for a JSON attribute.');
            END IF;
            col := 'c.' || quote_ident(field);
            coltype := (SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a
                         WHERE a.attrelid = 'ecrm.customer_profile'::regclass AND a.attname = field);
            IF op IN ('within', 'before') THEN
                IF coltype NOT IN ('date', 'timestamp with time zone') THEN
                    PERFORM ecrm._segment_rule_error(path || '.op', format('operator "%s" applies to dates and times, not to %s', op, field));
                END IF;
                conds := ARRAY[format('%s %s now() - %L::interval', col, CASE op WHEN 'within' THEN '>=' ELSE '<' END,
                                      ecrm._segment_rule_interval(val, path || '.value'))];
            ELSIF op IN ('in', 'not_in') THEN
                conds := ARRAY[format('%s %s ANY (%L::%s[])', CASE op WHEN 'in' THEN col ELSE 'NOT ' || col END,
                                      '=', ecrm._segment_rule_strings(
                                               (SELECT jsonb_agg(CASE WHEN jsonb_typeof(e) IN ('number', 'boolean') THEN to_jsonb(e #>> '{}') ELSE e END)
                                                  FROM jsonb_array_elements(val) e), path || '.value'), coltype)];
            ELSIF op = 'is_set' THEN
                conds := ARRAY[col || ' IS NOT NULL'];
            ELSIF op = 'is_not_set' THEN
                conds := ARRAY[col || ' IS NULL'];
            ELSIF op = 'contains' THEN
                conds := ARRAY[format('%s::text ILIKE %L', col,
                                      '%' || replace(replace(replace(val #>> '{}', '\', '\\'), '%', '\%'), '_', '\_') || '%')];
            ELSE
                IF jsonb_typeof(val) NOT IN ('string', 'number', 'boolean') THEN
                    PERFORM ecrm._segment_rule_error(path || '.value', 'expected a string or a number');
                END IF;
                conds := ARRAY[format('%s %s %L::%s', col, CASE op WHEN '!=' THEN '<>' ELSE op END, val #>> '{}', coltype)];
            END IF;
        END IF;
        sql := ecrm._segment_leaf(format('SELECT c.customer_id FROM ecrm.customer_profile c WHERE %s AND %s',
                                         ecrm._segment_restrict('c.customer_id'), conds[1]));
        sources := ARRAY['customer_profile'];
    ELSIF key = 'consent' THEN
        IF jsonb_typeof(spec) = 'object' THEN
            PERFORM ecrm._segment_rule_keys(spec, ARRAY['purpose', 'granted'], path || '.consent');
            v_purpose := spec ->> 'purpose';
            IF spec ? 'granted' THEN
                IF jsonb_typeof(spec -> 'granted') <> 'boolean' THEN
                    PERFORM ecrm._segment_rule_error(path || '.consent.granted', 'expected true or false');
                END IF;
                granted := (spec ->> 'granted')::boolean;
            END IF;
        ELSIF jsonb_typeof(spec) = 'string' THEN
            v_purpose := spec #>> '{}';
        END IF;
        IF v_purpose IS NULL OR NOT EXISTS (SELECT FROM ecrm.consent_purpose p WHERE p.purpose = v_purpose) THEN
            PERFORM ecrm._segment_rule_error(path || '.consent', format('unknown consent purpose "%s"', left(coalesce(v_purpose, ''), 100)),
                'Use one of: ' || (SELECT string_agg(p.purpose, ', ' ORDER BY p.purpose) FROM ecrm.consent_purpose p) || '.');
        END IF;
        sql := ecrm._segment_leaf(format(
            'SELECT l.customer_id FROM (SELECT DISTINCT ON (e.customer_id) e.customer_id, e.granted FROM ecrm.consent_event e '
            'WHERE e.purpose = %L AND %s ORDER BY e.customer_id, e.recorded_at DESC, e.consent_event_id DESC) l WHERE l.granted = %L',
            v_purpose, ecrm._segment_restrict('e.customer_id'), granted));
        sources := ARRAY['consent_event'];
    ELSIF key = 'lead_score' THEN
        IF to_regclass('ecrm.lead_score') IS NULL THEN
            RAISE EXCEPTION 'segment rule at %.lead_score needs lead scores, and table ecrm.lead_score does not exist', path
                USING ERRCODE = 'feature_not_supported',
                      HINT = 'Lead scores come with the scoring capability of ecrm; build a scoring model first.';
        END IF;
        PERFORM ecrm._segment_rule_keys(spec, ARRAY['op', 'value', 'model_id'], path || '.lead_score');
        op := coalesce(spec ->> 'op', '>=');
        IF op NOT IN ('=', '!=', '<', '<=', '>', '>=') OR jsonb_typeof(spec -> 'value') IS DISTINCT FROM 'number' THEN
            PERFORM ecrm._segment_rule_error(path || '.lead_score', 'expected {"op": one of = != < <= > >=, "value": a number}');
        END IF;
        IF spec ? 'model_id' AND (jsonb_typeof(spec -> 'model_id') <> 'number' OR (spec ->> 'model_id') !~ '^[0-9]{1,18}$') THEN
            PERFORM ecrm._segment_rule_error(path || '.lead_score.model_id', 'expected the id of a scoring model');
        END IF;
        sql := ecrm._segment_leaf(format('SELECT s.customer_id FROM ecrm.lead_score s WHERE %s AND s.score %s %s%s',
            ecrm._segment_restrict('s.customer_id'), CASE op WHEN '!=' THEN '<>' ELSE op END,
            (spec ->> 'value')::double precision,
            CASE WHEN spec ? 'model_id' THEN format(' AND s.model_id = %s', (spec ->> 'model_id')::bigint) ELSE '' END));
        sources := ARRAY['lead_score'];
    ELSIF key = 'rfm_class' THEN
        classes := ecrm._segment_rule_strings(spec, path || '.rfm_class');
        IF NOT classes <@ rfm_classes THEN
            PERFORM ecrm._segment_rule_error(path || '.rfm_class', 'unknown RFM class',
                                             'Use one of ' || array_to_string(rfm_classes, ', ') || '.');
        END IF;
        sql := ecrm._segment_leaf(format('SELECT r.customer_id FROM ecrm._rfm_classify($1) r WHERE r.rfm_class = ANY (%L::text[])', classes));
        sources := ARRAY['orders'];
    ELSIF key = 'bought' THEN
        PERFORM ecrm._segment_rule_keys(spec, ARRAY['category', 'sku', 'product_id', 'within', 'at_least'], path || '.bought');
        IF spec ? 'category' THEN
            conds := conds || format('lower(p.category) = ANY (%L::text[])',
                (SELECT array_agg(lower(x)) FROM unnest(ecrm._segment_rule_strings(spec -> 'category', path || '.bought.category')) x));
        END IF;
        IF spec ? 'sku' THEN
            conds := conds || format('p.sku = ANY (%L::text[])', ecrm._segment_rule_strings(spec -> 'sku', path || '.bought.sku'));
        END IF;
        IF spec ? 'product_id' THEN
            IF jsonb_typeof(spec -> 'product_id') <> 'number' OR (spec ->> 'product_id') !~ '^[0-9]{1,18}$' THEN
                PERFORM ecrm._segment_rule_error(path || '.bought.product_id', 'expected a product id');
            END IF;
            conds := conds || format('l.product_id = %s', (spec ->> 'product_id')::bigint);
        END IF;
        IF spec ? 'within' THEN
            conds := conds || format('o.ordered_at >= now() - %L::interval', ecrm._segment_rule_interval(spec -> 'within', path || '.bought.within'));
        END IF;
        cnt := ecrm._segment_rule_count(spec -> 'at_least', path || '.bought.at_least');
        sql := ecrm._segment_leaf(format(
            'SELECT o.customer_id FROM ecrm.orders o JOIN ecrm.order_line l ON l.order_id = o.order_id '
            'JOIN ecrm.product p ON p.product_id = l.product_id '
            'WHERE o.status NOT IN (''cancelled'', ''returned'') AND l.quantity > 0 AND %s%s '
            'GROUP BY o.customer_id HAVING count(DISTINCT o.order_id) >= %s',
            ecrm._segment_restrict('o.customer_id'), (SELECT string_agg(' AND ' || c, '') FROM unnest(conds) c), cnt));
        sources := ARRAY['orders', 'order_line'];
    ELSIF key = 'orders' THEN
        PERFORM ecrm._segment_rule_keys(spec, ARRAY['at_least', 'within', 'min_revenue'], path || '.orders');
        IF spec ? 'within' THEN
            conds := conds || format('o.ordered_at >= now() - %L::interval', ecrm._segment_rule_interval(spec -> 'within', path || '.orders.within'));
        END IF;
        IF spec ? 'min_revenue' AND jsonb_typeof(spec -> 'min_revenue') <> 'number' THEN
            PERFORM ecrm._segment_rule_error(path || '.orders.min_revenue', 'expected a number');
        END IF;
        cnt := ecrm._segment_rule_count(spec -> 'at_least', path || '.orders.at_least');
        sql := ecrm._segment_leaf(format(
            'SELECT o.customer_id FROM ecrm.orders o WHERE o.status <> ''cancelled'' AND %s%s GROUP BY o.customer_id '
            'HAVING count(*) FILTER (WHERE o.status <> ''returned'') >= %s%s',
            ecrm._segment_restrict('o.customer_id'), (SELECT string_agg(' AND ' || c, '') FROM unnest(conds) c), cnt,
            CASE WHEN spec ? 'min_revenue' THEN format(' AND sum(o.total) >= %s', (spec ->> 'min_revenue')::numeric) ELSE '' END));
        sources := ARRAY['orders'];
    ELSIF key = 'no_order_for' THEN
        sql := ecrm._segment_leaf(format(
            'SELECT o.customer_id FROM ecrm.orders o WHERE o.status NOT IN (''cancelled'', ''returned'') AND %s '
            'GROUP BY o.customer_id HAVING max(o.ordered_at) < now() - %L::interval',
            ecrm._segment_restrict('o.customer_id'), ecrm._segment_rule_interval(spec, path || '.no_order_for')));
        sources := ARRAY['orders'];
    ELSIF key = 'campaign_event' THEN
        PERFORM ecrm._segment_rule_keys(spec, ARRAY['kind', 'at_least', 'within', 'campaign', 'channel'], path || '.campaign_event');
        IF NOT spec ? 'kind' THEN
            PERFORM ecrm._segment_rule_error(path || '.campaign_event', 'needs a "kind" (sent, delivered, opened, clicked, converted, unsubscribed, bounced)');
        END IF;
        conds := conds || format('e.kind = ANY (%L::ecrm.campaign_event_kind[])',
            (SELECT array_agg(ecrm._enum_label(x, 'ecrm.campaign_event_kind', 'campaign event kind'))
               FROM unnest(ecrm._segment_rule_strings(spec -> 'kind', path || '.campaign_event.kind')) x));
        IF spec ? 'within' THEN
            conds := conds || format('e.occurred_at >= now() - %L::interval', ecrm._segment_rule_interval(spec -> 'within', path || '.campaign_event.within'));
        END IF;
        IF spec ? 'campaign' THEN
            IF jsonb_typeof(spec -> 'campaign') = 'number' THEN
                sid := (SELECT c.campaign_id FROM ecrm.campaign c WHERE c.campaign_id::text = spec ->> 'campaign');
            ELSE
                sid := (SELECT c.campaign_id FROM ecrm.campaign c WHERE c.name = spec ->> 'campaign');
            END IF;
            IF sid IS NULL THEN
                PERFORM ecrm._segment_rule_error(path || '.campaign_event.campaign', format('unknown campaign "%s"', left(spec ->> 'campaign', 200)));
            END IF;
            conds := conds || format('e.campaign_id = %s', sid);
        END IF;
        IF spec ? 'channel' THEN
            conds := conds || format('e.campaign_id IN (SELECT c.campaign_id FROM ecrm.campaign c WHERE c.channel = %L::ecrm.channel)',
                ecrm._enum_label(spec ->> 'channel', 'ecrm.channel', 'channel'));
        END IF;
        cnt := ecrm._segment_rule_count(spec -> 'at_least', path || '.campaign_event.at_least');
        sql := ecrm._segment_leaf(format(
            'SELECT e.customer_id FROM ecrm.campaign_event e WHERE %s%s GROUP BY e.customer_id HAVING count(DISTINCT e.campaign_id) >= %s',
            ecrm._segment_restrict('e.customer_id'), (SELECT string_agg(' AND ' || c, '') FROM unnest(conds) c), cnt));
        sources := ARRAY['campaign_event'];
    ELSIF key = 'interaction' THEN
        PERFORM ecrm._segment_rule_keys(spec, ARRAY['kind', 'channel', 'at_least', 'within', 'product_id'], path || '.interaction');
        IF spec ? 'kind' THEN
            conds := conds || format('i.kind = ANY (%L::text[])', ecrm._segment_rule_strings(spec -> 'kind', path || '.interaction.kind'));
        END IF;
        IF spec ? 'channel' THEN
            conds := conds || format('i.channel = ANY (%L::ecrm.channel[])',
                (SELECT array_agg(ecrm._enum_label(x, 'ecrm.channel', 'channel'))
                   FROM unnest(ecrm._segment_rule_strings(spec -> 'channel', path || '.interaction.channel')) x));
        END IF;
        IF spec ? 'product_id' THEN
            IF jsonb_typeof(spec -> 'product_id') <> 'number' OR (spec ->> 'product_id') !~ '^[0-9]{1,18}$' THEN
                PERFORM ecrm._segment_rule_error(path || '.interaction.product_id', 'expected a product id');
            END IF;
            conds := conds || format('i.product_id = %s', (spec ->> 'product_id')::bigint);
        END IF;
        IF spec ? 'within' THEN
            conds := conds || format('i.occurred_at >= now() - %L::interval', ecrm._segment_rule_interval(spec -> 'within', path || '.interaction.within'));
        END IF;
        cnt := ecrm._segment_rule_count(spec -> 'at_least', path || '.interaction.at_least');
        sql := ecrm._segment_leaf(format(
            'SELECT i.customer_id FROM ecrm.interaction i WHERE %s%s GROUP BY i.customer_id HAVING count(*) >= %s',
            ecrm._segment_restrict('i.customer_id'), (SELECT string_agg(' AND ' || c, '') FROM unnest(conds) c), cnt));
        sources := ARRAY['interaction'];
    ELSE
        PERFORM ecrm._segment_rule_error(path, format('unknown rule "%s"', left(key, 100)));
    END IF;
    SELECT coalesce(array_agg(DISTINCT s ORDER BY s), '{}') INTO sources FROM unnest(sources) s;
    SELECT coalesce(array_agg(DISTINCT u ORDER BY u), '{}') INTO uses FROM unnest(uses) u;
END
$$;

------------------------------------------------------------------------------
-- Refresh and incremental maintenance
------------------------------------------------------------------------------
CREATE FUNCTION ecrm._segment_by_name(segment text) RETURNS ecrm.segment
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    s ecrm.segment;
BEGIN
    SELECT * INTO s FROM ecrm.segment x WHERE x.name = segment;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'segment "%" does not exist', left(coalesce(segment, 'NULL'), 200)
            USING ERRCODE = 'no_data_found',
                  HINT = 'The segments are listed in ecrm.segments.';
    END IF;
    RETURN s;
END
$$;

-- Replace the stored membership of one segment with new_members: events for the difference, deltas cleared, size recorded.
CREATE FUNCTION ecrm._segment_store(segment_id bigint, new_members ecrm.idset, source text, started timestamptz,
                                    OUT entered bigint, OUT exited bigint)
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    sid  bigint := _segment_store.segment_id;
    cur  ecrm.idset := ecrm._segment_current(sid, NULL);
    ins  ecrm.idset := ecrm.idset_andnot(new_members, cur);
    outs ecrm.idset := ecrm.idset_andnot(cur, new_members);
    first_build boolean := (SELECT s.refreshed_at IS NULL FROM ecrm.segment s WHERE s.segment_id = sid);
BEGIN
    entered := ecrm.idset_cardinality(ins);
    exited := ecrm.idset_cardinality(outs);
    -- the first build of a segment records no events: nobody entered, the segment was created
    IF NOT first_build AND entered + exited > 0 THEN
        INSERT INTO ecrm.segment_event (segment_id, customer_id, kind, occurred_at, source)
        SELECT sid, u.id, 'entered', now(), source FROM ecrm.idset_unnest(ins) u(id)
        UNION ALL
        SELECT sid, u.id, 'exited', now(), source FROM ecrm.idset_unnest(outs) u(id)
         WHERE EXISTS (SELECT FROM ecrm.customer_profile c WHERE c.customer_id = u.id AND c.status <> 'erased');
        PERFORM pg_notify('ecrm_segment', json_build_object('segment_id', sid, 'entered', entered, 'exited', exited, 'source', source)::text);
    END IF;
    DELETE FROM ecrm.segment_delta d WHERE d.segment_id = sid;
    UPDATE ecrm.segment s SET members = new_members, refreshed_at = clock_timestamp(),
                              refresh_ms = extract(epoch FROM clock_timestamp() - started) * 1000
     WHERE s.segment_id = sid;
    INSERT INTO ecrm.segment_size (segment_id, measured_at, members, entered, exited)
    VALUES (sid, clock_timestamp(), ecrm.idset_cardinality(new_members), entered, exited)
    ON CONFLICT ON CONSTRAINT segment_size_pkey DO UPDATE SET members = EXCLUDED.members;
END
$$;

-- Re-evaluate one rule segment for everybody.
CREATE FUNCTION ecrm._segment_refresh(segment_id bigint, source text DEFAULT 'refresh')
    RETURNS TABLE (segment text, members bigint, entered bigint, exited bigint, milliseconds double precision)
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    started timestamptz;
    s       ecrm.segment;
    m       ecrm.idset;
    r       record;
BEGIN
    -- wait for the triggers re-evaluating this segment, and keep them waiting until commit
    PERFORM pg_advisory_xact_lock(736465, (_segment_refresh.segment_id % 2147483647)::integer);
    started := clock_timestamp();
    SELECT * INTO s FROM ecrm.segment x WHERE x.segment_id = _segment_refresh.segment_id;
    IF s.kind = 'rule' THEN
        EXECUTE s.compiled INTO m USING NULL::bigint[];
        m := ecrm.idset_andnot(m, ecrm._segment_inactive(NULL));
    ELSE
        m := ecrm.idset_andnot(ecrm._segment_current(s.segment_id, NULL), ecrm._segment_inactive(NULL));
    END IF;
    SELECT * INTO r FROM ecrm._segment_store(s.segment_id, m, source, started);
    RETURN QUERY SELECT s.name, ecrm.idset_cardinality(m), r.entered, r.exited,
                        round((extract(epoch FROM clock_timestamp() - started) * 1000)::numeric, 1)::double precision;
END
$$;

CREATE FUNCTION ecrm.refresh_segment(name text)
    RETURNS TABLE (segment text, members bigint, entered bigint, exited bigint, milliseconds double precision)
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    RETURN QUERY SELECT * FROM ecrm._segment_refresh((ecrm._segment_by_name(refresh_segment.name)).segment_id);
END
$$;
COMMENT ON FUNCTION ecrm.refresh_segment(text) IS
    'Re-evaluate a segment for every customer: stores the new membership, records who entered and left, clears the pending changes. Returns the size, the movements and the time taken';

CREATE FUNCTION ecrm.refresh_segments()
    RETURNS TABLE (segment text, members bigint, entered bigint, exited bigint, milliseconds double precision)
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    sid bigint;
BEGIN
    PERFORM ecrm._rfm_store_cutoffs();
    -- referenced segments first
    FOR sid IN SELECT s.segment_id FROM ecrm.segment s ORDER BY s.depth, s.segment_id LOOP
        RETURN QUERY SELECT * FROM ecrm._segment_refresh(sid);
    END LOOP;
END
$$;
COMMENT ON FUNCTION ecrm.refresh_segments() IS
    'Refresh every segment, referenced ones first, and the RFM cut points. Time-based rules ("within 90 days") drift as time passes: run it periodically, for example nightly with pg_cron';

-- Re-evaluate the given customers in the real-time segments that read source ('*': all of them).
CREATE FUNCTION ecrm._segment_apply(source text, ids bigint[], label text DEFAULT NULL) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS
-- SECURITY DEFINER: triggers of any role that writes the store keep memberships current; it only
-- evaluates the stored definitions (compiled by ecrm from checked JSON) for the given customers.
$$
DECLARE
    s      record;
    newm   ecrm.idset;
    moved  integer := 0;
    n      integer;
    locked boolean := false;
BEGIN
    IF ids IS NULL OR cardinality(ids) = 0 OR coalesce(current_setting('ecrm.segment_realtime', true), 'on') IN ('off', 'false') THEN
        RETURN 0;
    END IF;
    SELECT array_agg(DISTINCT u.id ORDER BY u.id) INTO ids FROM unnest(ids) u(id) WHERE u.id IS NOT NULL;
    -- not x.members: the stored set is read below only for the customers (a variable would detoast it whole)
    FOR s IN SELECT x.segment_id, x.compiled
               FROM ecrm.segment x
              WHERE x.kind = 'rule' AND x.realtime AND (source = '*' OR source = ANY (x.sources))
              ORDER BY x.depth, x.segment_id LOOP
        IF cardinality(ids) > 10000 THEN
            -- a bulk change: re-evaluating everybody is cheaper than one by one
            PERFORM ecrm._segment_refresh(s.segment_id, coalesce(label, source));
            CONTINUE;
        END IF;
        IF NOT locked THEN
            -- transactions touching the same customer re-evaluate one after the other
            PERFORM FROM ecrm.customer_profile c WHERE c.customer_id = ANY (ids) ORDER BY c.customer_id FOR NO KEY UPDATE;
            locked := true;
        END IF;
        PERFORM pg_advisory_xact_lock_shared(736465, (s.segment_id % 2147483647)::integer);
        EXECUTE s.compiled INTO newm USING ids;
        newm := ecrm.idset_and(newm, ecrm._segment_universe(ids));
        WITH cand AS (
            SELECT u.id, ecrm.idset_contains(newm, u.id) AS now_in,
                   ecrm.idset_contains((SELECT x.members FROM ecrm.segment x WHERE x.segment_id = s.segment_id), u.id) AS base_in
              FROM unnest(ids) u(id)
        ), del AS (
            DELETE FROM ecrm.segment_delta d USING cand c
             WHERE d.segment_id = s.segment_id AND d.customer_id = c.id AND c.now_in = c.base_in
            RETURNING d.customer_id, c.now_in AS member
        ), ins AS (
            INSERT INTO ecrm.segment_delta AS d (segment_id, customer_id, is_member, changed_at)
            SELECT s.segment_id, c.id, c.now_in, now() FROM cand c
             WHERE c.now_in <> c.base_in AND EXISTS (SELECT FROM ecrm.customer_profile p WHERE p.customer_id = c.id)
            ON CONFLICT ON CONSTRAINT segment_delta_pkey DO NOTHING
            RETURNING d.customer_id, d.is_member AS member
        )
        INSERT INTO ecrm.segment_event (segment_id, customer_id, kind, occurred_at, source)
        SELECT s.segment_id, x.customer_id, CASE WHEN x.member THEN 'entered' ELSE 'exited' END, now(), coalesce(label, source)
          FROM (SELECT * FROM del UNION ALL SELECT * FROM ins) x;
        GET DIAGNOSTICS n = ROW_COUNT;
        IF n > 0 THEN
            PERFORM pg_notify('ecrm_segment', json_build_object('segment_id', s.segment_id, 'moved', n, 'source', coalesce(label, source))::text);
        END IF;
        moved := moved + n;
    END LOOP;
    RETURN moved;
END
$$;

CREATE FUNCTION ecrm.segment_customers_changed(customer_ids bigint[], source text DEFAULT 'manual') RETURNS integer
    LANGUAGE sql SET search_path = pg_catalog, pg_temp
    RETURN ecrm._segment_apply('*', customer_ids, left(coalesce(source, 'manual'), 100));
COMMENT ON FUNCTION ecrm.segment_customers_changed(bigint[], text) IS
    'Re-evaluate these customers in every real-time segment now (after changes the triggers did not see, such as a bulk load with ecrm.segment_realtime off). Returns how many memberships changed';

-- Statement-level triggers: one call per statement with the distinct customers it touched.
CREATE FUNCTION ecrm._segment_on_change() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS
-- SECURITY DEFINER: see ecrm._segment_apply
$$
DECLARE
    ids bigint[];
BEGIN
    IF ecrm._restoring() THEN  -- restoring a dump: the restored rows are already the result
        RETURN NULL;
    END IF;
    IF coalesce(current_setting('ecrm.segment_realtime', true), 'on') IN ('off', 'false')
       OR NOT EXISTS (SELECT FROM ecrm.segment s WHERE s.kind = 'rule' AND s.realtime AND TG_TABLE_NAME = ANY (s.sources)) THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        SELECT array_agg(DISTINCT n.customer_id) INTO ids FROM new_rows n;
    ELSIF TG_OP = 'DELETE' THEN
        SELECT array_agg(DISTINCT o.customer_id) INTO ids FROM old_rows o;
    ELSE
        SELECT array_agg(DISTINCT x.customer_id) INTO ids
          FROM (SELECT n.customer_id FROM new_rows n UNION SELECT o.customer_id FROM old_rows o) x;
    END IF;
    PERFORM ecrm._segment_apply(TG_TABLE_NAME, ids);
    RETURN NULL;
END
$$;

DO $triggers$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['customer_profile', 'interaction', 'orders', 'order_line', 'campaign_event', 'consent_event'] LOOP
        EXECUTE format('CREATE TRIGGER segment_ins AFTER INSERT ON ecrm.%I REFERENCING NEW TABLE AS new_rows
                        FOR EACH STATEMENT EXECUTE FUNCTION ecrm._segment_on_change()', t);
        EXECUTE format('CREATE TRIGGER segment_upd AFTER UPDATE ON ecrm.%I REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
                        FOR EACH STATEMENT EXECUTE FUNCTION ecrm._segment_on_change()', t);
        EXECUTE format('CREATE TRIGGER segment_del AFTER DELETE ON ecrm.%I REFERENCING OLD TABLE AS old_rows
                        FOR EACH STATEMENT EXECUTE FUNCTION ecrm._segment_on_change()', t);
    END LOOP;
    -- lead scores (the scoring capability) when that table is installed before this file
    IF pg_catalog.to_regclass('ecrm.lead_score') IS NOT NULL THEN
        CREATE TRIGGER segment_ins AFTER INSERT ON ecrm.lead_score REFERENCING NEW TABLE AS new_rows
            FOR EACH STATEMENT EXECUTE FUNCTION ecrm._segment_on_change();
        CREATE TRIGGER segment_upd AFTER UPDATE ON ecrm.lead_score REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
            FOR EACH STATEMENT EXECUTE FUNCTION ecrm._segment_on_change();
    END IF;
END
$triggers$;

-- At commit of a merge, unmerge or erasure (after every table has been re-pointed or purged).
CREATE FUNCTION ecrm._segment_on_status() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS
-- SECURITY DEFINER: see ecrm._segment_apply; also rewrites static memberships and purges an erased customer
$$
DECLARE
    s        record;
    survivor bigint;
BEGIN
    IF ecrm._restoring() THEN  -- restoring a dump: the restored rows are already the result
        RETURN NULL;
    END IF;
    IF NEW.status = 'erased' THEN
        -- nothing about an erased customer stays behind: not in any stored membership, no delta, no event
        FOR s IN SELECT x.segment_id FROM ecrm.segment x WHERE ecrm.idset_contains(x.members, NEW.customer_id) LOOP
            UPDATE ecrm.segment x SET members = ecrm.idset_remove(x.members, NEW.customer_id) WHERE x.segment_id = s.segment_id;
        END LOOP;
        DELETE FROM ecrm.segment_delta d WHERE d.customer_id = NEW.customer_id;
        DELETE FROM ecrm.segment_event e WHERE e.customer_id = NEW.customer_id;
        RETURN NULL;
    END IF;
    IF NEW.status = 'merged' THEN
        survivor := ecrm.resolve_customer(NEW.customer_id);
        -- static lists keep the person: the survivor takes the merged profile's places
        FOR s IN SELECT x.segment_id FROM ecrm.segment x
                  WHERE x.kind <> 'rule' AND ecrm.idset_contains(ecrm._segment_current(x.segment_id, ARRAY[NEW.customer_id]), NEW.customer_id) LOOP
            PERFORM ecrm._segment_static_change(s.segment_id, ARRAY[survivor], true, 'merge');
            PERFORM ecrm._segment_static_change(s.segment_id, ARRAY[NEW.customer_id], false, 'merge');
        END LOOP;
        PERFORM ecrm._segment_apply('*', ARRAY[NEW.customer_id, survivor], 'merge');
    ELSE
        PERFORM ecrm._segment_apply('*', ARRAY[NEW.customer_id], CASE WHEN OLD.status = 'merged' THEN 'unmerge' ELSE 'status' END);
    END IF;
    RETURN NULL;
END
$$;
CREATE CONSTRAINT TRIGGER segment_status AFTER UPDATE OF status ON ecrm.customer_profile
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION ecrm._segment_on_status();

-- Add ids to (add) or remove them from a static or cluster segment; dependents follow.
CREATE FUNCTION ecrm._segment_static_change(segment_id bigint, ids bigint[], add boolean, source text) RETURNS bigint
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    sid     bigint := _segment_static_change.segment_id;
    cur     ecrm.idset;
    chg     ecrm.idset;
    bad     bigint;
    n       bigint;
BEGIN
    IF ids IS NULL OR cardinality(ids) = 0 THEN
        RETURN 0;
    END IF;
    IF array_position(ids, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'customer_ids must not contain NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF add THEN
        SELECT u.id INTO bad FROM unnest(ids) u(id)
         WHERE NOT EXISTS (SELECT FROM ecrm.customer_profile c WHERE c.customer_id = u.id AND c.status = 'active') LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'customer % does not exist or is not active', bad
                USING ERRCODE = 'foreign_key_violation', DETAIL = 'Only golden records (status active) can be segment members.';
        END IF;
    END IF;
    PERFORM pg_advisory_xact_lock(736465, (sid % 2147483647)::integer);
    SELECT x.members INTO cur FROM ecrm.segment x WHERE x.segment_id = sid;
    IF add THEN
        chg := ecrm.idset_andnot(ecrm.idset(ids), cur);
        UPDATE ecrm.segment x SET members = ecrm.idset_or(x.members, chg), updated_at = now() WHERE x.segment_id = sid;
    ELSE
        chg := ecrm.idset_and(ecrm.idset(ids), cur);
        UPDATE ecrm.segment x SET members = ecrm.idset_andnot(x.members, chg), updated_at = now() WHERE x.segment_id = sid;
    END IF;
    n := ecrm.idset_cardinality(chg);
    IF n > 0 THEN
        INSERT INTO ecrm.segment_event (segment_id, customer_id, kind, occurred_at, source)
        SELECT sid, u.id, CASE WHEN add THEN 'entered' ELSE 'exited' END, now(), source FROM ecrm.idset_unnest(chg) u(id);
        PERFORM ecrm._segment_apply('segment', ecrm.idset_to_array(chg), source);
    END IF;
    RETURN n;
END
$$;

------------------------------------------------------------------------------
-- The segment API
------------------------------------------------------------------------------
CREATE FUNCTION ecrm._segment_check_name(name text) RETURNS text
    LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    IF name IS NULL OR btrim(name) = '' OR length(btrim(name)) > 200 THEN
        RAISE EXCEPTION 'a segment name has 1 to 200 characters' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN btrim(name);
END
$$;

CREATE FUNCTION ecrm.define_segment(name text, definition jsonb, description text DEFAULT NULL, realtime boolean DEFAULT true)
    RETURNS bigint
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    nm    text := ecrm._segment_check_name(define_segment.name);
    c     record;
    sid   bigint;
    cycle text;
    dep   int;
    srcs  text[];
    probe ecrm.idset;
BEGIN
    IF definition IS NULL THEN
        RAISE EXCEPTION 'definition must not be null' USING ERRCODE = 'null_value_not_allowed',
            HINT = 'Use ecrm.define_static_segment() for a list of customers.';
    END IF;
    IF pg_column_size(definition) > 1048576 THEN
        RAISE EXCEPTION 'definition is too large (% bytes, at most 1048576)', pg_column_size(definition)
            USING ERRCODE = 'program_limit_exceeded';
    END IF;
    IF length(description) > 2000 THEN
        RAISE EXCEPTION 'description is too long (% characters, at most 2000)', length(description)
            USING ERRCODE = 'string_data_right_truncation';
    END IF;
    SELECT 'SELECT ' || x.sql AS sql, x.sources, x.uses INTO c FROM ecrm._segment_compile(definition, '$') x;
    SELECT s.segment_id INTO sid FROM ecrm.segment s WHERE s.name = nm FOR UPDATE;
    -- a segment may not refer to itself, directly or through others
    IF sid IS NOT NULL THEN
        WITH RECURSIVE walk(id, trail) AS (
            SELECT u, ARRAY[nm, (SELECT s.name FROM ecrm.segment s WHERE s.segment_id = u)] FROM unnest(c.uses) u
            UNION ALL
            SELECT d.uses, w.trail || (SELECT s.name FROM ecrm.segment s WHERE s.segment_id = d.uses)
              FROM walk w JOIN ecrm.segment_dependency d ON d.segment_id = w.id
             WHERE w.id <> sid AND cardinality(w.trail) < 1000)
        SELECT array_to_string(w.trail, ' -> ') INTO cycle FROM walk w WHERE w.id = sid LIMIT 1;
        IF cycle IS NOT NULL THEN
            RAISE EXCEPTION 'segment definitions would form a cycle: %', cycle
                USING ERRCODE = 'invalid_object_definition',
                      HINT = 'A segment cannot contain itself, directly or through the segments it refers to.';
        END IF;
    END IF;
    -- every literal casts and every table is there: run the rule once for nobody
    BEGIN
        EXECUTE c.sql INTO probe USING '{}'::bigint[];
    EXCEPTION WHEN data_exception THEN
        RAISE EXCEPTION 'invalid segment rule: %', SQLERRM USING ERRCODE = 'invalid_parameter_value';
    END;
    SELECT coalesce(max(s.depth) + 1, 0) INTO dep FROM ecrm.segment s WHERE s.segment_id = ANY (c.uses);
    srcs := c.sources || ARRAY['customer_profile'];
    SELECT array_agg(DISTINCT x ORDER BY x) INTO srcs FROM unnest(srcs) x;
    IF sid IS NULL THEN
        INSERT INTO ecrm.segment AS s (name, kind, description, definition, realtime, sources, depth, compiled)
        VALUES (nm, 'rule', define_segment.description, definition, coalesce(realtime, true), srcs, dep, c.sql)
        RETURNING s.segment_id INTO sid;
    ELSE
        IF (SELECT s.kind FROM ecrm.segment s WHERE s.segment_id = sid) <> 'rule' THEN
            RAISE EXCEPTION 'segment "%" is a % segment, not a rule segment', nm, (SELECT s.kind FROM ecrm.segment s WHERE s.segment_id = sid)
                USING ERRCODE = 'wrong_object_type', HINT = 'Drop it first, or choose another name.';
        END IF;
        UPDATE ecrm.segment s SET description = coalesce(define_segment.description, s.description), definition = define_segment.definition,
                                  realtime = coalesce(define_segment.realtime, true), sources = srcs, depth = dep, compiled = c.sql,
                                  updated_at = now()
         WHERE s.segment_id = sid;
        DELETE FROM ecrm.segment_dependency d WHERE d.segment_id = sid;
    END IF;
    INSERT INTO ecrm.segment_dependency (segment_id, uses) SELECT sid, u FROM unnest(c.uses) u;
    PERFORM ecrm._segment_refresh(sid, 'definition');
    -- segments that refer to this one see its new definition: their depth, sources and members follow
    PERFORM ecrm._segment_redepend(sid);
    RETURN sid;
END
$$;
COMMENT ON FUNCTION ecrm.define_segment(text, jsonb, text, boolean) IS
    'Create or replace a rule segment and build its membership now. The definition is a JSON rule tree: {"all"|"any": [rules]}, {"not": rule}, {"segment": name}, {"attribute": field, "op": ..., "value": ...}, {"consent": purpose}, {"lead_score": {...}}, {"rfm_class": [...]}, {"bought": {...}}, {"orders": {...}}, {"no_order_for": "180 days"}, {"campaign_event": {...}}, {"interaction": {...}}. Returns the segment id';

-- After a segment changed: recompute depth and sources of the segments that refer to it, and refresh them.
CREATE FUNCTION ecrm._segment_redepend(segment_id bigint) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    r record;
BEGIN
    FOR r IN WITH RECURSIVE up(id, lvl) AS (
                 SELECT d.segment_id, 1 FROM ecrm.segment_dependency d WHERE d.uses = _segment_redepend.segment_id
                 UNION
                 SELECT d.segment_id, u.lvl + 1 FROM up u JOIN ecrm.segment_dependency d ON d.uses = u.id WHERE u.lvl < 1000)
             SELECT u.id, max(u.lvl) AS lvl FROM up u GROUP BY u.id ORDER BY 2 LOOP
        UPDATE ecrm.segment s
           SET depth = (SELECT coalesce(max(x.depth) + 1, 0) FROM ecrm.segment x
                         JOIN ecrm.segment_dependency d ON d.uses = x.segment_id WHERE d.segment_id = s.segment_id),
               sources = (SELECT array_agg(DISTINCT v ORDER BY v)
                            FROM (SELECT unnest(x.sources) v FROM ecrm.segment x
                                    JOIN ecrm.segment_dependency d ON d.uses = x.segment_id WHERE d.segment_id = s.segment_id
                                  UNION ALL SELECT unnest(s.sources) UNION ALL SELECT 'segment') q)
         WHERE s.segment_id = r.id;
        PERFORM ecrm._segment_refresh(r.id, 'segment');
    END LOOP;
END
$$;

CREATE FUNCTION ecrm.define_static_segment(name text, members ecrm.idset DEFAULT '{}', description text DEFAULT NULL)
    RETURNS bigint
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    nm  text := ecrm._segment_check_name(define_static_segment.name);
    sid bigint;
    bad bigint;
BEGIN
    IF members IS NULL THEN
        RAISE EXCEPTION 'members must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT u.id INTO bad FROM ecrm.idset_unnest(ecrm.idset_andnot(members, ecrm._segment_universe(NULL))) u(id) LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'customer % does not exist or is not active', bad
            USING ERRCODE = 'foreign_key_violation', DETAIL = 'Only golden records (status active) can be segment members.';
    END IF;
    SELECT s.segment_id INTO sid FROM ecrm.segment s WHERE s.name = nm FOR UPDATE;
    IF sid IS NULL THEN
        INSERT INTO ecrm.segment AS s (name, kind, description, realtime, sources)
        VALUES (nm, 'static', description, false, '{}') RETURNING s.segment_id INTO sid;
    ELSIF (SELECT s.kind FROM ecrm.segment s WHERE s.segment_id = sid) = 'rule' THEN
        RAISE EXCEPTION 'segment "%" is a rule segment, not a static one', nm
            USING ERRCODE = 'wrong_object_type', HINT = 'Drop it first, or choose another name.';
    ELSE
        UPDATE ecrm.segment s SET description = coalesce(define_static_segment.description, s.description), updated_at = now()
         WHERE s.segment_id = sid;
    END IF;
    PERFORM pg_advisory_xact_lock(736465, (sid % 2147483647)::integer);
    PERFORM ecrm._segment_store(sid, members, 'manual', clock_timestamp());
    PERFORM ecrm._segment_redepend(sid);
    RETURN sid;
END
$$;
COMMENT ON FUNCTION ecrm.define_static_segment(text, ecrm.idset, text) IS
    'Create a static segment (a list of customers kept by hand), or replace the members of one. Returns the segment id';

CREATE FUNCTION ecrm.add_segment_members(segment text, customer_ids bigint[]) RETURNS bigint
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    s ecrm.segment := ecrm._segment_by_name(segment);
BEGIN
    IF s.kind = 'rule' THEN
        RAISE EXCEPTION 'segment "%" is defined by rules; its members cannot be added by hand', s.name
            USING ERRCODE = 'wrong_object_type', HINT = 'Change its definition, or make a static segment.';
    END IF;
    RETURN ecrm._segment_static_change(s.segment_id, customer_ids, true, 'manual');
END
$$;
COMMENT ON FUNCTION ecrm.add_segment_members(text, bigint[]) IS 'Add customers to a static segment; returns how many were not members yet';

CREATE FUNCTION ecrm.remove_segment_members(segment text, customer_ids bigint[]) RETURNS bigint
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    s ecrm.segment := ecrm._segment_by_name(segment);
BEGIN
    IF s.kind = 'rule' THEN
        RAISE EXCEPTION 'segment "%" is defined by rules; its members cannot be removed by hand', s.name
            USING ERRCODE = 'wrong_object_type', HINT = 'Change its definition, or make a static segment.';
    END IF;
    RETURN ecrm._segment_static_change(s.segment_id, customer_ids, false, 'manual');
END
$$;
COMMENT ON FUNCTION ecrm.remove_segment_members(text, bigint[]) IS 'Remove customers from a static segment; returns how many were members';

CREATE FUNCTION ecrm.drop_segment(segment text) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    s     ecrm.segment := ecrm._segment_by_name(segment);
    users text;
BEGIN
    SELECT string_agg(x.name, ', ' ORDER BY x.name) INTO users
      FROM ecrm.segment_dependency d JOIN ecrm.segment x ON x.segment_id = d.segment_id WHERE d.uses = s.segment_id;
    IF users IS NOT NULL THEN
        RAISE EXCEPTION 'segment "%" is used by %', s.name, users
            USING ERRCODE = 'dependent_objects_still_exist', HINT = 'Change or drop those segments first.';
    END IF;
    DELETE FROM ecrm.segment x WHERE x.segment_id = s.segment_id;
END
$$;
COMMENT ON FUNCTION ecrm.drop_segment(text) IS 'Drop a segment with its history (events, sizes); a segment other segments refer to cannot be dropped';

CREATE FUNCTION ecrm.segment_idset(segment text) RETURNS ecrm.idset
    LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
    RETURN ecrm._segment_current((ecrm._segment_by_name(segment)).segment_id, NULL);
COMMENT ON FUNCTION ecrm.segment_idset(text) IS 'Current members of a segment as an idset, for set algebra: ecrm.segment_idset(''a'') & ecrm.segment_idset(''b'')';

CREATE FUNCTION ecrm.segment_members(segment text) RETURNS SETOF bigint
    LANGUAGE sql STABLE PARALLEL SAFE ROWS 1000 SET search_path = pg_catalog, pg_temp
    RETURN ecrm.idset_unnest(ecrm.segment_idset(segment));
COMMENT ON FUNCTION ecrm.segment_members(text) IS 'Current members of a segment, one customer id per row, ascending';

CREATE FUNCTION ecrm.in_segment(customer_id bigint, segment text) RETURNS boolean
    LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    m boolean;
BEGIN
    -- one statement of index lookups (the segment by name, a merged id's survivor, a pending change in
    -- segment_delta); the stored set is read in slices: a few bytes, not the whole set
    SELECT coalesce(d.is_member, ecrm.idset_contains(s.members, r.id)) INTO m
      FROM ecrm.segment s
     CROSS JOIN (SELECT coalesce((SELECT ecrm.resolve_customer(p.customer_id) FROM ecrm.customer_profile p
                                   WHERE p.customer_id = in_segment.customer_id AND p.status = 'merged'),
                                 in_segment.customer_id) AS id) r
      LEFT JOIN ecrm.segment_delta d ON d.segment_id = s.segment_id AND d.customer_id = r.id
     WHERE s.name = in_segment.segment;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'segment "%" does not exist', left(segment, 200)
            USING ERRCODE = 'no_data_found', HINT = 'The segments are listed in ecrm.segments.';
    END IF;
    RETURN m;
END
$$;
COMMENT ON FUNCTION ecrm.in_segment(bigint, text) IS
    'Whether a customer is in a segment now (a merged id counts as its survivor); unknown segment: error P0002';

-- The segment names of a customer: a scan of the (few) segments and, per segment, a primary-key
-- lookup in segment_delta and a membership test (a sliced read of the stored set).  Reads with the
-- caller's rights: callable by anyone, useful only to roles that may read the segment tables.
CREATE FUNCTION ecrm._segment_names_all(customer_id bigint) RETURNS text[]
    LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT ARRAY(SELECT s.name FROM ecrm.segment s
                  WHERE coalesce((SELECT d.is_member FROM ecrm.segment_delta d
                                   WHERE d.segment_id = s.segment_id AND d.customer_id = _segment_names_all.customer_id),
                                 ecrm.idset_contains(s.members, _segment_names_all.customer_id))
                  ORDER BY s.name);
END;
COMMENT ON FUNCTION ecrm._segment_names_all(bigint) IS
    'The names of the segments a customer id is in now, ascending, read with the caller''s rights';

/*
 * The segment names a masked role may learn of a customer: those the masked twin of customer_360
 * shows, and nothing ('{}') for a customer that twin leaves out: not a live golden record, or
 * without consent by the twin's rule (by default: withdrew profiling), or no twin at all.
 * SECURITY DEFINER (masked roles may not read the segment tables), so it must itself refuse
 * what the twin hides: analysts can call it with any id, not only through the twin.
 */
CREATE FUNCTION ecrm._segment_names_visible(customer_id bigint) RETURNS text[]
    LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS
$$
    SELECT CASE WHEN coalesce(r.twin, true)
                 AND EXISTS (SELECT FROM ecrm.customer_profile p WHERE p.customer_id = $1 AND p.status = 'active')
                 AND (coalesce(r.consent_action, 'exclude') = 'none'
                      OR CASE coalesce(r.consent_when, 'withdrawn')
                         WHEN 'withdrawn' THEN NOT EXISTS (SELECT FROM ecrm.consent_state s WHERE s.customer_id = $1
                                                              AND s.purpose = coalesce(r.consent_purpose, 'profiling') AND NOT s.granted)
                         ELSE EXISTS (SELECT FROM ecrm.consent_state s WHERE s.customer_id = $1
                                         AND s.purpose = coalesce(r.consent_purpose, 'profiling') AND s.granted) END)
                THEN ecrm._segment_names_all($1) ELSE '{}' END
      FROM (SELECT) d
      LEFT JOIN ecrm.masked_view_rule r ON r.view_name = 'ecrm.customer_360'::regclass
$$;
COMMENT ON FUNCTION ecrm._segment_names_visible(bigint) IS
    'The segment names of a customer as the masked twin of customer_360 shows them: empty for a customer that twin leaves out (not live, or no consent by its rule)';

-- Declared in 30_views.sql for ecrm.customer_360: roles that may read the segment tables get every
-- customer's segments; any other (a masked role reading the twin) only what the twin may show, so
-- the function analysts need for the twin is no way round it (issue 11, finding 7).  Both branches
-- are granted wherever this is (PostgreSQL checks EXECUTE on every function of an expression).
CREATE OR REPLACE FUNCTION ecrm._segment_names_of(customer_id bigint) RETURNS SETOF text[]
    LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT CASE WHEN pg_catalog.has_table_privilege('ecrm.segment', 'SELECT')
                 AND pg_catalog.has_table_privilege('ecrm.segment_delta', 'SELECT')
                THEN ecrm._segment_names_all(_segment_names_of.customer_id)
                ELSE ecrm._segment_names_visible(_segment_names_of.customer_id) END
    OFFSET 0;   -- keeps the lookup beside the customer's scan, whose plan then does not depend on it
END;
COMMENT ON FUNCTION ecrm._segment_names_of(bigint) IS
    'One row: the names of the segments a golden-record customer is in now, ascending (no merge resolution: see ecrm.customer_segments); for a role that may not read the segment tables, only what the masked twin of customer_360 shows';

CREATE FUNCTION ecrm.customer_segments(customer_id bigint) RETURNS SETOF text
    LANGUAGE sql STABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT unnest(n) FROM ecrm._segment_names_of(coalesce(ecrm.resolve_customer($1), $1)) n
$$;
COMMENT ON FUNCTION ecrm.customer_segments(bigint) IS 'Names of the segments a customer is in now, ascending (a merged id counts as its survivor)';

CREATE FUNCTION ecrm.record_segment_sizes() RETURNS integer
    LANGUAGE sql SET search_path = pg_catalog, pg_temp AS
$$
    WITH ins AS (
        INSERT INTO ecrm.segment_size (segment_id, measured_at, members)
        SELECT s.segment_id, clock_timestamp(), ecrm.idset_cardinality(ecrm._segment_current(s.segment_id, NULL))
          FROM ecrm.segment s
        ON CONFLICT ON CONSTRAINT segment_size_pkey DO NOTHING
        RETURNING 1)
    SELECT count(*)::integer FROM ins
$$;
COMMENT ON FUNCTION ecrm.record_segment_sizes() IS 'Record the current size of every segment in ecrm.segment_size (run it daily for a size history between refreshes); returns the number of segments';

------------------------------------------------------------------------------
-- Views
------------------------------------------------------------------------------
CREATE VIEW ecrm.segments AS
SELECT s.segment_id, s.name, s.kind, s.description, s.definition, s.realtime,
       ecrm.idset_cardinality(s.members) + coalesce(d.plus, 0) - coalesce(d.minus, 0) AS members,
       coalesce(d.plus, 0) + coalesce(d.minus, 0) AS pending_changes,
       s.refreshed_at, s.refresh_ms, s.created_at, s.updated_at
  FROM ecrm.segment s
  LEFT JOIN (SELECT x.segment_id, count(*) FILTER (WHERE x.is_member) AS plus, count(*) FILTER (WHERE NOT x.is_member) AS minus
               FROM ecrm.segment_delta x GROUP BY x.segment_id) d ON d.segment_id = s.segment_id;
COMMENT ON VIEW ecrm.segments IS 'Every segment with its current size';
COMMENT ON COLUMN ecrm.segments.kind IS 'rule (defined by a rule tree), static (a list kept by hand) or cluster (found by ecrm.cluster_customers)';
COMMENT ON COLUMN ecrm.segments.members IS 'Current number of members';
COMMENT ON COLUMN ecrm.segments.description IS 'What the segment is for';
COMMENT ON COLUMN ecrm.segments.definition IS 'Rule tree (JSON) of a rule segment; see ecrm.define_segment';
COMMENT ON COLUMN ecrm.segments.realtime IS 'Whether membership follows interactions, orders and profile changes as they arrive';
COMMENT ON COLUMN ecrm.segments.pending_changes IS 'Membership changes since the last refresh (folded in by the next one)';
COMMENT ON COLUMN ecrm.segments.refreshed_at IS 'When the membership was last rebuilt in full';
COMMENT ON COLUMN ecrm.segments.refresh_ms IS 'How long that rebuild took, in milliseconds';

-- The current members (stored set plus changes since the refresh) are computed inline, not through
-- ecrm._segment_current: a view's tables are read with its owner's rights, a function's with the
-- reader's, and the masked twins must work for analysts without reading the raw tables.
CREATE VIEW ecrm.segment_membership AS
SELECT c.segment_id, c.name AS segment, m.customer_id
  FROM (SELECT s.segment_id, s.name,
                 (s.members - coalesce(d.minus, '{}'::ecrm.idset)) | coalesce(d.plus, '{}'::ecrm.idset) AS ids
            FROM ecrm.segment s
            LEFT JOIN (SELECT x.segment_id,
                              ecrm.idset_agg(x.customer_id) FILTER (WHERE x.is_member) AS plus,
                              ecrm.idset_agg(x.customer_id) FILTER (WHERE NOT x.is_member) AS minus
                         FROM ecrm.segment_delta x GROUP BY x.segment_id) d ON d.segment_id = s.segment_id) c
  CROSS JOIN LATERAL ecrm.idset_unnest(c.ids) m(customer_id);
COMMENT ON VIEW ecrm.segment_membership IS 'Segment members: one row per segment and customer';
COMMENT ON COLUMN ecrm.segment_membership.segment IS 'Segment name';

CREATE VIEW ecrm.segment_size_history AS
SELECT s.segment_id, s.name AS segment, z.measured_at, z.members,
       z.members - lag(z.members) OVER (PARTITION BY z.segment_id ORDER BY z.measured_at) AS change,
       z.entered, z.exited
  FROM ecrm.segment_size z JOIN ecrm.segment s ON s.segment_id = z.segment_id;
COMMENT ON VIEW ecrm.segment_size_history IS 'Segment sizes over time (a row per refresh and per ecrm.record_segment_sizes call)';
COMMENT ON COLUMN ecrm.segment_size_history.segment IS 'Segment name';
COMMENT ON COLUMN ecrm.segment_size_history.measured_at IS 'When the size was measured';
COMMENT ON COLUMN ecrm.segment_size_history.members IS 'Number of members then';
COMMENT ON COLUMN ecrm.segment_size_history.change IS 'Change in size since the previous measurement';
COMMENT ON COLUMN ecrm.segment_size_history.entered IS 'Customers who entered at a refresh';
COMMENT ON COLUMN ecrm.segment_size_history.exited IS 'Customers who left at a refresh';

CREATE VIEW ecrm.segment_overlap AS
WITH m AS MATERIALIZED (SELECT s.segment_id, s.name,
                 (s.members - coalesce(d.minus, '{}'::ecrm.idset)) | coalesce(d.plus, '{}'::ecrm.idset) AS ids
            FROM ecrm.segment s
            LEFT JOIN (SELECT x.segment_id,
                              ecrm.idset_agg(x.customer_id) FILTER (WHERE x.is_member) AS plus,
                              ecrm.idset_agg(x.customer_id) FILTER (WHERE NOT x.is_member) AS minus
                         FROM ecrm.segment_delta x GROUP BY x.segment_id) d ON d.segment_id = s.segment_id)
SELECT a.name AS segment_a, b.name AS segment_b,
       ecrm.idset_cardinality(a.ids) AS members_a, ecrm.idset_cardinality(b.ids) AS members_b,
       ecrm.idset_and_cardinality(a.ids, b.ids) AS overlap,
       round(ecrm.idset_jaccard(a.ids, b.ids)::numeric, 4) AS jaccard,
       round(ecrm.idset_and_cardinality(a.ids, b.ids)::numeric / nullif(ecrm.idset_cardinality(a.ids), 0), 4) AS share_of_a
  FROM m a CROSS JOIN m b;
COMMENT ON VIEW ecrm.segment_overlap IS 'The overlap matrix: for every pair of segments, how many customers are in both';
COMMENT ON COLUMN ecrm.segment_overlap.overlap IS 'Customers in both segments';
COMMENT ON COLUMN ecrm.segment_overlap.segment_a IS 'First segment of the pair';
COMMENT ON COLUMN ecrm.segment_overlap.segment_b IS 'Second segment of the pair';
COMMENT ON COLUMN ecrm.segment_overlap.members_a IS 'Members of the first segment';
COMMENT ON COLUMN ecrm.segment_overlap.members_b IS 'Members of the second segment';
COMMENT ON COLUMN ecrm.segment_overlap.jaccard IS 'overlap / customers in either (0 to 1)';
COMMENT ON COLUMN ecrm.segment_overlap.share_of_a IS 'overlap / members of segment_a';

------------------------------------------------------------------------------
-- Clustering customers on behaviour
------------------------------------------------------------------------------
CREATE FUNCTION ecrm.cluster_customers(k integer DEFAULT 5, seed integer DEFAULT 42, max_iterations integer DEFAULT 100,
                                       prefix text DEFAULT 'cluster')
    RETURNS TABLE (cluster integer, segment text, members bigint, profile jsonb)
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    feats text[] := ARRAY['recency_days', 'orders', 'revenue', 'interactions_90d', 'email_opens_90d', 'clicks_90d', 'tenure_days'];
    mu    double precision[];
    sd    double precision[];
    cents double precision[];
    n     bigint;
    c     int;
    r     record;
BEGIN
    IF k IS NULL OR k < 2 OR k > 100 THEN
        RAISE EXCEPTION 'k must be between 2 and 100, not %', coalesce(k::text, 'NULL') USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF seed IS NULL OR max_iterations IS NULL OR max_iterations NOT BETWEEN 1 AND 10000 THEN
        RAISE EXCEPTION 'seed must not be null and max_iterations must be between 1 and 10000'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF prefix IS NULL OR prefix !~ '^[A-Za-z][A-Za-z0-9_ -]{0,100}$' THEN
        RAISE EXCEPTION 'prefix must start with a letter and have at most 101 letters, digits, spaces, "_" or "-"'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF EXISTS (SELECT FROM ecrm.segment s WHERE s.name LIKE prefix || '\_%' AND s.kind <> 'cluster'
                  AND s.name ~ ('^' || regexp_replace(prefix, '([^A-Za-z0-9])', '\\\1', 'g') || '_[0-9]+$')) THEN
        RAISE EXCEPTION 'segments named "%_<n>" exist and are not clusters', prefix
            USING ERRCODE = 'duplicate_object', HINT = 'Choose another prefix.';
    END IF;
    -- behavioural features per active customer, log-scaled
    CREATE TEMP TABLE _ecrm_cluster_features ON COMMIT DROP AS
    SELECT p.customer_id,
           ARRAY[ln(1 + coalesce(extract(epoch FROM now() - o.last_order)::double precision / 86400, 3650)),
                 ln(1 + coalesce(o.orders, 0)), ln(1 + greatest(coalesce(o.revenue, 0), 0)::double precision),
                 ln(1 + coalesce(i.n90, 0)), ln(1 + coalesce(e.opens, 0)), ln(1 + coalesce(e.clicks, 0)),
                 ln(1 + greatest(extract(epoch FROM now() - p.created_at)::double precision / 86400, 0))] AS raw
      FROM ecrm.customer_profile p
      LEFT JOIN (SELECT x.customer_id, max(x.ordered_at) FILTER (WHERE x.status NOT IN ('cancelled', 'returned')) AS last_order,
                        count(*) FILTER (WHERE x.status NOT IN ('cancelled', 'returned')) AS orders,
                        sum(x.total) FILTER (WHERE x.status <> 'cancelled') AS revenue
                   FROM ecrm.orders x GROUP BY x.customer_id) o ON o.customer_id = p.customer_id
      LEFT JOIN (SELECT x.customer_id, count(*) AS n90 FROM ecrm.interaction x
                  WHERE x.occurred_at >= now() - interval '90 days' GROUP BY x.customer_id) i ON i.customer_id = p.customer_id
      LEFT JOIN (SELECT x.customer_id, count(*) FILTER (WHERE x.kind = 'opened') AS opens, count(*) FILTER (WHERE x.kind = 'clicked') AS clicks
                   FROM ecrm.campaign_event x WHERE x.occurred_at >= now() - interval '90 days' GROUP BY x.customer_id) e
             ON e.customer_id = p.customer_id
     WHERE p.status = 'active';
    SELECT count(*) INTO n FROM _ecrm_cluster_features;
    IF n < k THEN
        RAISE EXCEPTION 'there are % active customers, fewer than k = %', n, k USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- standardise each feature (z-scores) so that none dominates by its unit
    SELECT array_agg(a.mu ORDER BY a.i), array_agg(a.sd ORDER BY a.i) INTO mu, sd
      FROM (SELECT u.i, avg(f.raw[u.i]) AS mu, coalesce(nullif(stddev_pop(f.raw[u.i]), 0), 1) AS sd
              FROM _ecrm_cluster_features f CROSS JOIN generate_series(1, cardinality(feats)) u(i) GROUP BY u.i) a;
    SELECT ecrm.kmeans((SELECT array_agg((f.raw[u.i] - mu[u.i]) / sd[u.i] ORDER BY u.i) FROM generate_subscripts(f.raw, 1) u(i)),
                       k, max_iterations, seed)
      INTO cents FROM _ecrm_cluster_features f;
    CREATE TEMP TABLE _ecrm_cluster_assign ON COMMIT DROP AS
    SELECT f.customer_id, f.raw,
           ecrm.kmeans_assign((SELECT array_agg((f.raw[u.i] - mu[u.i]) / sd[u.i] ORDER BY u.i) FROM generate_subscripts(f.raw, 1) u(i)), cents) AS cl
      FROM _ecrm_cluster_features f;
    INSERT INTO ecrm.cluster_model (prefix, k, features, means, stddevs, centroids, customers, seed)
    VALUES (prefix, k, feats, mu, sd, cents, n, seed);
    FOR r IN SELECT a.cl, ecrm.idset_agg(a.customer_id) AS ids, count(*) AS cnt,
                    jsonb_build_object(
                        'recency_days', round(avg(exp(a.raw[1]) - 1)::numeric, 1), 'orders', round(avg(exp(a.raw[2]) - 1)::numeric, 2),
                        'revenue', round(avg(exp(a.raw[3]) - 1)::numeric, 2), 'interactions_90d', round(avg(exp(a.raw[4]) - 1)::numeric, 2),
                        'email_opens_90d', round(avg(exp(a.raw[5]) - 1)::numeric, 2), 'clicks_90d', round(avg(exp(a.raw[6]) - 1)::numeric, 2),
                        'tenure_days', round(avg(exp(a.raw[7]) - 1)::numeric, 1)) AS prof
               FROM _ecrm_cluster_assign a GROUP BY a.cl ORDER BY a.cl LOOP
        PERFORM ecrm._segment_set_cluster(format('%s_%s', prefix, r.cl), r.ids,
            format('k-means cluster %s of %s: %s customers; means %s', r.cl, k, r.cnt, r.prof::text));
        cluster := r.cl;
        segment := format('%s_%s', prefix, r.cl);
        members := r.cnt;
        profile := r.prof;
        RETURN NEXT;
    END LOOP;
    -- clusters of an earlier run with a larger k
    FOR c IN SELECT substring(s.name FROM '_([0-9]+)$')::int FROM ecrm.segment s
              WHERE s.kind = 'cluster' AND s.name ~ ('^' || regexp_replace(prefix, '([^A-Za-z0-9])', '\\\1', 'g') || '_[0-9]+$')
                AND substring(s.name FROM '_([0-9]+)$')::int > k LOOP
        PERFORM ecrm._segment_set_cluster(format('%s_%s', prefix, c), '{}', format('k-means cluster of an earlier run (now empty)'));
    END LOOP;
    DROP TABLE _ecrm_cluster_features;
    DROP TABLE _ecrm_cluster_assign;
END
$$;
COMMENT ON FUNCTION ecrm.cluster_customers(integer, integer, integer, text) IS
    'Cluster the active customers with k-means (k-means++ start, in C) on standardised log features: recency, orders, revenue, interactions, email opens and clicks in 90 days, tenure. Stores segments <prefix>_1..k (kind cluster) and the model in ecrm.cluster_model; returns each cluster''s size and mean profile';

CREATE FUNCTION ecrm._segment_set_cluster(name text, members ecrm.idset, description text) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    sid bigint;
BEGIN
    SELECT s.segment_id INTO sid FROM ecrm.segment s WHERE s.name = _segment_set_cluster.name FOR UPDATE;
    IF sid IS NULL THEN
        INSERT INTO ecrm.segment AS s (name, kind, description, realtime, sources)
        VALUES (_segment_set_cluster.name, 'cluster', _segment_set_cluster.description, false, '{}')
        RETURNING s.segment_id INTO sid;
    ELSE
        UPDATE ecrm.segment s SET description = _segment_set_cluster.description, updated_at = now() WHERE s.segment_id = sid;
    END IF;
    PERFORM pg_advisory_xact_lock(736465, (sid % 2147483647)::integer);
    PERFORM ecrm._segment_store(sid, members, 'cluster', clock_timestamp());
    PERFORM ecrm._segment_redepend(sid);
END
$$;

------------------------------------------------------------------------------
-- Privileges and pg_dump
------------------------------------------------------------------------------
-- The idset and k-means kernels are pure functions: every role may use them.
DO $grants$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p
              WHERE p.pronamespace = 'ecrm'::regnamespace
                AND (p.proname LIKE 'idset%' OR p.proname LIKE '\_idset%' OR p.proname LIKE 'kmeans%' OR p.proname LIKE '\_kmeans%'
                     OR p.proname IN ('rfm_score', 'rfm_class')) LOOP
        EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO ecrm_agent, ecrm_analyst', f);
    END LOOP;
END
$grants$;
-- Agents (customer service, sales): who is in which segment, RFM per customer.
GRANT SELECT ON ecrm.segment, ecrm.segment_delta, ecrm.segment_dependency, ecrm.segments, ecrm.segment_membership, ecrm.segment_size_history, ecrm.segment_overlap, ecrm.rfm,
                ecrm.rfm_summary, ecrm.segment_event
   TO ecrm_agent;
GRANT EXECUTE ON FUNCTION
    ecrm.in_segment(bigint, text), ecrm.segment_members(text), ecrm.segment_idset(text), ecrm.customer_segments(bigint),
    ecrm._segment_current(bigint, bigint[]), ecrm._segment_by_name(text), ecrm._segment_names_of(bigint),
    ecrm._segment_names_all(bigint), ecrm._segment_names_visible(bigint)
   TO ecrm_agent;
-- Analysts: sizes, overlaps and the RFM class mix; no per-customer rows.
GRANT SELECT ON ecrm.segment_size_history, ecrm.segment_overlap, ecrm.rfm_summary TO ecrm_analyst;
-- The masked customer_360 (ecrm_masked) shows each customer's segment names beside their masked profile
-- (customers who object to profiling are left out of that twin, and _segment_names_visible tells
-- nothing about them either). _segment_names_all reads with the caller's rights: harmless.
GRANT EXECUTE ON FUNCTION ecrm._segment_names_of(bigint), ecrm._segment_names_all(bigint), ecrm._segment_names_visible(bigint)
   TO ecrm_analyst;

DO $dump$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['ecrm.segment', 'ecrm.segment_dependency', 'ecrm.segment_delta', 'ecrm.segment_event',
                             'ecrm.segment_size', 'ecrm.rfm_cutoff', 'ecrm.cluster_model'] LOOP
        PERFORM pg_catalog.pg_extension_config_dump(t::regclass, '');
        PERFORM pg_catalog.pg_extension_config_dump(s.seq, '')
           FROM (SELECT pg_catalog.pg_get_serial_sequence(t, a.attname)::regclass AS seq
                   FROM pg_catalog.pg_attribute a
                  WHERE a.attrelid = t::regclass AND a.attidentity <> '' LIMIT 1) s;
    END LOOP;
END
$dump$;
