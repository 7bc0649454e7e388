-- Analytics: the BG/NBD and Gamma-Gamma kernel on known values, fitting, and every analytics view on a small known shop.
\pset null '(null)'
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP EXTENSION ecrm CASCADE;
CREATE EXTENSION ecrm;
RESET client_min_messages;
SET extra_float_digits = 0;

------------------------------------------------------------------------------
-- Kernel
------------------------------------------------------------------------------
-- 2F1(1,1;2;z) = -ln(1-z)/z; 2F1(1/2,1/2;3/2;z^2) = asin(z)/z; 2F1(a,b;b;z) = (1-z)^-a
SELECT round(ecrm.hyp2f1(1, 1, 2, 0.5)::numeric, 12) AS h1, round((-ln(0.5) / 0.5)::numeric, 12) AS expected,
       round(ecrm.hyp2f1(0.5, 0.5, 1.5, 0.25)::numeric, 12) AS h2, round((asin(0.5) / 0.5)::numeric, 12) AS expected,
       round(ecrm.hyp2f1(2.5, 3, 3, 0.9)::numeric, 8) AS h3, round((0.1 ^ -2.5)::numeric, 8) AS expected,
       ecrm.hyp2f1(1, 1, 2, 0) AS at_zero, round(ecrm.hyp2f1(1, 1, 2, -0.5)::numeric, 12) AS negative_z,
       round((ln(1.5) / 0.5)::numeric, 12) AS expected;
SELECT ecrm.hyp2f1(1, 1, 2, 1);
SELECT ecrm.hyp2f1(1, 1, 0, 0.5);
SELECT ecrm.hyp2f1(1, 1, -2, 0.5);
SELECT ecrm.hyp2f1('NaN', 1, 2, 0.5);
SELECT ecrm.hyp2f1(1, 1, 2, 'NaN');
SELECT ecrm.hyp2f1(1, 1, 2, NULL);

-- Fader, Hardie & Lee (2005) on CDNOW (weeks): r 0.243, alpha 4.414, a 0.793, b 2.426.  A customer with
-- 2 repeat purchases, the last at 30.43 weeks, observed for 38.86 weeks, is expected to make 1.226 purchases
-- in the next 39 weeks (the paper, section 5).
SELECT round(ecrm.bgnbd_expected_purchases(0.243, 4.414, 0.793, 2.426, 2, 30.43, 38.86, 39)::numeric, 3) AS paper_1_226;
SELECT round(ecrm.bgnbd_p_alive(0.243, 4.414, 0.793, 2.426, 2, 30.43, 38.86)::numeric, 4) AS p_alive,
       ecrm.bgnbd_p_alive(0.243, 4.414, 0.793, 2.426, 0, 0, 38.86) AS p_alive_one_timer,
       round(ecrm.bgnbd_p_alive(0.243, 4.414, 0.793, 2.426, 2, 2, 38.86)::numeric, 4) AS p_alive_long_silent,
       ecrm.bgnbd_expected_purchases(0.243, 4.414, 0.793, 2.426, 2, 30.43, 38.86, 0) AS no_horizon;
-- more purchases later in the window mean more expected; a long silence means fewer
SELECT ecrm.bgnbd_expected_purchases(0.243, 4.414, 0.793, 2.426, 5, 38, 38.86, 39)
       > ecrm.bgnbd_expected_purchases(0.243, 4.414, 0.793, 2.426, 5, 10, 38.86, 39) AS recency_matters;
-- the removable singularity at a = 1 and huge inputs stay finite
SELECT round(ecrm.bgnbd_expected_purchases(0.243, 4.414, 1, 2.426, 2, 30.43, 38.86, 39)::numeric, 3) AS at_a_1,
       round(ecrm.bgnbd_expected_purchases(0.243, 4.414, 1.0000001, 2.426, 2, 30.43, 38.86, 39)::numeric, 3) AS near_a_1,
       ecrm.bgnbd_expected_purchases(0.8, 60, 0.00001, 700000, 300, 3000, 3000, 3650) BETWEEN 0 AND 1e6 AS huge_ok,
       ecrm.bgnbd_log_likelihood(0.243, 4.414, 0.793, 2.426, 1e9, 1e9, 1e9) < 0 AS huge_ll_ok;
SELECT round(ecrm.bgnbd_log_likelihood(0.243, 4.414, 0.793, 2.426, 2, 30.43, 38.86)::numeric, 6) AS ll;
-- Gamma-Gamma (CDNOW: p 6.25, q 3.74, v 15.44): p (v + x m) / (p x + q - 1)
SELECT round(ecrm.gamma_gamma_expected_value(6.25, 3.74, 15.44, 2, 35)::numeric, 6) AS ev,
       round((6.25 * (15.44 + 2 * 35) / (6.25 * 2 + 3.74 - 1))::numeric, 6) AS expected,
       round(ecrm.gamma_gamma_expected_value(6.25, 3.74, 15.44, 0, 0)::numeric, 6) AS population_mean,
       round((6.25 * 15.44 / (3.74 - 1))::numeric, 6) AS expected,
       ecrm.gamma_gamma_expected_value(6.25, 0.5, 15.44, 0, 0) AS infinite_mean;
-- predicted value: the sum of discounted monthly purchases times the spend (no discount: expected purchases x spend)
SELECT round(ecrm.clv_predict(0.243, 4.414, 0.793, 2.426, 2, 30.43, 38.86, 35, 12, 0, 7)::numeric, 6) AS clv_undiscounted,
       round((35 * ecrm.bgnbd_expected_purchases(0.243, 4.414, 0.793, 2.426, 2, 30.43, 38.86, 360 / 7.0))::numeric, 6) AS expected,
       ecrm.clv_predict(0.243, 4.414, 0.793, 2.426, 2, 30.43, 38.86, 35, 12, 0.01, 7)
       < ecrm.clv_predict(0.243, 4.414, 0.793, 2.426, 2, 30.43, 38.86, 35, 12, 0, 7) AS discount_lowers,
       ecrm.clv_predict(0.243, 4.414, 0.793, 2.426, 2, 30.43, 38.86, 35, 0, 0.01, 7) AS zero_months;
-- bad arguments
SELECT ecrm.bgnbd_p_alive(0, 4.414, 0.793, 2.426, 2, 30, 38);
SELECT ecrm.bgnbd_p_alive(0.243, 'Infinity', 0.793, 2.426, 2, 30, 38);
SELECT ecrm.bgnbd_p_alive(0.243, 4.414, 0.793, 2.426, 2.5, 30, 38);
SELECT ecrm.bgnbd_p_alive(0.243, 4.414, 0.793, 2.426, -1, 0, 38);
SELECT ecrm.bgnbd_p_alive(0.243, 4.414, 0.793, 2.426, 2, 40, 38);
SELECT ecrm.bgnbd_p_alive(0.243, 4.414, 0.793, 2.426, 0, 5, 38);
SELECT ecrm.bgnbd_p_alive(0.243, 4.414, 0.793, 2.426, 2, 30, 'NaN');
SELECT ecrm.bgnbd_expected_purchases(0.243, 4.414, 0.793, 2.426, 2, 30, 38, -1);
SELECT ecrm.gamma_gamma_expected_value(6.25, 3.74, 15.44, 2, -5);
SELECT ecrm.clv_predict(0.243, 4.414, 0.793, 2.426, 2, 30, 38, 35, 5000, 0.01, 7);
SELECT ecrm.clv_predict(0.243, 4.414, 0.793, 2.426, 2, 30, 38, 35, 12, -0.5, 7);
SELECT ecrm.clv_predict(0.243, 4.414, 0.793, 2.426, 2, 30, 38, 35, 12, 0.01, 0);

------------------------------------------------------------------------------
-- Fitting: 3000 customers simulated from known parameters (deterministic uniforms from ecrm._demo_u)
--   purchase rate ~ Gamma(r = 2, alpha = 120 days), dropout after a purchase ~ Beta(a = 1, b = 3),
--   observed for 30 to 330 days; spend per purchase ~ Gamma(p = 4, nu), nu ~ Gamma(q = 3, v = 25)
------------------------------------------------------------------------------
CREATE TABLE clv_rows AS
WITH c AS (
    SELECT i, (-ln(ecrm._demo_u(5, i, 1)) - ln(ecrm._demo_u(5, i, 2))) / 120 AS lam,
           1 - ecrm._demo_u(5, i, 3) ^ (1 / 3.0) AS p,
           (-ln(ecrm._demo_u(5, i, 4)) - ln(ecrm._demo_u(5, i, 5)) - ln(ecrm._demo_u(5, i, 6))) / 25 AS nu,
           30 + floor(ecrm._demo_u(5, i, 7) * 301) AS t
      FROM generate_series(1, 3000) i),
d AS (   -- repeat purchases made before dropping out: geometric on 1, 2, ...
    SELECT c.*, greatest(1, ceil(ln(1 - ecrm._demo_u(5, i, 8)) / ln(1 - least(c.p, 0.999999)))) AS dropout_after FROM c),
arr AS (
    SELECT d.i, d.t, k, sum(-ln(ecrm._demo_u(6, d.i * 1000 + k, 1)) / d.lam) OVER (PARTITION BY d.i ORDER BY k) AS at,
           (-ln(ecrm._demo_u(6, d.i * 1000 + k, 2)) - ln(ecrm._demo_u(6, d.i * 1000 + k, 3))
            - ln(ecrm._demo_u(6, d.i * 1000 + k, 4)) - ln(ecrm._demo_u(6, d.i * 1000 + k, 5))) / d.nu AS spend,
           k <= d.dropout_after AS alive
      FROM d, generate_series(1, 150) k)
SELECT c.i, count(a.k)::double precision AS frequency, coalesce(floor(max(a.at)), 0)::double precision AS recency,
       c.t::double precision AS t, coalesce(avg(a.spend), 0)::double precision AS monetary
  FROM c LEFT JOIN arr a ON a.i = c.i AND a.alive AND a.at <= c.t
 GROUP BY c.i, c.t;
ANALYZE clv_rows;
SELECT count(*) AS customers, sum((frequency > 0)::int) AS repeat_buyers, round(avg(frequency)::numeric, 2) AS mean_frequency FROM clv_rows;
SELECT round(r::numeric, 2) AS r, round(alpha::numeric, 1) AS alpha, round(a::numeric, 2) AS a, round(b::numeric, 2) AS b,
       round(log_likelihood::numeric, 1) AS ll, customers, converged,
       abs(r / 2 - 1) < 0.35 AND abs(alpha / 120 - 1) < 0.35 AND abs(a / 1 - 1) < 0.35 AND abs(b / 3 - 1) < 0.35 AS near_truth
  FROM (SELECT (ecrm.bgnbd_fit(frequency, recency, t)).* FROM clv_rows) f;
-- the fit is a maximum: every parameter moved by 1% either way lowers the log-likelihood
CREATE TEMP TABLE fit AS SELECT (ecrm.bgnbd_fit(frequency, recency, t)).* FROM clv_rows;
SELECT bool_and(m.ll < f.log_likelihood) AS is_maximum, count(*) AS moves,
       abs((SELECT sum(ecrm.bgnbd_log_likelihood(f.r, f.alpha, f.a, f.b, c.frequency, c.recency, c.t)) FROM clv_rows c)
           - f.log_likelihood) < 1e-6 AS ll_matches_sum
  FROM fit f
  CROSS JOIN LATERAL (
      SELECT (SELECT sum(ecrm.bgnbd_log_likelihood(f.r * CASE WHEN k = 1 THEN s ELSE 1 END, f.alpha * CASE WHEN k = 2 THEN s ELSE 1 END,
                                                   f.a * CASE WHEN k = 3 THEN s ELSE 1 END, f.b * CASE WHEN k = 4 THEN s ELSE 1 END,
                                                   c.frequency, c.recency, c.t)) FROM clv_rows c) AS ll
        FROM generate_series(1, 4) k, (VALUES (0.99), (1.01)) v(s)) m
 GROUP BY f.log_likelihood, f.r, f.alpha, f.a, f.b;
SELECT round(p::numeric, 2) AS p, round(q::numeric, 2) AS q, round(v::numeric, 1) AS v, round(log_likelihood::numeric, 1) AS ll,
       customers AS repeat_customers, converged,
       abs(p / 4 - 1) < 0.25 AND abs(q / 3 - 1) < 0.35 AND abs(v / 25 - 1) < 0.35 AS near_truth
  FROM (SELECT (ecrm.gamma_gamma_fit(frequency, monetary)).* FROM clv_rows) f;
-- empty input, NULLs, bad rows
SELECT ecrm.bgnbd_fit(frequency, recency, t) IS NULL AS no_rows FROM clv_rows WHERE false;
SELECT (ecrm.bgnbd_fit(frequency, recency, t)).customers FROM (VALUES (1::float8, 1::float8, 2::float8), (NULL, 1, 2), (0, 0, 5)) v(frequency, recency, t);
SELECT ecrm.gamma_gamma_fit(frequency, monetary) IS NULL AS only_one_time_buyers FROM (VALUES (0::float8, 0::float8)) v(frequency, monetary);
SELECT ecrm.bgnbd_fit(frequency, recency, t) FROM (VALUES (1::float8, 5::float8, 2::float8)) v(frequency, recency, t);
SELECT ecrm.gamma_gamma_fit(frequency, monetary) FROM (VALUES (1::float8, -5::float8)) v(frequency, monetary);
-- parallel: partial aggregates combine to the same fit
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
SET parallel_leader_participation = off;
EXPLAIN (COSTS OFF) SELECT ecrm.bgnbd_fit(frequency, recency, t), ecrm.gamma_gamma_fit(frequency, monetary) FROM clv_rows;
SELECT round(r::numeric, 2) AS r, round(alpha::numeric, 1) AS alpha, round(a::numeric, 2) AS a, round(b::numeric, 2) AS b,
       round(log_likelihood::numeric, 1) AS ll, customers
  FROM (SELECT (ecrm.bgnbd_fit(frequency, recency, t)).* FROM clv_rows) f;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
RESET parallel_leader_participation;
DROP TABLE clv_rows;

------------------------------------------------------------------------------
-- A small known shop
--   Ann:  orders 01-05 (100), 01-20 (50), 02-10 (70), 04-01 (30); clicked Spring on 01-19, opened Winter on 01-16
--   Ben:  one order 01-15 (200)
--   Cy:   02-03 (40 + 10, one day), 03-15 (60, placed through Spring), a cancelled and a returned order
--   Di:   03-01 (80), 06-20 (20): back after 111 days
--   Eli:  no order
------------------------------------------------------------------------------
SELECT ecrm.upsert_customer('{"first_name": "Ann", "created_at": "2025-12-20T10:00:00Z", "lifecycle_stage": "subscriber"}') AS ann,
       ecrm.upsert_customer('{"first_name": "Ben", "created_at": "2026-01-10T10:00:00Z", "lifecycle_stage": "subscriber"}') AS ben,
       ecrm.upsert_customer('{"first_name": "Cy", "created_at": "2026-01-20T10:00:00Z", "lifecycle_stage": "subscriber"}') AS cy,
       ecrm.upsert_customer('{"first_name": "Di", "created_at": "2026-02-20T10:00:00Z", "lifecycle_stage": "subscriber"}') AS di,
       ecrm.upsert_customer('{"first_name": "Eli", "created_at": "2026-02-25T10:00:00Z", "lifecycle_stage": "subscriber"}') AS eli \gset
SELECT ecrm.create_campaign('Spring', 'email', starts_at => '2026-01-01') AS spring,
       ecrm.create_campaign('Winter', 'email', starts_at => '2026-01-01', budget => 100) AS winter \gset
SELECT ecrm.record_campaign_events(:spring, 'sent', ARRAY[:ann, :ben, :cy, :di]::bigint[], '2026-01-10'),
       ecrm.record_campaign_events(:winter, 'sent', ARRAY[:ann, :ben]::bigint[], '2026-01-10'),
       ecrm.record_campaign_events(:winter, 'opened', ARRAY[:ann]::bigint[], '2026-01-16'),
       ecrm.record_campaign_events(:spring, 'opened', ARRAY[:ann]::bigint[], '2026-01-19'),
       ecrm.record_campaign_events(:spring, 'clicked', ARRAY[:ann]::bigint[], '2026-01-19 12:00'),
       ecrm.record_campaign_events(:winter, 'opened', ARRAY[:ben]::bigint[], '2026-01-01');
SELECT ecrm.record_order(:ann, '[{"sku": "A", "name": "A", "quantity": 1, "unit_price": 100}]', '2026-01-05 10:00+00'),
       ecrm.record_order(:ann, '[{"sku": "A", "quantity": 1, "unit_price": 50}]', '2026-01-20 10:00+00'),
       ecrm.record_order(:ann, '[{"sku": "A", "quantity": 1, "unit_price": 70}]', '2026-02-10 10:00+00'),
       ecrm.record_order(:ann, '[{"sku": "A", "quantity": 1, "unit_price": 30}]', '2026-04-01 10:00+00'),
       ecrm.record_order(:ben, '[{"sku": "A", "quantity": 1, "unit_price": 200}]', '2026-01-15 10:00+00'),
       ecrm.record_order(:cy, '[{"sku": "A", "quantity": 1, "unit_price": 40}]', '2026-02-03 09:00+00'),
       ecrm.record_order(:cy, '[{"sku": "A", "quantity": 1, "unit_price": 10}]', '2026-02-03 17:00+00'),
       ecrm.record_order(:cy, '[{"sku": "A", "quantity": 1, "unit_price": 60}]', '2026-03-15 10:00+00', campaign_id => :spring),
       ecrm.record_order(:cy, '[{"sku": "A", "quantity": 1, "unit_price": 999}]', '2026-03-20 10:00+00', status => 'cancelled'),
       ecrm.record_order(:cy, '[{"sku": "A", "quantity": -1, "unit_price": 10}]', '2026-03-21 10:00+00', status => 'returned'),
       ecrm.record_order(:di, '[{"sku": "A", "quantity": 1, "unit_price": 80}]', '2026-03-01 10:00+00'),
       ecrm.record_order(:di, '[{"sku": "A", "quantity": 1, "unit_price": 20}]', '2026-06-20 10:00+00') \gset
UPDATE ecrm.customer_profile SET lifecycle_stage = 'lead' WHERE customer_id = :eli;

-- the summary lifetimes computes, in days and weeks
SELECT customer_id = :ann AS ann, frequency, recency, t, monetary, orders, revenue FROM ecrm.clv_summary('2026-06-30 00:00+00') ORDER BY customer_id;
SELECT customer_id = :ann AS ann, frequency, recency, t, monetary FROM ecrm.clv_summary('2026-06-30 00:00+00', 'week') ORDER BY customer_id;
SELECT count(*) AS before_the_first_order FROM ecrm.clv_summary('2026-01-01 00:00+00');

-- CLV without a model: historical only
SELECT customer_id = :ann AS ann, orders, historical_clv, frequency, avg_repeat_value, p_alive, predicted_clv, model_id
  FROM ecrm.customer_clv_at('2026-06-30 00:00+00') ORDER BY customer_id;
-- churn risk without a model: recency and frequency (Ben, a one-time buyer, gets the shop's median pace)
SELECT customer_id = :ann AS ann, orders, days_since_last_order, round(avg_days_between_orders::numeric, 2) AS gap,
       round(churn_risk::numeric, 4) AS churn_risk, risk_band, method
  FROM ecrm.churn_risk_at('2026-06-30 00:00+00') ORDER BY customer_id;
-- with a model (the CDNOW parameters, weekly): P(alive), expected purchases and value
INSERT INTO ecrm.clv_model (as_of, time_unit, customers, r, alpha, a, b, bgnbd_log_likelihood, bgnbd_converged,
                            repeat_customers, p, q, v, gamma_gamma_log_likelihood, gamma_gamma_converged)
VALUES ('2026-06-30', 'week', 4, 0.243, 4.414, 0.793, 2.426, 0, true, 3, 6.25, 3.74, 15.44, 0, true);
SELECT customer_id = :ann AS ann, frequency, recency, t, round(p_alive::numeric, 4) AS p_alive,
       round(expected_purchases::numeric, 4) AS expected_purchases, round(expected_order_value::numeric, 2) AS expected_order_value,
       round(predicted_clv::numeric, 2) AS predicted_clv
  FROM ecrm.customer_clv_at('2026-06-30 00:00+00') ORDER BY customer_id;
SELECT customer_id = :ann AS ann, round(churn_risk::numeric, 4) AS churn_risk, risk_band, method
  FROM ecrm.churn_risk_at('2026-06-30 00:00+00') ORDER BY customer_id;
-- one customer: the planner reads only that customer's orders
EXPLAIN (COSTS OFF) SELECT * FROM ecrm.customer_clv WHERE customer_id = 42;
-- fitting from the CRM stores a model; too little data is an error
SELECT customers, repeat_customers, time_unit, bgnbd_converged FROM ecrm.fit_clv('2026-06-30 00:00+00');
SELECT ecrm.fit_clv('2020-01-01 00:00+00');
SELECT ecrm.fit_clv('2026-06-30 00:00+00', 'month');
SELECT ecrm.fit_clv('2026-06-30 00:00+00', 'day', -1);
SELECT ecrm.fit_clv('infinity');

-- cohort retention by month of the first order
SELECT cohort_month, months_since_first_order AS m, cohort_customers, active_customers, retention_rate, revenue,
       cumulative_revenue_per_customer
  FROM ecrm.cohort_retention ORDER BY cohort_month, m;

-- campaign attribution: Ann's 01-20 order follows her Spring click (and a Winter open); Cy's 03-15 order was placed through Spring
SELECT name, recipients, attributed_orders, attributed_customers, attributed_revenue, revenue_per_recipient,
       order_conversion_rate, return_on_budget, window_length, attribution_model
  FROM ecrm.campaign_attribution;
SELECT name, attributed_orders, attributed_revenue FROM ecrm.campaign_attribution_in('7 days', 'first_touch');
SELECT name, attributed_orders, attributed_revenue FROM ecrm.campaign_attribution_in('7 days', 'linear');
SELECT name, attributed_orders, attributed_revenue FROM ecrm.campaign_attribution_in('1 hour', 'last_touch');
SELECT name, attributed_orders FROM ecrm.campaign_attribution_in('30 days');
SELECT * FROM ecrm.campaign_attribution_in('0', 'last_touch');
SELECT * FROM ecrm.campaign_attribution_in('7 days', 'shapley');
SELECT * FROM ecrm.campaign_attribution_in(NULL);

-- funnel conversion by lifecycle stage (record_order moved buyers to customer; Eli is a lead)
SELECT * FROM ecrm.funnel_conversion;

-- daily KPIs with retention and churn
SELECT day, new_customers, orders, revenue, new_buyers, returning_buyers, active_buyers_90d, churned_customers,
       reactivated_customers, retention_rate_90d, churn_rate_90d
  FROM ecrm.kpi_daily
 WHERE orders > 0 OR churned_customers > 0 OR new_customers > 0
 ORDER BY day;
