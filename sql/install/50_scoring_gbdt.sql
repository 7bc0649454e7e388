
------------------------------------------------------------------------------
-- Lead scoring, the kernel: gradient-boosted decision trees (src/gbdt.c) —
-- a training aggregate over any query, prediction, exact TreeSHAP.
-- A feature array holds one float8 per feature; NaN or a NULL element means
-- missing (each split learns where missing values go).  Categorical
-- attributes are one-hot encoded by the caller (ecrm.encode_features does).
------------------------------------------------------------------------------

CREATE FUNCTION ecrm._gbdt_train_trans(internal, double precision[], boolean)
    RETURNS internal AS 'MODULE_PATHNAME', 'ecrm_gbdt_train_trans' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION ecrm._gbdt_train_trans(internal, double precision[], boolean, jsonb)
    RETURNS internal AS 'MODULE_PATHNAME', 'ecrm_gbdt_train_trans' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION ecrm._gbdt_train_trans(internal, double precision[], double precision)
    RETURNS internal AS 'MODULE_PATHNAME', 'ecrm_gbdt_train_trans' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION ecrm._gbdt_train_trans(internal, double precision[], double precision, jsonb)
    RETURNS internal AS 'MODULE_PATHNAME', 'ecrm_gbdt_train_trans' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION ecrm._gbdt_train_final(internal)
    RETURNS jsonb AS 'MODULE_PATHNAME', 'ecrm_gbdt_train_final' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION ecrm._gbdt_train_combine(internal, internal)
    RETURNS internal AS 'MODULE_PATHNAME', 'ecrm_gbdt_train_combine' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION ecrm._gbdt_train_serialize(internal)
    RETURNS bytea AS 'MODULE_PATHNAME', 'ecrm_gbdt_train_serialize' LANGUAGE C STRICT PARALLEL SAFE;
CREATE FUNCTION ecrm._gbdt_train_deserialize(bytea, internal)
    RETURNS internal AS 'MODULE_PATHNAME', 'ecrm_gbdt_train_deserialize' LANGUAGE C STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ecrm._gbdt_train_combine(internal, internal) IS 'Combine function of ecrm.gbdt_train: concatenates the rows of two partial states (internal; volatile: it appends to its first state)';
COMMENT ON FUNCTION ecrm._gbdt_train_serialize(internal) IS 'Serial function of ecrm.gbdt_train (internal; volatile like every support function of an aggregate with internal state)';
COMMENT ON FUNCTION ecrm._gbdt_train_deserialize(bytea, internal) IS 'Deserial function of ecrm.gbdt_train (internal; volatile: it allocates a new internal state)';
COMMENT ON FUNCTION ecrm._gbdt_train_trans(internal, double precision[], boolean) IS 'Transition function of ecrm.gbdt_train (internal; volatile: it appends to its internal state)';
COMMENT ON FUNCTION ecrm._gbdt_train_trans(internal, double precision[], boolean, jsonb) IS 'Transition function of ecrm.gbdt_train (internal; volatile: it appends to its internal state)';
COMMENT ON FUNCTION ecrm._gbdt_train_trans(internal, double precision[], double precision) IS 'Transition function of ecrm.gbdt_train (internal; volatile: it appends to its internal state)';
COMMENT ON FUNCTION ecrm._gbdt_train_trans(internal, double precision[], double precision, jsonb) IS 'Transition function of ecrm.gbdt_train (internal; volatile: it appends to its internal state)';
COMMENT ON FUNCTION ecrm._gbdt_train_final(internal) IS 'Final function of ecrm.gbdt_train: bins, boosts, returns the model (internal; volatile like every support function of an aggregate with internal state)';

-- The rows are held in memory (at most 20 million values) and the trees are grown in the final function;
-- parallel workers collect rows and the leader concatenates them.  The validation split for early stopping
-- follows the row order: ORDER BY inside the aggregate makes the model reproducible (and trains in one process).
CREATE AGGREGATE ecrm.gbdt_train(features double precision[], label boolean) (
    SFUNC = ecrm._gbdt_train_trans, STYPE = internal, FINALFUNC = ecrm._gbdt_train_final,
    COMBINEFUNC = ecrm._gbdt_train_combine, SERIALFUNC = ecrm._gbdt_train_serialize,
    DESERIALFUNC = ecrm._gbdt_train_deserialize, PARALLEL = SAFE);
CREATE AGGREGATE ecrm.gbdt_train(features double precision[], label boolean, params jsonb) (
    SFUNC = ecrm._gbdt_train_trans, STYPE = internal, FINALFUNC = ecrm._gbdt_train_final,
    COMBINEFUNC = ecrm._gbdt_train_combine, SERIALFUNC = ecrm._gbdt_train_serialize,
    DESERIALFUNC = ecrm._gbdt_train_deserialize, PARALLEL = SAFE);
CREATE AGGREGATE ecrm.gbdt_train(features double precision[], label double precision) (
    SFUNC = ecrm._gbdt_train_trans, STYPE = internal, FINALFUNC = ecrm._gbdt_train_final,
    COMBINEFUNC = ecrm._gbdt_train_combine, SERIALFUNC = ecrm._gbdt_train_serialize,
    DESERIALFUNC = ecrm._gbdt_train_deserialize, PARALLEL = SAFE);
CREATE AGGREGATE ecrm.gbdt_train(features double precision[], label double precision, params jsonb) (
    SFUNC = ecrm._gbdt_train_trans, STYPE = internal, FINALFUNC = ecrm._gbdt_train_final,
    COMBINEFUNC = ecrm._gbdt_train_combine, SERIALFUNC = ecrm._gbdt_train_serialize,
    DESERIALFUNC = ecrm._gbdt_train_deserialize, PARALLEL = SAFE);
COMMENT ON AGGREGATE ecrm.gbdt_train(double precision[], boolean) IS
    'Train gradient-boosted trees (logistic loss, default parameters) on feature arrays and boolean labels; returns the model as jsonb';
COMMENT ON AGGREGATE ecrm.gbdt_train(double precision[], boolean, jsonb) IS
    'Train gradient-boosted trees on feature arrays (NaN or NULL element = missing) and boolean labels with parameters {learning_rate 0.1, max_depth 6 (<= 16), max_iter 100, min_samples_leaf 20, l2 0, max_bins 255, validation_fraction 0.1 (0: no early stopping), n_iter_no_change 10, tol 1e-7, seed 0}; returns the model as jsonb';
COMMENT ON AGGREGATE ecrm.gbdt_train(double precision[], double precision) IS
    'Train gradient-boosted trees on feature arrays and labels 0 or 1 (NaN or NULL labels are refused); returns the model as jsonb';
COMMENT ON AGGREGATE ecrm.gbdt_train(double precision[], double precision, jsonb) IS
    'Train gradient-boosted trees on feature arrays and labels 0 or 1 with parameters (see the boolean form); returns the model as jsonb';

CREATE FUNCTION ecrm.gbdt_predict(model jsonb, features double precision[]) RETURNS double precision
    AS 'MODULE_PATHNAME', 'ecrm_gbdt_predict' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.gbdt_predict(jsonb, double precision[]) IS
    'Probability of the positive class for one feature array (NaN or NULL element = missing) under a model from ecrm.gbdt_train';

CREATE FUNCTION ecrm.gbdt_log_odds(model jsonb, features double precision[]) RETURNS double precision
    AS 'MODULE_PATHNAME', 'ecrm_gbdt_log_odds' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.gbdt_log_odds(jsonb, double precision[]) IS
    'The raw score (log-odds) of one feature array under a model from ecrm.gbdt_train: base_score plus a leaf of each tree';

CREATE FUNCTION ecrm.gbdt_explain(model jsonb, features double precision[]) RETURNS double precision[]
    AS 'MODULE_PATHNAME', 'ecrm_gbdt_explain' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.gbdt_explain(jsonb, double precision[]) IS
    'Each feature''s exact TreeSHAP contribution (path-dependent, Lundberg et al. 2018) to the log-odds of one feature array; with the model''s baseline_logit (ecrm.gbdt_base_value) they add up to ecrm.gbdt_log_odds';

CREATE FUNCTION ecrm.gbdt_base_value(model jsonb) RETURNS double precision
    AS 'MODULE_PATHNAME', 'ecrm_gbdt_base_value' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.gbdt_base_value(jsonb) IS
    'The base value of a model''s explanations: the log-odds averaged over the training rows by the trees'' covers (its baseline_logit)';

CREATE FUNCTION ecrm._gbdt_conditional_expectation(model jsonb, features double precision[], known boolean[]) RETURNS double precision
    AS 'MODULE_PATHNAME', 'ecrm_gbdt_conditional_expectation' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ecrm._gbdt_conditional_expectation(jsonb, double precision[], boolean[]) IS
    'The log-odds expected when only the features marked known are known, the others averaged by the trees'' covers (internal; brute-force Shapley values in the tests use it)';

GRANT EXECUTE ON FUNCTION
    ecrm._gbdt_train_trans(internal, double precision[], boolean), ecrm._gbdt_train_trans(internal, double precision[], boolean, jsonb),
    ecrm._gbdt_train_trans(internal, double precision[], double precision),
    ecrm._gbdt_train_trans(internal, double precision[], double precision, jsonb), ecrm._gbdt_train_final(internal),
    ecrm._gbdt_train_combine(internal, internal), ecrm._gbdt_train_serialize(internal), ecrm._gbdt_train_deserialize(bytea, internal),
    ecrm.gbdt_train(double precision[], boolean), ecrm.gbdt_train(double precision[], boolean, jsonb),
    ecrm.gbdt_train(double precision[], double precision), ecrm.gbdt_train(double precision[], double precision, jsonb),
    ecrm.gbdt_predict(jsonb, double precision[]), ecrm.gbdt_log_odds(jsonb, double precision[]),
    ecrm.gbdt_explain(jsonb, double precision[]), ecrm.gbdt_base_value(jsonb),
    ecrm._gbdt_conditional_expectation(jsonb, double precision[], boolean[])
   TO ecrm_agent, ecrm_analyst;
