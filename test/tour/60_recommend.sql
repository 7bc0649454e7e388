-- The tour of recommendations: models trained in the database, recommendations with their reasons,
-- "customers who bought this also bought", cold start, a campaign batch and an evaluation.
\pset footer off
SET client_min_messages = warning;

\echo
\echo '== Train an item-to-item model and an implicit-ALS model on the shop''s orders and product views =='
SELECT name, kind, customers, products, ratings, round(build_seconds::numeric, 2) AS seconds
  FROM (SELECT * FROM ecrm.train_item_model() UNION ALL SELECT * FROM ecrm.train_als_model(factors => 32)) m;

\echo
\echo '== Recommendations for the best customer, with the reason for each =='
SELECT customer_id AS best_customer FROM ecrm.customer_360 ORDER BY revenue DESC LIMIT 1 \gset
SELECT r.product_id, p.name, p.category, round(r.score::numeric, 4) AS score, r.reason
  FROM ecrm.recommend(:best_customer, 5) r JOIN ecrm.product p USING (product_id);

\echo
\echo '== The same customer from the ALS model, and only in one category =='
SELECT r.product_id, p.name, r.reason FROM ecrm.recommend(:best_customer, 3, model => 'als') r JOIN ecrm.product p USING (product_id);
SELECT r.product_id, p.name, p.category, r.reason
  FROM ecrm.recommend(:best_customer, 3, category => (SELECT category FROM ecrm.product GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1)) r
  JOIN ecrm.product p USING (product_id);

\echo
\echo '== Customers who bought the best seller also bought =='
SELECT product_id AS best_seller FROM ecrm.rec_popularity
 WHERE model_id = (SELECT model_id FROM ecrm.rec_model WHERE name = 'item_item') ORDER BY buyers DESC LIMIT 1 \gset
SELECT name AS best_seller_name FROM ecrm.product WHERE product_id = :best_seller;
SELECT s.product_id, p.name, round(s.similarity::numeric, 3) AS similarity, s.support AS customers_with_both
  FROM ecrm.similar_products(:best_seller, 5) s JOIN ecrm.product p USING (product_id);

\echo
\echo '== A visitor nobody knows gets what is popular (cold start), not an error =='
SELECT r.product_id, p.name, r.reason FROM ecrm.recommend(-1, 3) r JOIN ecrm.product p USING (product_id);

\echo
\echo '== A campaign audience in one call: the top pick for each of the ten best customers =='
SELECT r.customer_id, p.name, r.reason
  FROM ecrm.recommend_many(ARRAY(SELECT customer_id FROM ecrm.customer_360 ORDER BY revenue DESC LIMIT 10), 1) r
  JOIN ecrm.product p USING (product_id)
 ORDER BY r.customer_id;

\echo
\echo '== How good are they? Trained on all but the last 60 days, tested on what customers bought new since =='
SELECT model, customers, round(hit_rate::numeric, 3) AS "HR@10", round(precision::numeric, 3) AS "P@10",
       round(recall::numeric, 3) AS "R@10", round(ndcg::numeric, 3) AS "NDCG@10", round(coverage::numeric, 3) AS coverage
  FROM ecrm.evaluate_recommendations(now() - interval '60 days', params => '{"als": {"factors": 32}}');
RESET client_min_messages;
