
------------------------------------------------------------------------------
-- Analytics: customer lifetime value (historical, and predicted with BG/NBD +
-- Gamma-Gamma fitted in C, src/clv.c), churn risk, cohort retention,
-- campaign attribution, funnel conversion, and the daily KPIs extended with
-- retention and churn.
------------------------------------------------------------------------------

CREATE TYPE ecrm.bgnbd_params AS (
    r double precision, alpha double precision, a double precision, b double precision,
    log_likelihood double precision, customers bigint, evaluations integer, converged boolean);
COMMENT ON TYPE ecrm.bgnbd_params IS
    'A fitted BG/NBD purchase model: r, alpha (purchase rates ~ Gamma(r, alpha)), a, b (dropout probability ~ Beta(a, b)), the maximised log-likelihood, customers used, objective evaluations, and whether Nelder-Mead converged';

CREATE TYPE ecrm.gamma_gamma_params AS (
    p double precision, q double precision, v double precision,
    log_likelihood double precision, customers bigint, evaluations integer, converged boolean);
COMMENT ON TYPE ecrm.gamma_gamma_params IS
    'A fitted Gamma-Gamma spend model: p, q, v (spend per purchase ~ Gamma(p, nu), nu ~ Gamma(q, v)), the maximised log-likelihood, repeat customers used, objective evaluations, and whether Nelder-Mead converged';

-- Kernel functions: pure, on any (frequency, recency, T, monetary) data.
CREATE FUNCTION ecrm.hyp2f1(a double precision, b double precision, c double precision, z double precision)
    RETURNS double precision
    AS 'MODULE_PATHNAME', 'ecrm_hyp2f1'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.hyp2f1(double precision, double precision, double precision, double precision) IS
    'Gauss hypergeometric function 2F1(a, b; c; z) for -1 < z < 1 (series, with Euler''s transformation when it converges faster)';

CREATE FUNCTION ecrm.bgnbd_log_likelihood(r double precision, alpha double precision, a double precision, b double precision,
                                          frequency double precision, recency double precision, t double precision)
    RETURNS double precision
    AS 'MODULE_PATHNAME', 'ecrm_bgnbd_log_likelihood'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.bgnbd_log_likelihood(double precision, double precision, double precision, double precision, double precision, double precision, double precision) IS
    'BG/NBD log-likelihood of one customer (frequency = repeat purchases, recency = time of the last purchase after the first, t = time observed since the first); its sum is what ecrm.bgnbd_fit maximises';

CREATE FUNCTION ecrm.bgnbd_p_alive(r double precision, alpha double precision, a double precision, b double precision,
                                   frequency double precision, recency double precision, t double precision)
    RETURNS double precision
    AS 'MODULE_PATHNAME', 'ecrm_bgnbd_p_alive'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.bgnbd_p_alive(double precision, double precision, double precision, double precision, double precision, double precision, double precision) IS
    'BG/NBD probability that a customer with this history is still active (1 for a customer without repeat purchases)';

CREATE FUNCTION ecrm.bgnbd_expected_purchases(r double precision, alpha double precision, a double precision, b double precision,
                                              frequency double precision, recency double precision, t double precision,
                                              horizon double precision)
    RETURNS double precision
    AS 'MODULE_PATHNAME', 'ecrm_bgnbd_expected_purchases'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.bgnbd_expected_purchases(double precision, double precision, double precision, double precision, double precision, double precision, double precision, double precision) IS
    'BG/NBD expected number of purchases of a customer in the next horizon time units (Fader, Hardie & Lee 2005, eq. 10)';

CREATE FUNCTION ecrm.gamma_gamma_expected_value(p double precision, q double precision, v double precision,
                                                frequency double precision, monetary double precision)
    RETURNS double precision
    AS 'MODULE_PATHNAME', 'ecrm_gamma_gamma_expected_value'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.gamma_gamma_expected_value(double precision, double precision, double precision, double precision, double precision) IS
    'Gamma-Gamma expected spend per purchase of a customer with frequency repeat purchases of mean value monetary (the population mean for frequency 0; NULL when that is infinite, q <= 1)';

CREATE FUNCTION ecrm.clv_predict(r double precision, alpha double precision, a double precision, b double precision,
                                 frequency double precision, recency double precision, t double precision,
                                 expected_spend double precision, months integer, monthly_discount_rate double precision,
                                 days_per_unit double precision)
    RETURNS double precision
    AS 'MODULE_PATHNAME', 'ecrm_clv_predict'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.clv_predict(double precision, double precision, double precision, double precision, double precision, double precision, double precision, double precision, integer, double precision, double precision) IS
    'Predicted lifetime value over the next months (of 30 days): BG/NBD expected purchases of each month times the expected spend, discounted monthly, as lifetimes'' customer_lifetime_value computes it; days_per_unit is the length of the model''s time unit';

CREATE FUNCTION ecrm._bgnbd_trans(internal, double precision, double precision, double precision) RETURNS internal
    AS 'MODULE_PATHNAME', 'ecrm_bgnbd_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION ecrm._bgnbd_final(internal) RETURNS ecrm.bgnbd_params
    AS 'MODULE_PATHNAME', 'ecrm_bgnbd_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION ecrm._gamma_gamma_trans(internal, double precision, double precision) RETURNS internal
    AS 'MODULE_PATHNAME', 'ecrm_gamma_gamma_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION ecrm._gamma_gamma_final(internal) RETURNS ecrm.gamma_gamma_params
    AS 'MODULE_PATHNAME', 'ecrm_gamma_gamma_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION ecrm._clv_combine(internal, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'ecrm_clv_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION ecrm._clv_serialize(internal) RETURNS bytea
    AS 'MODULE_PATHNAME', 'ecrm_clv_serialize' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION ecrm._clv_deserialize(bytea, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'ecrm_clv_deserialize' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE AGGREGATE ecrm.bgnbd_fit(frequency double precision, recency double precision, t double precision) (
    SFUNC = ecrm._bgnbd_trans, STYPE = internal, FINALFUNC = ecrm._bgnbd_final, FINALFUNC_MODIFY = READ_WRITE,
    COMBINEFUNC = ecrm._clv_combine, SERIALFUNC = ecrm._clv_serialize, DESERIALFUNC = ecrm._clv_deserialize,
    PARALLEL = SAFE);
COMMENT ON AGGREGATE ecrm.bgnbd_fit(double precision, double precision, double precision) IS
    'Maximum-likelihood fit of the BG/NBD model to one row per customer (frequency = repeat purchases, recency, t; all in one time unit); rows with a NULL are left out. Nelder-Mead over log-parameters, restarted until it no longer improves';

CREATE AGGREGATE ecrm.gamma_gamma_fit(frequency double precision, monetary double precision) (
    SFUNC = ecrm._gamma_gamma_trans, STYPE = internal, FINALFUNC = ecrm._gamma_gamma_final, FINALFUNC_MODIFY = READ_WRITE,
    COMBINEFUNC = ecrm._clv_combine, SERIALFUNC = ecrm._clv_serialize, DESERIALFUNC = ecrm._clv_deserialize,
    PARALLEL = SAFE);
COMMENT ON AGGREGATE ecrm.gamma_gamma_fit(double precision, double precision) IS
    'Maximum-likelihood fit of the Gamma-Gamma spend model to one row per customer (frequency = repeat purchases, monetary = their mean value); customers without repeat purchases or with a zero mean are left out';

------------------------------------------------------------------------------
-- The CRM layer
------------------------------------------------------------------------------

-- One row per buying customer in the summary form of the lifetimes package: purchases grouped by
-- period (UTC day or ISO week); frequency = periods with a purchase after the first, recency = from the
-- first to the last, t = from the first to as_of, monetary = mean value of the repeat periods.
CREATE FUNCTION ecrm.clv_summary(as_of timestamptz, time_unit text DEFAULT 'day')
    RETURNS TABLE (customer_id bigint, frequency double precision, recency double precision, t double precision,
                   monetary double precision, orders bigint, revenue numeric,
                   first_order_at timestamptz, last_order_at timestamptz)
    LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT d.customer_id,
           (count(*) - 1)::double precision,
           ((max(d.period) - min(d.period)) / CASE WHEN clv_summary.time_unit = 'week' THEN 7.0 ELSE 1.0 END)::double precision,
           ((CASE WHEN clv_summary.time_unit = 'week' THEN date_trunc('week', clv_summary.as_of AT TIME ZONE 'UTC')::date
                  ELSE (clv_summary.as_of AT TIME ZONE 'UTC')::date END - min(d.period))
            / CASE WHEN clv_summary.time_unit = 'week' THEN 7.0 ELSE 1.0 END)::double precision,
           coalesce((sum(d.amount) - (array_agg(d.amount ORDER BY d.period))[1]) / nullif(count(*) - 1, 0), 0)::double precision,
           sum(d.orders)::bigint, sum(d.amount), min(d.first_at), max(d.last_at)
      FROM (SELECT o.customer_id,
                   CASE WHEN clv_summary.time_unit = 'week' THEN date_trunc('week', o.ordered_at AT TIME ZONE 'UTC')::date
                        ELSE (o.ordered_at AT TIME ZONE 'UTC')::date END AS period,
                   sum(o.total) AS amount, count(*) AS orders, min(o.ordered_at) AS first_at, max(o.ordered_at) AS last_at
              FROM ecrm.orders o
             WHERE o.status NOT IN ('cancelled', 'returned') AND o.total > 0 AND o.ordered_at <= clv_summary.as_of
             GROUP BY 1, 2) d
     GROUP BY d.customer_id;
END;
COMMENT ON FUNCTION ecrm.clv_summary(timestamptz, text) IS
    'Per buying customer, as of a time: frequency (purchase periods after the first), recency and t (in days or weeks), monetary (mean value of the repeat periods), the input of ecrm.bgnbd_fit and ecrm.gamma_gamma_fit (the summary lifetimes.utils.summary_data_from_transaction_data computes)';

CREATE TABLE ecrm.clv_model (
    model_id                   bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    fitted_at                  timestamptz NOT NULL DEFAULT now(),
    as_of                      timestamptz NOT NULL,
    time_unit                  text NOT NULL CHECK (time_unit IN ('day', 'week')),
    customers                  bigint NOT NULL,
    r                          double precision NOT NULL,
    alpha                      double precision NOT NULL,
    a                          double precision NOT NULL,
    b                          double precision NOT NULL,
    bgnbd_log_likelihood       double precision NOT NULL,
    bgnbd_converged            boolean NOT NULL,
    repeat_customers           bigint NOT NULL DEFAULT 0,
    p                          double precision,
    q                          double precision,
    v                          double precision,
    gamma_gamma_log_likelihood double precision,
    gamma_gamma_converged      boolean,
    monthly_discount_rate      double precision NOT NULL DEFAULT 0.01 CHECK (monthly_discount_rate >= 0 AND monthly_discount_rate < 10)
);
COMMENT ON TABLE ecrm.clv_model IS
    'Fitted lifetime-value models (BG/NBD for purchases, Gamma-Gamma for spend), one row per ecrm.fit_clv() call; the views use the latest';
COMMENT ON COLUMN ecrm.clv_model.as_of IS 'The time the summary was computed at (orders after it were not seen)';
COMMENT ON COLUMN ecrm.clv_model.time_unit IS 'Unit of recency and t: day or week';
COMMENT ON COLUMN ecrm.clv_model.p IS 'Gamma-Gamma p; NULL when no customer bought twice';

CREATE FUNCTION ecrm.fit_clv(as_of timestamptz DEFAULT now(), time_unit text DEFAULT 'day',
                             monthly_discount_rate double precision DEFAULT 0.01) RETURNS ecrm.clv_model
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    bg  ecrm.bgnbd_params;
    gg  ecrm.gamma_gamma_params;
    m   ecrm.clv_model;
    fit record;
BEGIN
    IF as_of IS NULL OR NOT isfinite(as_of) THEN
        RAISE EXCEPTION 'as_of must be a finite time' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF time_unit IS NULL OR time_unit NOT IN ('day', 'week') THEN
        RAISE EXCEPTION 'time_unit must be day or week, not %', coalesce(quote_literal(time_unit), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF monthly_discount_rate IS NULL OR NOT (monthly_discount_rate >= 0 AND monthly_discount_rate < 10) THEN
        RAISE EXCEPTION 'monthly_discount_rate must be between 0 and 10, not %', coalesce(monthly_discount_rate::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT ecrm.bgnbd_fit(s.frequency, s.recency, s.t) AS bg, ecrm.gamma_gamma_fit(s.frequency, s.monetary) AS gg
      INTO fit
      FROM ecrm.clv_summary(fit_clv.as_of, fit_clv.time_unit) s;
    bg := fit.bg;
    gg := fit.gg;
    IF bg.r IS NULL THEN
        RAISE EXCEPTION 'no orders before % to fit a lifetime-value model to', as_of USING ERRCODE = 'no_data_found';
    END IF;
    INSERT INTO ecrm.clv_model AS x (as_of, time_unit, customers, r, alpha, a, b, bgnbd_log_likelihood, bgnbd_converged,
                                     repeat_customers, p, q, v, gamma_gamma_log_likelihood, gamma_gamma_converged,
                                     monthly_discount_rate)
    VALUES (fit_clv.as_of, fit_clv.time_unit, bg.customers, bg.r, bg.alpha, bg.a, bg.b, bg.log_likelihood, bg.converged,
            coalesce(gg.customers, 0), gg.p, gg.q, gg.v, gg.log_likelihood, gg.converged, fit_clv.monthly_discount_rate)
    RETURNING x.* INTO m;
    RETURN m;
END
$$;
COMMENT ON FUNCTION ecrm.fit_clv(timestamptz, text, double precision) IS
    'Fit the lifetime-value models (BG/NBD and Gamma-Gamma, maximum likelihood in C) to every buying customer as of a time, store them in ecrm.clv_model and return the row; refit periodically (e.g. nightly with pg_cron)';

-- Per buying customer: historical value, and (with a fitted model) P(alive), expected purchases,
-- expected spend per purchase and predicted value over the next months.  Inlined by the planner, so
-- "WHERE customer_id = $1" reads only that customer's orders.
CREATE FUNCTION ecrm.customer_clv_at(as_of timestamptz, months integer DEFAULT 12)
    RETURNS TABLE (customer_id bigint, orders bigint, historical_clv numeric, first_order_at timestamptz,
                   last_order_at timestamptz, frequency double precision, recency double precision, t double precision,
                   avg_repeat_value double precision, p_alive double precision, expected_purchases double precision,
                   expected_order_value double precision, predicted_clv double precision, model_id bigint)
    LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT s.customer_id, s.orders, s.revenue, s.first_order_at, s.last_order_at, s.frequency, s.recency, s.t,
           CASE WHEN s.frequency > 0 THEN s.monetary END,
           ecrm.bgnbd_p_alive(m.r, m.alpha, m.a, m.b, s.frequency, s.recency, s.t),
           ecrm.bgnbd_expected_purchases(m.r, m.alpha, m.a, m.b, s.frequency, s.recency, s.t, customer_clv_at.months * 30.0 / m.unit_days),
           ecrm.gamma_gamma_expected_value(m.p, m.q, m.v, s.frequency, s.monetary),
           ecrm.clv_predict(m.r, m.alpha, m.a, m.b, s.frequency, s.recency, s.t,
                            ecrm.gamma_gamma_expected_value(m.p, m.q, m.v, s.frequency, s.monetary),
                            customer_clv_at.months, m.monthly_discount_rate, m.unit_days),
           m.model_id
      FROM (SELECT 1 AS one) z
      LEFT JOIN LATERAL (SELECT x.*, CASE WHEN x.time_unit = 'week' THEN 7.0 ELSE 1.0 END::double precision AS unit_days
                           FROM ecrm.clv_model x ORDER BY x.model_id DESC LIMIT 1) m ON true
      CROSS JOIN LATERAL ecrm.clv_summary(customer_clv_at.as_of, coalesce(m.time_unit, 'day')) s;
END;
COMMENT ON FUNCTION ecrm.customer_clv_at(timestamptz, integer) IS
    'Lifetime value per buying customer as of a time: historical (net revenue so far) and, with the latest model of ecrm.fit_clv(), P(alive), expected purchases, expected order value and the predicted discounted value over the next months';

CREATE VIEW ecrm.customer_clv AS
SELECT * FROM ecrm.customer_clv_at(now(), 12);
COMMENT ON VIEW ecrm.customer_clv IS
    'Customer lifetime value now: historical, and predicted for the next 12 months with BG/NBD + Gamma-Gamma (predicted columns are NULL until ecrm.fit_clv() has been run)';
COMMENT ON COLUMN ecrm.customer_clv.orders IS 'Orders placed (positive totals, not cancelled or returned)';
COMMENT ON COLUMN ecrm.customer_clv.historical_clv IS 'Revenue of those orders so far';
COMMENT ON COLUMN ecrm.customer_clv.first_order_at IS 'First order';
COMMENT ON COLUMN ecrm.customer_clv.last_order_at IS 'Latest order';
COMMENT ON COLUMN ecrm.customer_clv.frequency IS 'Repeat purchases: days (or weeks) with an order after the first';
COMMENT ON COLUMN ecrm.customer_clv.recency IS 'Days (or weeks) from the first to the latest purchase';
COMMENT ON COLUMN ecrm.customer_clv.t IS 'Days (or weeks) since the first purchase';
COMMENT ON COLUMN ecrm.customer_clv.avg_repeat_value IS 'Mean value of the repeat purchases';
COMMENT ON COLUMN ecrm.customer_clv.p_alive IS 'BG/NBD probability that the customer is still active';
COMMENT ON COLUMN ecrm.customer_clv.expected_purchases IS 'BG/NBD expected purchases in the next 12 months';
COMMENT ON COLUMN ecrm.customer_clv.expected_order_value IS 'Gamma-Gamma expected value of a future purchase';
COMMENT ON COLUMN ecrm.customer_clv.predicted_clv IS 'Predicted value of the next 12 months, discounted monthly';
COMMENT ON COLUMN ecrm.customer_clv.model_id IS 'The ecrm.clv_model used';

CREATE FUNCTION ecrm.churn_risk_at(as_of timestamptz)
    RETURNS TABLE (customer_id bigint, orders bigint, last_order_at timestamptz, days_since_last_order integer,
                   avg_days_between_orders double precision, p_alive double precision, churn_risk double precision,
                   risk_band text, method text)
    LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT x.customer_id, x.orders, x.last_order_at, x.days_since, x.gap, x.p_alive, x.risk,
           CASE WHEN x.risk < 0.25 THEN 'low' WHEN x.risk < 0.5 THEN 'medium' WHEN x.risk < 0.75 THEN 'high' ELSE 'very_high' END,
           x.method
      FROM (SELECT c.customer_id, c.orders, c.last_order_at, c.p_alive,
                   floor(extract(epoch FROM churn_risk_at.as_of - c.last_order_at) / 86400)::integer AS days_since,
                   CASE WHEN c.frequency > 0 THEN extract(epoch FROM c.last_order_at - c.first_order_at) / 86400 / c.frequency END AS gap,
                   CASE WHEN u.model_sees_dropout THEN 'bg_nbd' ELSE 'recency_frequency' END AS method,
                   CASE WHEN u.model_sees_dropout THEN 1 - c.p_alive
                        -- without a model (or one that found no dropout in the data): the chance that at the
                        -- customer's own pace (the shop's median pace for one-time buyers) a purchase would
                        -- have come by now
                        ELSE 1 - exp(- least(greatest(extract(epoch FROM churn_risk_at.as_of - c.last_order_at) / 86400, 0)
                                     / greatest(coalesce(CASE WHEN c.frequency > 0 THEN extract(epoch FROM c.last_order_at - c.first_order_at) / 86400 / c.frequency END,
                                                         (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY s.recency / s.frequency)
                                                            FROM ecrm.clv_summary(churn_risk_at.as_of, 'day') s WHERE s.frequency > 0),
                                                         90), 1), 700)) END AS risk
              FROM ecrm.customer_clv_at(churn_risk_at.as_of, 12) c
              LEFT JOIN LATERAL (SELECT coalesce(m.a / (m.a + m.b) >= 1e-4, false) AS model_sees_dropout
                                   FROM ecrm.clv_model m WHERE m.model_id = c.model_id) u0 ON true
              CROSS JOIN LATERAL (SELECT coalesce(u0.model_sees_dropout, false) AS model_sees_dropout) u) x;
END;
COMMENT ON FUNCTION ecrm.churn_risk_at(timestamptz) IS
    'Churn risk per buying customer as of a time: 1 - P(alive) of the latest BG/NBD model; before a model is fitted, or when the model found no dropout in the data (a / (a + b) < 0.0001, P(alive) = 1 for everyone), 1 - exp(-days since the last order / the customer''s mean days between orders)';

CREATE VIEW ecrm.churn_risk AS
SELECT * FROM ecrm.churn_risk_at(now());
COMMENT ON VIEW ecrm.churn_risk IS
    'Churn risk per buying customer now, from recency and frequency: 1 - P(alive) of the BG/NBD model (method bg_nbd), or a recency/frequency estimate before ecrm.fit_clv() has run';
COMMENT ON COLUMN ecrm.churn_risk.orders IS 'Orders placed';
COMMENT ON COLUMN ecrm.churn_risk.last_order_at IS 'Latest order';
COMMENT ON COLUMN ecrm.churn_risk.days_since_last_order IS 'Whole days since the latest order';
COMMENT ON COLUMN ecrm.churn_risk.avg_days_between_orders IS 'Mean days between purchase days (NULL for one-time buyers)';
COMMENT ON COLUMN ecrm.churn_risk.p_alive IS 'BG/NBD probability that the customer is still active';
COMMENT ON COLUMN ecrm.churn_risk.churn_risk IS 'Probability that the customer has gone, from 0 to 1';
COMMENT ON COLUMN ecrm.churn_risk.risk_band IS 'low (< 0.25), medium (< 0.5), high (< 0.75) or very_high';
COMMENT ON COLUMN ecrm.churn_risk.method IS 'bg_nbd (the fitted model) or recency_frequency (no model yet, or a model that found no dropout)';

CREATE VIEW ecrm.cohort_retention AS
WITH buys AS (
    SELECT o.customer_id, date_trunc('month', o.ordered_at AT TIME ZONE 'UTC')::date AS month,
           bool_or(o.status NOT IN ('cancelled', 'returned')) AS bought,
           sum(o.total) FILTER (WHERE o.status <> 'cancelled') AS revenue
      FROM ecrm.orders o
     WHERE o.status <> 'cancelled'
     GROUP BY 1, 2),
firsts AS (
    SELECT b.customer_id, min(b.month) AS cohort FROM buys b WHERE b.bought GROUP BY 1),
cohorts AS (
    SELECT f.cohort, count(*) AS customers FROM firsts f GROUP BY 1),
grid AS (
    SELECT c.cohort, c.customers, g.month,
           ((extract(year FROM g.month) - extract(year FROM c.cohort)) * 12
            + extract(month FROM g.month) - extract(month FROM c.cohort))::integer AS months_since
      FROM cohorts c
      CROSS JOIN LATERAL generate_series(c.cohort, (SELECT max(b.month) FROM buys b), interval '1 month') g0(m)
      CROSS JOIN LATERAL (SELECT g0.m::date AS month) g),
act AS (
    SELECT f.cohort, b.month, count(*) FILTER (WHERE b.bought) AS active, sum(b.revenue) AS revenue
      FROM buys b JOIN firsts f ON f.customer_id = b.customer_id
     GROUP BY 1, 2)
SELECT g.cohort AS cohort_month, g.months_since AS months_since_first_order, g.month, g.customers AS cohort_customers,
       coalesce(a.active, 0) AS active_customers,
       round(coalesce(a.active, 0)::numeric / g.customers, 4) AS retention_rate,
       coalesce(a.revenue, 0) AS revenue,
       round(sum(coalesce(a.revenue, 0)) OVER (PARTITION BY g.cohort ORDER BY g.month) / g.customers, 2)
           AS cumulative_revenue_per_customer
  FROM grid g
  LEFT JOIN act a ON a.cohort = g.cohort AND a.month = g.month;
COMMENT ON VIEW ecrm.cohort_retention IS
    'Cohort retention: customers grouped by the month (UTC) of their first order, and for each later month how many of them ordered and what they spent';
COMMENT ON COLUMN ecrm.cohort_retention.cohort_month IS 'Month of the first order (first day of the month)';
COMMENT ON COLUMN ecrm.cohort_retention.months_since_first_order IS '0 for the cohort month itself, 1 for the next, ...';
COMMENT ON COLUMN ecrm.cohort_retention.month IS 'The calendar month';
COMMENT ON COLUMN ecrm.cohort_retention.cohort_customers IS 'Customers whose first order was in the cohort month';
COMMENT ON COLUMN ecrm.cohort_retention.active_customers IS 'Of them, customers who ordered in this month';
COMMENT ON COLUMN ecrm.cohort_retention.retention_rate IS 'active_customers / cohort_customers';
COMMENT ON COLUMN ecrm.cohort_retention.revenue IS 'Net revenue of the cohort in this month (returns subtracted)';
COMMENT ON COLUMN ecrm.cohort_retention.cumulative_revenue_per_customer IS 'Net revenue of the cohort up to this month per cohort customer';

-- SECURITY DEFINER: returns per-campaign aggregates only, so analysts may call it without reading orders or
-- campaign events; search_path is fixed.
CREATE FUNCTION ecrm.campaign_attribution_in(attribution_window interval DEFAULT '7 days', model text DEFAULT 'last_touch')
    RETURNS TABLE (campaign_id bigint, name text, channel ecrm.channel, starts_at timestamptz, recipients bigint,
                   attributed_orders numeric, attributed_customers bigint, attributed_revenue numeric,
                   revenue_per_recipient numeric, order_conversion_rate numeric, return_on_budget numeric,
                   window_length interval, attribution_model text)
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET jit = off AS
$$
BEGIN
    IF attribution_window IS NULL OR attribution_window <= interval '0' OR attribution_window > interval '365 days' THEN
        RAISE EXCEPTION 'attribution_window must be between 0 and 365 days, not %', coalesce(attribution_window::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF model IS NULL OR model NOT IN ('last_touch', 'first_touch', 'linear') THEN
        RAISE EXCEPTION 'model must be last_touch, first_touch or linear, not %', coalesce(quote_literal(model), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY
    WITH o AS (
        SELECT x.order_id, x.customer_id, x.ordered_at, x.total, x.campaign_id
          FROM ecrm.orders x WHERE x.status NOT IN ('cancelled', 'returned')),
    touches AS (   -- per order and campaign: the first and last engagement within the window before the order
        SELECT o.order_id, o.customer_id, o.total, e.campaign_id, min(e.occurred_at) AS first_at, max(e.occurred_at) AS last_at
          FROM o JOIN ecrm.campaign_event e
            ON e.customer_id = o.customer_id AND e.kind IN ('opened', 'clicked', 'converted')
           AND e.occurred_at <= o.ordered_at AND e.occurred_at >= o.ordered_at - attribution_window
         WHERE o.campaign_id IS NULL
         GROUP BY o.order_id, o.customer_id, o.total, e.campaign_id),
    credit AS (
        SELECT t.campaign_id, t.customer_id, t.total,
               CASE model
                   WHEN 'last_touch' THEN (row_number() OVER (PARTITION BY t.order_id ORDER BY t.last_at DESC, t.campaign_id DESC) = 1)::int::numeric
                   WHEN 'first_touch' THEN (row_number() OVER (PARTITION BY t.order_id ORDER BY t.first_at, t.campaign_id) = 1)::int::numeric
                   ELSE 1.0 / count(*) OVER (PARTITION BY t.order_id) END AS weight
          FROM touches t
        UNION ALL   -- orders placed through a campaign are its own
        SELECT o.campaign_id, o.customer_id, o.total, 1.0 FROM o WHERE o.campaign_id IS NOT NULL),
    per AS (
        SELECT c.campaign_id, sum(c.weight) AS orders, count(DISTINCT c.customer_id) FILTER (WHERE c.weight > 0) AS customers,
               sum(c.weight * c.total) AS revenue
          FROM credit c GROUP BY c.campaign_id),
    recip AS (
        SELECT e.campaign_id, count(DISTINCT e.customer_id) AS n FROM ecrm.campaign_event e WHERE e.kind = 'sent' GROUP BY 1)
    SELECT cm.campaign_id, cm.name, cm.channel, cm.starts_at, coalesce(r.n, 0),
           round(coalesce(p.orders, 0), 2), coalesce(p.customers, 0), round(coalesce(p.revenue, 0), 2),
           round(coalesce(p.revenue, 0) / nullif(r.n, 0), 2),
           round(coalesce(p.customers, 0)::numeric / nullif(r.n, 0), 4),
           round(coalesce(p.revenue, 0) / nullif(cm.budget, 0) - 1, 4),
           attribution_window, model
      FROM ecrm.campaign cm
      LEFT JOIN per p ON p.campaign_id = cm.campaign_id
      LEFT JOIN recip r ON r.campaign_id = cm.campaign_id
     ORDER BY cm.campaign_id;
END
$$;
COMMENT ON FUNCTION ecrm.campaign_attribution_in(interval, text) IS
    'Revenue per campaign within an attribution window: an order is credited to the campaigns the customer opened or clicked in the window before it (last_touch, first_touch, or linear: split evenly); orders placed through a campaign (orders.campaign_id) are credited to it in full';

CREATE VIEW ecrm.campaign_attribution AS
SELECT * FROM ecrm.campaign_attribution_in('7 days', 'last_touch');
COMMENT ON VIEW ecrm.campaign_attribution IS
    'Revenue per campaign, last-touch attribution within 7 days of an open or click (ecrm.campaign_attribution_in() for other windows and models)';
COMMENT ON COLUMN ecrm.campaign_attribution.recipients IS 'Customers the campaign was sent to';
COMMENT ON COLUMN ecrm.campaign_attribution.attributed_orders IS 'Orders credited to the campaign (fractions under linear attribution)';
COMMENT ON COLUMN ecrm.campaign_attribution.attributed_customers IS 'Customers with an order credited to the campaign';
COMMENT ON COLUMN ecrm.campaign_attribution.attributed_revenue IS 'Revenue of the orders credited to the campaign';
COMMENT ON COLUMN ecrm.campaign_attribution.revenue_per_recipient IS 'attributed_revenue / recipients';
COMMENT ON COLUMN ecrm.campaign_attribution.order_conversion_rate IS 'attributed_customers / recipients';
COMMENT ON COLUMN ecrm.campaign_attribution.return_on_budget IS 'attributed_revenue / budget - 1';
COMMENT ON COLUMN ecrm.campaign_attribution.window_length IS 'How long before an order a touch counts';
COMMENT ON COLUMN ecrm.campaign_attribution.attribution_model IS 'last_touch, first_touch or linear';

CREATE VIEW ecrm.funnel_conversion AS
WITH per AS (
    SELECT c.customer_id, c.lifecycle_stage AS current_stage,
           greatest(c.lifecycle_stage, max(l.to_stage), max(l.from_stage)) AS furthest
      FROM ecrm.customer_profile c
      LEFT JOIN ecrm.lifecycle_change l ON l.customer_id = c.customer_id
     WHERE c.status = 'active'
     GROUP BY c.customer_id),
tally AS (
    SELECT p.current_stage, p.furthest, count(*) AS n FROM per p GROUP BY 1, 2),
stages AS (
    SELECT s.stage, s.ord FROM unnest(enum_range(NULL::ecrm.lifecycle_stage)) WITH ORDINALITY s(stage, ord)),
counts AS (
    SELECT s.stage, s.ord,
           coalesce(sum(t.n) FILTER (WHERE t.furthest >= s.stage), 0)::bigint AS reached,
           coalesce(sum(t.n) FILTER (WHERE t.current_stage = s.stage), 0)::bigint AS current
      FROM stages s CROSS JOIN tally t
     GROUP BY s.stage, s.ord),
dwell AS (
    SELECT x.to_stage AS stage,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM x.next_at - x.changed_at) / 86400) AS median_days
      FROM (SELECT l.to_stage, l.changed_at, lead(l.changed_at) OVER (PARTITION BY l.customer_id ORDER BY l.changed_at, l.change_id) AS next_at
              FROM ecrm.lifecycle_change l) x
     WHERE x.next_at IS NOT NULL
     GROUP BY x.to_stage)
SELECT c.stage, c.ord::integer AS stage_order, c.reached AS reached_customers, c.current AS current_customers,
       round(c.reached::numeric / nullif(lag(c.reached) OVER (ORDER BY c.ord), 0), 4) AS conversion_from_previous,
       round(c.reached::numeric / nullif(first_value(c.reached) OVER (ORDER BY c.ord), 0), 4) AS conversion_from_first,
       round(d.median_days::numeric, 1) AS median_days_in_stage
  FROM counts c LEFT JOIN dwell d ON d.stage = c.stage
 ORDER BY c.ord;
COMMENT ON VIEW ecrm.funnel_conversion IS
    'The lifecycle funnel: per stage, how many customers ever reached it (or a later one), how many are there now, the conversion from the stage before and from the top, and the median time spent in it';
COMMENT ON COLUMN ecrm.funnel_conversion.stage IS 'Lifecycle stage';
COMMENT ON COLUMN ecrm.funnel_conversion.stage_order IS 'Position of the stage in the funnel (1 = top)';
COMMENT ON COLUMN ecrm.funnel_conversion.reached_customers IS 'Customers who reached this stage or a later one';
COMMENT ON COLUMN ecrm.funnel_conversion.current_customers IS 'Customers at this stage now';
COMMENT ON COLUMN ecrm.funnel_conversion.conversion_from_previous IS 'reached / reached of the stage before';
COMMENT ON COLUMN ecrm.funnel_conversion.conversion_from_first IS 'reached / reached of the first stage';
COMMENT ON COLUMN ecrm.funnel_conversion.median_days_in_stage IS 'Median days between entering this stage and the next move (recorded moves only)';

-- The daily KPIs with retention and churn (columns appended to the foundation's view).  A customer is
-- active on a day when they ordered in the 90 days up to it; they churn on the day 90 days pass without
-- an order, and are retained on day d when active both on d - 90 and on d.
-- The query runs in a function so that it can turn JIT off: PostgreSQL's cost estimate for it crosses
-- jit_above_cost on any data, and compiling its ~140 expressions takes seconds while the query itself
-- takes a fraction of one on a shop like Online Retail.  SECURITY DEFINER: it returns daily aggregates
-- only (no personal data), so analysts can read the view as they could the foundation's.
CREATE FUNCTION ecrm._kpi_daily()
    RETURNS TABLE (day date, new_customers bigint, orders bigint, revenue numeric, active_customers bigint,
                   new_buyers bigint, returning_buyers bigint, active_buyers_90d bigint, churned_customers bigint,
                   reactivated_customers bigint, retention_rate_90d numeric, churn_rate_90d numeric)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET jit = off AS
$$
WITH active_days AS (
    SELECT x.day FROM (SELECT DISTINCT (c.created_at AT TIME ZONE 'UTC')::date AS day FROM ecrm.customer_profile c
                       UNION SELECT DISTINCT (o.ordered_at AT TIME ZONE 'UTC')::date FROM ecrm.orders o
                       UNION SELECT DISTINCT (n.occurred_at AT TIME ZONE 'UTC')::date FROM ecrm.interaction n) x),
od AS (
    SELECT y.customer_id, y.day, lag(y.day) OVER w AS prev_day, lead(y.day) OVER w AS next_day
      FROM (SELECT DISTINCT o.customer_id, (o.ordered_at AT TIME ZONE 'UTC')::date AS day
              FROM ecrm.orders o WHERE o.status NOT IN ('cancelled', 'returned')) y
    WINDOW w AS (PARTITION BY y.customer_id ORDER BY y.day)),
ev AS (
    SELECT e.day, sum(e.d_active)::bigint AS d_active, sum(e.d_retained)::bigint AS d_retained,
           sum(e.churned)::bigint AS churned, sum(e.reactivated)::bigint AS reactivated,
           sum(e.new_buyer)::bigint AS new_buyers, sum(e.returning)::bigint AS returning
      FROM (SELECT od.day, 1 AS d_active, 0 AS d_retained, 0 AS churned,
                   (od.prev_day < od.day - 90)::int AS reactivated, (od.prev_day IS NULL)::int AS new_buyer,
                   (od.prev_day IS NOT NULL)::int AS returning
              FROM od
            UNION ALL
            SELECT least(od.day + 90, od.next_day), -1, 0, (od.next_day IS NULL OR od.next_day > od.day + 90)::int, 0, 0, 0
              FROM od
            UNION ALL
            SELECT greatest(od.day + 90, od.next_day), 0, 1, 0, 0, 0, 0
              FROM od WHERE od.next_day IS NOT NULL AND greatest(od.day + 90, od.next_day) < least(od.next_day + 90, od.day + 180)
            UNION ALL
            SELECT least(od.next_day + 90, od.day + 180), 0, -1, 0, 0, 0, 0
              FROM od WHERE od.next_day IS NOT NULL AND greatest(od.day + 90, od.next_day) < least(od.next_day + 90, od.day + 180)) e
     GROUP BY e.day),
days AS (   -- days with activity, and the days up to today on which customers churned
    SELECT a.day FROM active_days a
    UNION
    SELECT e.day FROM ev e WHERE e.churned > 0 AND e.day <= (now() AT TIME ZONE 'UTC')::date),
run AS (
    SELECT g.day, sum(coalesce(v.d_active, 0)) OVER (ORDER BY g.day)::bigint AS active,
           sum(coalesce(v.d_retained, 0)) OVER (ORDER BY g.day)::bigint AS retained,
           coalesce(v.churned, 0) AS churned, coalesce(v.reactivated, 0) AS reactivated,
           coalesce(v.new_buyers, 0) AS new_buyers, coalesce(v.returning, 0) AS returning
      FROM (SELECT d.day FROM days d UNION SELECT d.day - 90 FROM days d UNION SELECT v.day FROM ev v) g
      LEFT JOIN ev v ON v.day = g.day)
SELECT d.day,
       coalesce(nc.new_customers, 0) AS new_customers,
       coalesce(od.orders, 0) AS orders,
       coalesce(od.revenue, 0) AS revenue,
       coalesce(ac.active_customers, 0) AS active_customers,
       r.new_buyers, r.returning AS returning_buyers, r.active AS active_buyers_90d,
       r.churned AS churned_customers, r.reactivated AS reactivated_customers,
       round(r.retained::numeric / nullif(r90.active, 0), 4) AS retention_rate_90d,
       round(1 - r.retained::numeric / nullif(r90.active, 0), 4) AS churn_rate_90d
  FROM days d
  LEFT JOIN (SELECT (c.created_at AT TIME ZONE 'UTC')::date AS day, count(*) AS new_customers
               FROM ecrm.customer_profile c WHERE c.status <> 'merged' GROUP BY 1) nc ON nc.day = d.day
  LEFT JOIN (SELECT (o.ordered_at AT TIME ZONE 'UTC')::date AS day,
                    count(*) FILTER (WHERE o.status NOT IN ('cancelled', 'returned')) AS orders,
                    sum(o.total) FILTER (WHERE o.status <> 'cancelled') AS revenue
               FROM ecrm.orders o GROUP BY 1) od ON od.day = d.day
  LEFT JOIN (SELECT a.day, count(DISTINCT a.customer_id) AS active_customers
               FROM (SELECT (n.occurred_at AT TIME ZONE 'UTC')::date AS day, n.customer_id FROM ecrm.interaction n
                     UNION ALL
                     SELECT (o.ordered_at AT TIME ZONE 'UTC')::date, o.customer_id FROM ecrm.orders o) a
              GROUP BY a.day) ac ON ac.day = d.day
  JOIN run r ON r.day = d.day
  LEFT JOIN run r90 ON r90.day = d.day - 90;
$$;

CREATE OR REPLACE VIEW ecrm.kpi_daily AS
SELECT * FROM ecrm._kpi_daily();
COMMENT ON COLUMN ecrm.kpi_daily.new_buyers IS 'Customers who ordered for the first time that day';
COMMENT ON COLUMN ecrm.kpi_daily.returning_buyers IS 'Customers who ordered that day and had ordered before';
COMMENT ON COLUMN ecrm.kpi_daily.active_buyers_90d IS 'Customers with an order in the 90 days up to that day';
COMMENT ON COLUMN ecrm.kpi_daily.churned_customers IS 'Customers whose 90 days without an order ran out that day (such days are listed even without other activity)';
COMMENT ON COLUMN ecrm.kpi_daily.reactivated_customers IS 'Customers who ordered that day after more than 90 days without';
COMMENT ON COLUMN ecrm.kpi_daily.retention_rate_90d IS 'Of the customers active 90 days earlier, the share still active (ordered again in the last 90 days)';
COMMENT ON COLUMN ecrm.kpi_daily.churn_rate_90d IS '1 - retention_rate_90d';

------------------------------------------------------------------------------
-- Dump and privileges of analytics
------------------------------------------------------------------------------
SELECT pg_catalog.pg_extension_config_dump('ecrm.clv_model', '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('ecrm.clv_model', 'model_id')::regclass, '');

GRANT SELECT ON ecrm.customer_clv, ecrm.churn_risk, ecrm.cohort_retention, ecrm.campaign_attribution,
                ecrm.funnel_conversion, ecrm.clv_model
   TO ecrm_agent;
GRANT SELECT ON ecrm.cohort_retention, ecrm.campaign_attribution, ecrm.funnel_conversion, ecrm.clv_model TO ecrm_analyst;
GRANT EXECUTE ON FUNCTION
    ecrm.hyp2f1(double precision, double precision, double precision, double precision),
    ecrm.bgnbd_log_likelihood(double precision, double precision, double precision, double precision, double precision, double precision, double precision),
    ecrm.bgnbd_p_alive(double precision, double precision, double precision, double precision, double precision, double precision, double precision),
    ecrm.bgnbd_expected_purchases(double precision, double precision, double precision, double precision, double precision, double precision, double precision, double precision),
    ecrm.gamma_gamma_expected_value(double precision, double precision, double precision, double precision, double precision),
    ecrm.clv_predict(double precision, double precision, double precision, double precision, double precision, double precision, double precision, double precision, integer, double precision, double precision),
    ecrm.bgnbd_fit(double precision, double precision, double precision), ecrm.gamma_gamma_fit(double precision, double precision),
    ecrm._bgnbd_trans(internal, double precision, double precision, double precision), ecrm._bgnbd_final(internal),
    ecrm._gamma_gamma_trans(internal, double precision, double precision), ecrm._gamma_gamma_final(internal),
    ecrm._clv_combine(internal, internal), ecrm._clv_serialize(internal), ecrm._clv_deserialize(bytea, internal),
    ecrm.campaign_attribution_in(interval, text), ecrm._kpi_daily()
   TO ecrm_agent, ecrm_analyst;
GRANT EXECUTE ON FUNCTION ecrm.clv_summary(timestamptz, text), ecrm.customer_clv_at(timestamptz, integer),
    ecrm.churn_risk_at(timestamptz)
   TO ecrm_agent;
