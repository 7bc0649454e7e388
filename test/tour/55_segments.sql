-- The tour of segments: rules, real-time membership, overlaps, RFM and clusters over the demo shop.
\pset footer off
\echo
\echo '== Segments defined as data, built at once =='
SELECT ecrm.define_segment('garden_buyers_90d', '{"all": [{"bought": {"category": "garden", "within": "90 days"}},
                                                          {"campaign_event": {"kind": "opened", "within": "90 days"}}]}',
                           'Bought garden items in the last 90 days and opened an email') AS segment_id;
SELECT ecrm.define_segment('mailable', '{"consent": "marketing_email"}') AS segment_id;
SELECT ecrm.define_segment('lapsed', '{"no_order_for": "180 days"}') AS segment_id;
SELECT ecrm.define_segment('engaged_openers', '{"campaign_event": {"kind": "opened", "at_least": 3}}') AS segment_id;
SELECT ecrm.define_segment('win_back', '{"all": [{"segment": "lapsed"}, {"segment": "mailable"}, {"not": {"segment": "engaged_openers"}}]}',
                           'Lapsed buyers we may email who rarely open') AS segment_id;
SELECT ecrm.define_segment('champions', '{"rfm_class": ["champions", "loyal"]}') AS segment_id;
SELECT name, members, refresh_ms FROM ecrm.segments ORDER BY segment_id;

\echo
\echo '== The overlap matrix =='
SELECT segment_a, segment_b, overlap, jaccard FROM ecrm.segment_overlap
 WHERE segment_a < segment_b AND overlap > 0 ORDER BY overlap DESC LIMIT 8;

\echo
\echo '== Real time: a lapsed customer orders again and leaves "lapsed" at once =='
SELECT ecrm.segment_members('lapsed') AS customer_id LIMIT 1 \gset
SELECT ecrm.in_segment(:customer_id, 'lapsed') AS lapsed_before;
SELECT ecrm.record_order(:customer_id, '[{"sku": "GAR-0011", "quantity": 1}]') > 0 AS ordered;
SELECT ecrm.in_segment(:customer_id, 'lapsed') AS lapsed_after, ecrm.in_segment(:customer_id, 'garden_buyers_90d') AS garden_buyer;
SELECT s.name AS segment, e.kind, e.source FROM ecrm.segment_event e JOIN ecrm.segment s USING (segment_id)
 WHERE e.customer_id = :customer_id ORDER BY e.event_id;
SELECT customer_id, full_name, segments FROM ecrm.customer_360 WHERE customer_id = :customer_id;

\echo
\echo '== RFM classes =='
SELECT rfm_class, customers, share_pct, avg_recency_days, avg_frequency, avg_monetary FROM ecrm.rfm_summary ORDER BY customers DESC;

\echo
\echo '== k-means clusters nobody defined =='
SELECT cluster, segment, members, profile ->> 'orders' AS orders, profile ->> 'revenue' AS revenue,
       profile ->> 'recency_days' AS recency_days, profile ->> 'interactions_90d' AS interactions_90d
  FROM ecrm.cluster_customers(4);
