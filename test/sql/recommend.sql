-- Recommendations: the C kernels on hand-checkable matrices, then models, serving, cold start, filters,
-- explanations and evaluation on a small shop with fixed dates; bad input everywhere.
SET client_min_messages = warning;
DROP EXTENSION ecrm CASCADE;
CREATE EXTENSION ecrm;
-- builds report progress in NOTICEs with timings: kept out of this file (test/shell/recommend_progress.sh checks them)
\set SHOW_CONTEXT never
\pset null '(null)'
SET TimeZone = 'UTC';
SET extra_float_digits = 0;

------------------------------------------------------------------------------
-- item_knn on four customers: c1 {A=1, B=2}, c2 {A, B, C=3}, c3 {C}, c4 {A}
------------------------------------------------------------------------------
CREATE TEMP TABLE r3 (customer bigint, product bigint, weight double precision);
INSERT INTO r3 VALUES (1, 1, 1), (1, 2, 1), (2, 1, 1), (2, 2, 1), (2, 3, 1), (3, 3, 1), (4, 1, 1);
-- cosine (popularity_damping 0.5, no activity damping): |A|^2 = 3, |B|^2 = |C|^2 = 2;
-- cos(A,B) = 2/sqrt(6) = 0.8165, cos(A,C) = 1/sqrt(6) = 0.4082, cos(B,C) = 1/2
SELECT product_id, neighbor_id, round(similarity::numeric, 4) AS similarity, support, rank
  FROM ecrm.item_knn('SELECT * FROM r3', 5, 0, 0.5, 0, 1) ORDER BY 1, 5;
-- popularity_damping 0: the conditional probability P(j | i): P(B|A) = 2/3, P(C|A) = 1/3, P(A|B) = 1, P(A|C) = 1/2
SELECT product_id, neighbor_id, round(similarity::numeric, 4) AS similarity
  FROM ecrm.item_knn('SELECT * FROM r3', 5, 0, 0, 0, 1) ORDER BY 1, 2;
-- activity damping 1: c1 counts 1/2, c2 1/3, c3 and c4 1; |A|^2 = 11/6, |B|^2 = 5/6, |C|^2 = 4/3;
-- cos(A,B) = (5/6) / sqrt(11/6 * 5/6) = 0.6742, cos(A,C) = (1/3) / sqrt(11/6 * 4/3) = 0.2132
SELECT product_id, neighbor_id, round(similarity::numeric, 4) AS similarity
  FROM ecrm.item_knn('SELECT * FROM r3', 5, 0, 0.5, 1, 1) WHERE product_id = 1 ORDER BY 2;
-- shrinkage 1 takes 2/3 of A-B (two customers have both) and halves A-C (one): 0.5443, 0.2041
SELECT product_id, neighbor_id, round(similarity::numeric, 4) AS similarity
  FROM ecrm.item_knn('SELECT * FROM r3', 5, 1, 0.5, 0, 1) WHERE product_id = 1 ORDER BY 2;
-- min_support 2 keeps only A-B; k 1 keeps the best neighbour (C: B at 0.5 beats A at 0.4082)
SELECT product_id, neighbor_id FROM ecrm.item_knn('SELECT * FROM r3', 5, 0, 0.5, 0, 2) ORDER BY 1, 2;
SELECT product_id, neighbor_id, support FROM ecrm.item_knn('SELECT * FROM r3', 1, 0, 0.5, 0, 1) ORDER BY 1, 2;
-- ties go to the lower product id
SELECT product_id, neighbor_id FROM ecrm.item_knn('SELECT * FROM (VALUES (1, 1, 1), (1, 2, 1), (1, 3, 1)) v', 1) ORDER BY 1;
-- duplicates are summed, zero weights dropped, row order does not matter, int and numeric columns accepted:
-- the same as the cosine above
SELECT product_id, neighbor_id, round(similarity::numeric, 4) AS similarity
  FROM ecrm.item_knn($$SELECT * FROM (VALUES (2::int, 3::int, 0.5::numeric), (3, 3, 1), (1, 2, 1), (2, 1, 1), (4, 1, 1),
                                              (2, 3, 0.5), (1, 1, 1), (2, 2, 1), (5, 1, 0)) v ORDER BY 3 DESC$$, 5, 0, 0.5, 0, 1)
 ORDER BY 1, 2;
SELECT customers, products, ratings, input_rows, peak_bytes > 0 AS measured FROM ecrm._rec_last_build();
-- extreme ids; a product nobody else has gets no neighbours
SELECT * FROM ecrm.item_knn($$SELECT * FROM (VALUES (9223372036854775807, -9223372036854775807 - 1, 1.0::float8),
                                                   (9223372036854775807, 0, 1), (-1, 0, 1), (-1, 5, 1)) v$$) ORDER BY 1, 2;

-- bad input: each error says what is wrong
SELECT * FROM ecrm.item_knn(NULL);
SELECT * FROM ecrm.item_knn('');
SELECT * FROM ecrm.item_knn('SELECT 1, 2');
SELECT * FROM ecrm.item_knn('SELECT ''a''::text, 1, 1');
SELECT * FROM ecrm.item_knn('SELECT 1, 1, ''x''::text');
SELECT * FROM ecrm.item_knn('SELECT NULL::bigint, 1, 1');
SELECT * FROM ecrm.item_knn('SELECT 1, 1, ''NaN''::float8');
SELECT * FROM ecrm.item_knn('SELECT 1, 1, ''Infinity''::float8');
SELECT * FROM ecrm.item_knn('SELECT 1, 1, -1');
SELECT * FROM ecrm.item_knn('SELECT 1, 1, 1e10');
SELECT * FROM ecrm.item_knn('SELECT 1, 1, 0 WHERE false');
SELECT * FROM ecrm.item_knn('SELECT 1, 1, 0');
SELECT * FROM ecrm.item_knn('SELEKT 1');
SELECT * FROM ecrm.item_knn('INSERT INTO r3 VALUES (1, 1, 1)');
SELECT * FROM ecrm.item_knn('SELECT * FROM r3', 0);
SELECT * FROM ecrm.item_knn('SELECT * FROM r3', 1001);
SELECT * FROM ecrm.item_knn('SELECT * FROM r3', 5, -1);
SELECT * FROM ecrm.item_knn('SELECT * FROM r3', 5, 'NaN');
SELECT * FROM ecrm.item_knn('SELECT * FROM r3', 5, 0, 1.5);
SELECT * FROM ecrm.item_knn('SELECT * FROM r3', 5, 0, 0.5, 3);
SELECT * FROM ecrm.item_knn('SELECT * FROM r3', 5, 0, 0.5, 0, 0);
SELECT * FROM ecrm.item_knn('SELECT * FROM r3', NULL);
SET maintenance_work_mem = '1MB';
SELECT count(*) FROM ecrm.item_knn('SELECT c, p, 1 FROM generate_series(1, 200) c, generate_series(1, 300) p');
RESET maintenance_work_mem;

------------------------------------------------------------------------------
-- als_train: two groups of customers with disjoint products
------------------------------------------------------------------------------
CREATE TEMP TABLE r2 AS
SELECT c AS customer, p AS product, 1.0::float8 AS weight
  FROM generate_series(1, 6) c, generate_series(1, 4) p
 WHERE (c <= 3) = (p <= 2) AND (c, p) NOT IN ((1, 2), (4, 4));
-- deterministic for a seed; exact (cholesky) and conjugate-gradient solves agree on the structure
CREATE TEMP TABLE f1 AS SELECT * FROM ecrm.als_train('SELECT * FROM r2', 2, 20, 0.1, 10, 7, 'cholesky');
CREATE TEMP TABLE f2 AS SELECT * FROM ecrm.als_train('SELECT * FROM r2', 2, 20, 0.1, 10, 7, 'cholesky');
SELECT count(*) AS rows, bool_and(f1.factors = f2.factors) AS same_again
  FROM f1 JOIN f2 USING (side, id);
SELECT side, count(*), min(cardinality(factors)) AS dims FROM f1 GROUP BY 1 ORDER BY 1;
-- customer 1 (bought 1) prefers product 2 over 3 and 4; customer 4 (bought 3) prefers 4 over 1 and 2
SELECT c.id AS customer, p.id AS product,
       round((SELECT sum(a * b) FROM unnest(c.factors, p.factors) x(a, b))::numeric, 1) AS score
  FROM f1 c, f1 p WHERE c.side = 'customer' AND p.side = 'product' AND c.id IN (1, 4) ORDER BY 1, 3 DESC, 2;
SELECT count(*) FROM ecrm.als_train('SELECT * FROM r2', 3, 5, 0.1, 10, 1, 'cg', 2);
SELECT * FROM ecrm.als_train('SELECT * FROM r2', 0);
SELECT * FROM ecrm.als_train('SELECT * FROM r2', 1025);
SELECT * FROM ecrm.als_train('SELECT * FROM r2', 2, 0);
SELECT * FROM ecrm.als_train('SELECT * FROM r2', 2, 2, 0);
SELECT * FROM ecrm.als_train('SELECT * FROM r2', 2, 2, 'NaN');
SELECT * FROM ecrm.als_train('SELECT * FROM r2', 2, 2, 0.1, -1);
SELECT * FROM ecrm.als_train('SELECT * FROM r2', 2, 2, 0.1, 1, 1, 'sgd');
SELECT * FROM ecrm.als_train('SELECT * FROM r2', 2, 2, 0.1, 1, 1, 'cg', 0);
SELECT * FROM ecrm.als_train('SELECT * FROM r2', 2, 2, 0.1, 1, 1, NULL);
SELECT * FROM ecrm.als_train('SELECT 1, 1, -0.5');

------------------------------------------------------------------------------
-- A small shop: campers and tea drinkers
------------------------------------------------------------------------------
INSERT INTO ecrm.product (product_id, sku, name, category, available) VALUES
    (1, 'TENT', 'Tent', 'outdoor', true), (2, 'BAG', 'Sleeping bag', 'outdoor', true),
    (3, 'STOVE', 'Camping stove', 'outdoor', true), (4, 'TORCH', 'Head torch', 'outdoor', false),
    (5, 'POT', 'Teapot', 'kitchen', true), (6, 'CUPS', 'Tea cups', 'kitchen', true),
    (7, 'KETTLE', 'Kettle', 'kitchen', true), (9, 'BOWL', 'Müsli-Schüssel «Ø»', 'kitchen', true),
    (10, 'GIFT', 'Gift card', NULL, true);
INSERT INTO ecrm.customer_profile (customer_id, first_name) SELECT g, 'C' || g FROM generate_series(1, 16) g;
UPDATE ecrm.customer_profile SET status = 'merged', merged_into = 1 WHERE customer_id = 14;
-- one order per (customer, product) in the list, on the given day of 2024; the order id is customer * 100 + product
CREATE TEMP TABLE o (customer bigint, product bigint, day date, status text DEFAULT 'delivered', qty int DEFAULT 1);
INSERT INTO o (customer, product, day) VALUES
    (1, 1, '2024-01-05'), (1, 2, '2024-01-05'),
    (2, 1, '2024-01-10'), (2, 2, '2024-01-10'), (2, 3, '2024-02-01'),
    (3, 1, '2024-02-03'), (3, 3, '2024-02-03'), (3, 4, '2024-02-20'),
    (4, 2, '2024-03-01'), (4, 3, '2024-03-01'),
    (5, 1, '2024-03-05'), (5, 2, '2024-03-05'), (5, 3, '2024-03-06'), (5, 4, '2024-03-06'),
    (6, 5, '2024-01-15'), (6, 6, '2024-01-15'),
    (7, 5, '2024-02-15'), (7, 6, '2024-02-15'), (7, 7, '2024-02-16'),
    (8, 6, '2024-03-10'), (8, 7, '2024-03-10'), (8, 9, '2024-03-11'),
    (9, 5, '2024-03-20'), (9, 7, '2024-03-20'),
    (10, 1, '2024-03-25'), (10, 5, '2024-03-25'),
    (13, 1, '2024-03-01'), (15, 5, '2024-03-01'),
    -- after April: new purchases to evaluate on
    (1, 3, '2024-04-10'), (6, 7, '2024-04-12'), (10, 2, '2024-04-20'), (9, 6, '2024-05-02'), (11, 6, '2024-05-03');
INSERT INTO o (customer, product, day, status, qty) VALUES
    (4, 3, '2024-03-15', 'returned', -1),      -- customer 4 sent the stove back
    (9, 1, '2024-03-21', 'cancelled', 1);      -- and customer 9 never got a tent
INSERT INTO ecrm.orders (order_id, customer_id, status, ordered_at)
SELECT customer * 1000 + product * 10 + (status <> 'delivered')::int, customer, status, day + time '12:00' FROM o;
INSERT INTO ecrm.order_line (order_id, line_no, customer_id, product_id, quantity, unit_price)
SELECT customer * 1000 + product * 10 + (status <> 'delivered')::int, 1, customer, product, qty, 10 FROM o;
-- customer 11 looked at the teapot (and bought cups in May), customer 16 only looked at the kettle in April;
-- customer 12 did nothing at all
INSERT INTO ecrm.interaction (customer_id, channel, kind, occurred_at, product_id) VALUES
    (11, 'web', 'product_view', '2024-03-30 10:00', 5), (11, 'web', 'page_view', '2024-03-30 10:01', NULL),
    (16, 'web', 'product_view', '2024-04-05 09:00', 7);
-- customer 15 was erased after buying (set directly: erased customers take no new rows)
UPDATE ecrm.customer_profile SET status = 'erased' WHERE customer_id = 15;
-- customer 13 objected to profiling
INSERT INTO ecrm.consent_event (customer_id, purpose, granted, recorded_at) VALUES
    (13, 'profiling', true, '2024-01-01'), (13, 'profiling', false, '2024-03-02');

-- the ratings (before April): returns cancel their purchase, cancelled orders never count, views weigh 0.1,
-- opted-out and erased customers are left out; half-life 30 days from 2024-04-01
SELECT customer_id, product_id, round(weight::numeric, 4) AS weight
  FROM ecrm.rec_ratings('2024-04-01', '30 days') WHERE customer_id IN (3, 4, 9, 11, 13, 15) ORDER BY 1, 2;
SELECT customer_id, product_id, weight FROM ecrm.rec_ratings('2024-04-01', NULL) WHERE customer_id = 4 ORDER BY 1, 2;
SELECT * FROM ecrm.rec_ratings('2024-04-01', '0 days');
SELECT * FROM ecrm.rec_ratings('infinity');
SELECT * FROM ecrm.rec_ratings(NULL);

-- models
SELECT name, kind, customers, products, ratings, trained_until, params
  FROM ecrm.train_item_model(trained_until => '2024-04-01', half_life => '60 days');
SELECT name, kind, customers, products, ratings FROM ecrm.train_als_model(trained_until => '2024-04-01', factors => 4,
                                                                          iterations => 10, solver => 'cholesky');
SELECT name, kind, products, params FROM ecrm.train_popularity_model('popular', '2024-04-01', NULL);
-- the neighbours, names included (Unicode too)
SELECT model, product_id, product_name, rank, neighbor_id, neighbor_name, round(similarity::numeric, 4) AS similarity, support
  FROM ecrm.product_neighbors WHERE product_id IN (1, 5, 9) ORDER BY 1, 2, 4;
SELECT product_id, buyers, recent_buyers, round(share::numeric, 4) AS share, rank
  FROM ecrm.rec_popularity WHERE model_id = (SELECT model_id FROM ecrm.rec_model WHERE name = 'item_item') ORDER BY rank;

-- recommendations: what they bought is left out, the unavailable head torch too, each with its reason
SELECT c, r.product_id, round(r.score::numeric, 4) AS score, r.reason
  FROM unnest(ARRAY[1, 4, 6, 10]) c, ecrm.recommend(c, 3) r;
-- a view is enough to recommend (customer 16, after training); customer 12, an unknown id, the objector (13)
-- and the erased customer (15) get what is popular; the merged id 14 gets the recommendations of customer 1
SELECT c, r.product_id, round(r.score::numeric, 4) AS score, r.reason
  FROM unnest(ARRAY[16, 11, 12, 999999, 13, 15, 14]::bigint[]) c, ecrm.recommend(c, 2) r;
-- include_bought, available_only, category, k
SELECT product_id, reason FROM ecrm.recommend(1, 10, include_bought => true);
SELECT product_id, reason FROM ecrm.recommend(1, 10, available_only => false);
SELECT product_id, reason FROM ecrm.recommend(7, 5, category => 'kitchen');
SELECT product_id, reason FROM ecrm.recommend(1, 1);
SELECT product_id, reason FROM ecrm.recommend(8, 2);
-- ALS explains with the history product that weighs most in the score (Hu, Koren & Volinsky, section 5)
SELECT product_id, reason FROM ecrm.recommend(1, 3, model => 'als');
SELECT product_id, reason FROM ecrm.recommend(6, 2, model => 'als');
SELECT product_id, reason FROM ecrm.recommend(12, 2, model => 'als');
-- the popularity model only ranks by buyers (all time here)
SELECT product_id, round(score::numeric, 4) AS score, reason FROM ecrm.recommend(1, 3, model => 'popular');
-- a purchase after training counts at once: customer 12 buys a teapot
INSERT INTO ecrm.orders (order_id, customer_id, status, ordered_at) VALUES (99001, 12, 'paid', '2024-04-02');
INSERT INTO ecrm.order_line (order_id, line_no, customer_id, product_id, quantity, unit_price) VALUES (99001, 1, 12, 5, 1, 30);
SELECT product_id, reason FROM ecrm.recommend(12, 2);
DELETE FROM ecrm.orders WHERE order_id = 99001;

-- many customers at once, in customer and rank order, duplicates asked once
SELECT customer_id, rank, product_id, reason FROM ecrm.recommend_many(ARRAY[6, 12, 6, 1], 2);
SELECT count(*) FROM ecrm.recommend_many('{}');
-- segments come from the segments capability; without it, a clear error
SELECT * FROM ecrm.recommend_segment('vip');
SELECT * FROM ecrm.recommend(12, segment => 'vip');

-- similar products
SELECT product_id, round(similarity::numeric, 4) AS similarity, support FROM ecrm.similar_products(1, 3);
SELECT product_id, round(similarity::numeric, 4) AS similarity, support FROM ecrm.similar_products(1, 3, available_only => false);
SELECT product_id FROM ecrm.similar_products(5, 2, 'als');
SELECT * FROM ecrm.similar_products(10);
SELECT * FROM ecrm.similar_products(12345);
SELECT * FROM ecrm.similar_products(NULL);
SELECT * FROM ecrm.similar_products(1, 0);
SELECT * FROM ecrm.similar_products(1, 3, 'popular');

-- bad input to serving
SELECT * FROM ecrm.recommend(NULL);
SELECT * FROM ecrm.recommend(1, 0);
SELECT * FROM ecrm.recommend(1, -3);
SELECT * FROM ecrm.recommend(1, 1001);
SELECT * FROM ecrm.recommend(1, NULL);
SELECT * FROM ecrm.recommend(1, model => 'nope');
SELECT * FROM ecrm.recommend(1, model => NULL);
SELECT * FROM ecrm.recommend(1, category => 'Kitchen');
SELECT * FROM ecrm.recommend_many(NULL);
SELECT * FROM ecrm.recommend_many(ARRAY[1, NULL]);

-- bad input to training: nothing is written when it fails
SELECT * FROM ecrm.train_item_model('Bad Name');
SELECT * FROM ecrm.train_item_model(repeat('x', 64));
SELECT * FROM ecrm.train_item_model('later', '2999-01-01');
SELECT * FROM ecrm.train_item_model('x', '2024-04-01', neighbors => 0);
SELECT * FROM ecrm.train_item_model('x', '2024-04-01', locality => 0);
SELECT * FROM ecrm.train_item_model('x', '2024-04-01', trend => 'NaN');
SELECT * FROM ecrm.train_item_model('x', '2024-04-01', half_life => '-1 day');
SELECT * FROM ecrm.train_item_model('x', '2024-04-01', recent => NULL);
SELECT * FROM ecrm.train_item_model('x', '2024-04-01', popularity_damping => NULL);
SELECT * FROM ecrm.train_item_model('early', '2023-01-01');
SELECT * FROM ecrm.train_als_model('x', '2024-04-01', factors => 0);
SELECT * FROM ecrm.train_als_model('x', '2024-04-01', solver => 'magic');
SELECT count(*) AS models FROM ecrm.rec_model;

-- retrain with the same parameters; drop
SELECT name, kind, params = (SELECT params FROM ecrm.rec_model WHERE name = 'item_item') AS same_params,
       model_id > (SELECT model_id FROM ecrm.rec_model WHERE name = 'item_item') AS new_id
  FROM ecrm.retrain_model('item_item');
SELECT * FROM ecrm.retrain_model('nope');
SELECT ecrm.drop_model('popular'), ecrm.drop_model('popular');
SELECT count(*) FROM ecrm.rec_popularity p WHERE NOT EXISTS (SELECT FROM ecrm.rec_model m WHERE m.model_id = p.model_id);

-- signal weights are data
SELECT * FROM ecrm.set_signal_weight('wishlist_add', 0.5);
SELECT * FROM ecrm.set_signal_weight('review', 0.8, 'because you reviewed %s');
SELECT * FROM ecrm.set_signal_weight('review', NULL);
SELECT * FROM ecrm.set_signal_weight('cart_add', -1);
SELECT * FROM ecrm.set_signal_weight('cart_add', 'NaN');
SELECT * FROM ecrm.set_signal_weight('cart_add', 'Infinity');
SELECT * FROM ecrm.set_signal_weight('Cart Add', 1);
SELECT * FROM ecrm.set_signal_weight('cart_add', 1, 'no placeholder');
INSERT INTO ecrm.rec_signal (kind, weight, reason) VALUES ('x', 'NaN', 'because %s');

-- evaluation on a temporal split: trained before April, tested on what was new to each customer after it
-- (customers 1, 6, 9 and 10 with history; customer 11's cup counts too: the view is history)
SELECT model, customers, round(hit_rate::numeric, 4) AS hit_rate, round(precision::numeric, 4) AS precision,
       round(recall::numeric, 4) AS recall, round(ndcg::numeric, 4) AS ndcg, round(coverage::numeric, 4) AS coverage
  FROM ecrm.evaluate_recommendations('2024-04-01', 2,
                                     params => '{"als": {"factors": 4, "solver": "cholesky"}, "popular_recent": {"recent": "60 days"}}')
 ORDER BY model;
SELECT model, customers FROM ecrm.evaluate_recommendations('2024-04-01', 2, '2024-05-01', ARRAY['item_item']);
SELECT count(*) AS leftover_models FROM ecrm.rec_model WHERE name LIKE '\_eval%';
SELECT * FROM ecrm.evaluate_recommendations('2024-04-01', models => ARRAY['svd']);
SELECT * FROM ecrm.evaluate_recommendations('2024-04-01', models => '{}');
SELECT * FROM ecrm.evaluate_recommendations('2024-04-01', params => '{"item_item": {"neighbours": 5}}');
SELECT * FROM ecrm.evaluate_recommendations('2024-04-01', params => '{"item_item": 5}');
SELECT * FROM ecrm.evaluate_recommendations('2024-04-01', 0);
SELECT * FROM ecrm.evaluate_recommendations(NULL);
SELECT * FROM ecrm.evaluate_recommendations('2024-04-01', test_until => '2024-03-01');
SELECT * FROM ecrm.evaluate_recommendations('2030-01-01');
SELECT * FROM ecrm.evaluate_recommendations('2020-01-01');

-- the registry and pg_dump know the model tables
SELECT relid, on_merge, on_erase FROM ecrm.customer_table WHERE relid::text LIKE 'ecrm.rec%';
SELECT c.relname FROM pg_extension e, unnest(e.extconfig) t(oid) JOIN pg_class c ON c.oid = t.oid
 WHERE e.extname = 'ecrm' AND c.relname LIKE 'rec%' ORDER BY 1;
