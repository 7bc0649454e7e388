
------------------------------------------------------------------------------
-- Lead scoring, the kernel: time decay, logistic regression, feature
-- encoding and evaluation aggregates (src/scoring.c, logreg.c, features.c,
-- evaluate.c).  Pure functions that work on any table.
------------------------------------------------------------------------------

CREATE FUNCTION ecrm.decay_weight(at timestamptz, as_of timestamptz, half_life interval) RETURNS double precision
    AS 'MODULE_PATHNAME', 'ecrm_decay_weight' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.decay_weight(timestamptz, timestamptz, interval) IS
    'Weight of an event at "at" as of "as_of": 2^-(age / half_life), 1 for an event that just happened, 0 for one after as_of';

CREATE FUNCTION ecrm._decayed_sum_trans(double precision, double precision, timestamptz, timestamptz, interval)
    RETURNS double precision
    AS 'MODULE_PATHNAME', 'ecrm_decayed_sum_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;

-- The state is a float8 sum: partial sums add up (float8pl), so it runs in parallel.
CREATE AGGREGATE ecrm.decayed_sum(value double precision, at timestamptz, as_of timestamptz, half_life interval) (
    SFUNC = ecrm._decayed_sum_trans,
    STYPE = double precision,
    COMBINEFUNC = pg_catalog.float8pl,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE ecrm.decayed_sum(double precision, timestamptz, timestamptz, interval) IS
    'Time-decayed sum: sum of value * 2^-((as_of - at) / half_life) over events up to as_of (later events count 0); rows with a NULL are left out; NULL when there are none';

-- Logistic regression -------------------------------------------------------

CREATE FUNCTION ecrm._logreg_train_trans(internal, double precision[], boolean) RETURNS internal
    AS 'MODULE_PATHNAME', 'ecrm_logreg_train_trans' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION ecrm._logreg_train_trans(internal, double precision[], boolean, double precision) RETURNS internal
    AS 'MODULE_PATHNAME', 'ecrm_logreg_train_trans' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION ecrm._logreg_train_combine(internal, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'ecrm_logreg_train_combine' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION ecrm._logreg_train_serialize(internal) RETURNS bytea
    AS 'MODULE_PATHNAME', 'ecrm_logreg_train_serialize' LANGUAGE C STRICT PARALLEL SAFE;
CREATE FUNCTION ecrm._logreg_train_deserialize(bytea, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'ecrm_logreg_train_deserialize' LANGUAGE C STRICT PARALLEL SAFE;
CREATE FUNCTION ecrm._logreg_train_final(internal) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'ecrm_logreg_train_final' LANGUAGE C PARALLEL SAFE;

CREATE AGGREGATE ecrm.logreg_train(features double precision[], label boolean) (
    SFUNC = ecrm._logreg_train_trans, STYPE = internal, FINALFUNC = ecrm._logreg_train_final,
    FINALFUNC_MODIFY = READ_WRITE,
    COMBINEFUNC = ecrm._logreg_train_combine,
    SERIALFUNC = ecrm._logreg_train_serialize, DESERIALFUNC = ecrm._logreg_train_deserialize,
    PARALLEL = SAFE
);
CREATE AGGREGATE ecrm.logreg_train(features double precision[], label boolean, l2 double precision) (
    SFUNC = ecrm._logreg_train_trans, STYPE = internal, FINALFUNC = ecrm._logreg_train_final,
    FINALFUNC_MODIFY = READ_WRITE,
    COMBINEFUNC = ecrm._logreg_train_combine,
    SERIALFUNC = ecrm._logreg_train_serialize, DESERIALFUNC = ecrm._logreg_train_deserialize,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE ecrm.logreg_train(double precision[], boolean) IS
    'Train an L2-regularised logistic regression (l2 = 1) on feature arrays and labels by Newton''s method on standardised features; returns the model as jsonb';
COMMENT ON AGGREGATE ecrm.logreg_train(double precision[], boolean, double precision) IS
    'Train a logistic regression minimising the log loss + l2/2 * |w|^2 over standardised features (scikit-learn''s C = 1/l2); rows with a NULL features array or label are left out; returns the model as jsonb';

CREATE FUNCTION ecrm.logreg_predict(model jsonb, features double precision[]) RETURNS double precision
    AS 'MODULE_PATHNAME', 'ecrm_logreg_predict' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.logreg_predict(jsonb, double precision[]) IS
    'Probability of the positive class for one feature array under a model from ecrm.logreg_train';

CREATE FUNCTION ecrm.logreg_contributions(model jsonb, features double precision[]) RETURNS double precision[]
    AS 'MODULE_PATHNAME', 'ecrm_logreg_contributions' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.logreg_contributions(jsonb, double precision[]) IS
    'What each feature adds to the log-odds against an average training row: coef * (x - mean); with the model''s baseline_logit they add up to the prediction''s logit';

-- Features ------------------------------------------------------------------

CREATE FUNCTION ecrm.encode_features(spec jsonb, attributes jsonb) RETURNS double precision[]
    AS 'MODULE_PATHNAME', 'ecrm_encode_features' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.encode_features(jsonb, jsonb) IS
    'The feature array of one row of attributes (to_jsonb(row)) by a feature specification: numbers as they are (missing ones imputed), categorical values one-hot over the listed levels';

CREATE FUNCTION ecrm.feature_names(spec jsonb) RETURNS text[]
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
BEGIN ATOMIC
    SELECT coalesce(array_agg(n.name ORDER BY f.i, n.j), '{}')
      FROM jsonb_array_elements(spec -> 'features') WITH ORDINALITY f(f, i)
      CROSS JOIN LATERAL (SELECT f.f ->> 'name', 0::bigint WHERE f.f ->> 'type' = 'numeric'
                          UNION ALL
                          SELECT (f.f ->> 'name') || '=' || l.l, l.j
                            FROM jsonb_array_elements_text(CASE WHEN f.f ->> 'type' = 'categorical'
                                                                THEN f.f -> 'levels' ELSE '[]' END)
                                 WITH ORDINALITY l(l, j)) n(name, j);
END;
COMMENT ON FUNCTION ecrm.feature_names(jsonb) IS
    'Names of the values ecrm.encode_features produces for a specification, in order ("age", "job=admin.", ...)';

-- Evaluation ------------------------------------------------------------------

CREATE TYPE ecrm.lift_decile AS (
    decile          integer,
    rows            bigint,
    positives       bigint,
    min_score       double precision,
    max_score       double precision,
    positive_rate   double precision,
    lift            double precision,
    cumulative_lift double precision,
    capture_rate    double precision
);
COMMENT ON TYPE ecrm.lift_decile IS 'One decile of a lift table (decile 1 = highest scores): ecrm.lift_by_decile';

CREATE TYPE ecrm.calibration_decile AS (
    decile         integer,
    rows           bigint,
    mean_predicted double precision,
    observed_rate  double precision,
    difference     double precision
);
COMMENT ON TYPE ecrm.calibration_decile IS 'One decile of a calibration table (decile 1 = highest predictions): ecrm.calibration_by_decile';

CREATE FUNCTION ecrm._scored_pairs_trans(internal, double precision, boolean) RETURNS internal
    AS 'MODULE_PATHNAME', 'ecrm_scored_pairs_trans' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION ecrm._scored_pairs_combine(internal, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'ecrm_scored_pairs_combine' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION ecrm._scored_pairs_serialize(internal) RETURNS bytea
    AS 'MODULE_PATHNAME', 'ecrm_scored_pairs_serialize' LANGUAGE C STRICT PARALLEL SAFE;
CREATE FUNCTION ecrm._scored_pairs_deserialize(bytea, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'ecrm_scored_pairs_deserialize' LANGUAGE C STRICT PARALLEL SAFE;
CREATE FUNCTION ecrm._roc_auc_final(internal) RETURNS double precision
    AS 'MODULE_PATHNAME', 'ecrm_roc_auc_final' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION ecrm._lift_by_decile_final(internal) RETURNS ecrm.lift_decile[]
    AS 'MODULE_PATHNAME', 'ecrm_lift_by_decile_final' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION ecrm._calibration_by_decile_final(internal) RETURNS ecrm.calibration_decile[]
    AS 'MODULE_PATHNAME', 'ecrm_calibration_by_decile_final' LANGUAGE C PARALLEL SAFE;

CREATE AGGREGATE ecrm.roc_auc(score double precision, label boolean) (
    SFUNC = ecrm._scored_pairs_trans, STYPE = internal, FINALFUNC = ecrm._roc_auc_final, FINALFUNC_MODIFY = READ_WRITE,
    COMBINEFUNC = ecrm._scored_pairs_combine,
    SERIALFUNC = ecrm._scored_pairs_serialize, DESERIALFUNC = ecrm._scored_pairs_deserialize,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE ecrm.roc_auc(double precision, boolean) IS
    'Area under the ROC curve of a score against a label (ties count half); NULL without rows, an error when every label is the same';

CREATE AGGREGATE ecrm.lift_by_decile(score double precision, label boolean) (
    SFUNC = ecrm._scored_pairs_trans, STYPE = internal, FINALFUNC = ecrm._lift_by_decile_final, FINALFUNC_MODIFY = READ_WRITE,
    COMBINEFUNC = ecrm._scored_pairs_combine,
    SERIALFUNC = ecrm._scored_pairs_serialize, DESERIALFUNC = ecrm._scored_pairs_deserialize,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE ecrm.lift_by_decile(double precision, boolean) IS
    'Lift table over ten equal-count bins of the score (1 = highest): rows, positives, score range, positive rate, lift, cumulative lift, share of positives captured. SELECT * FROM unnest(...) shows it';

CREATE AGGREGATE ecrm.calibration_by_decile(probability double precision, label boolean) (
    SFUNC = ecrm._scored_pairs_trans, STYPE = internal, FINALFUNC = ecrm._calibration_by_decile_final, FINALFUNC_MODIFY = READ_WRITE,
    COMBINEFUNC = ecrm._scored_pairs_combine,
    SERIALFUNC = ecrm._scored_pairs_serialize, DESERIALFUNC = ecrm._scored_pairs_deserialize,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE ecrm.calibration_by_decile(double precision, boolean) IS
    'Calibration table over ten equal-count bins of predicted probability (1 = highest): mean prediction against the observed rate';

CREATE FUNCTION ecrm._log_loss_trans(double precision[], double precision, boolean) RETURNS double precision[]
    AS 'MODULE_PATHNAME', 'ecrm_log_loss_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION ecrm._log_loss_combine(double precision[], double precision[]) RETURNS double precision[]
    AS 'MODULE_PATHNAME', 'ecrm_log_loss_combine' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION ecrm._log_loss_final(double precision[]) RETURNS double precision
    AS 'MODULE_PATHNAME', 'ecrm_log_loss_final' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE AGGREGATE ecrm.log_loss(probability double precision, label boolean) (
    SFUNC = ecrm._log_loss_trans, STYPE = double precision[], INITCOND = '{0,0}',
    FINALFUNC = ecrm._log_loss_final, COMBINEFUNC = ecrm._log_loss_combine,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE ecrm.log_loss(double precision, boolean) IS
    'Mean log loss (cross-entropy) of predicted probabilities against labels, probabilities clipped to [1e-15, 1 - 1e-15]; NULL without rows';
