-- Load the UCI Online Retail file into the ecrm store through the bulk loader.
-- Usage: psql -v csv=/path/to/online_retail_2010-12_to_2011-08.csv.gz -f recommend_load_online_retail.sql
-- Cleaning (as the benchmark states it): cancellations (invoice 'C...') dropped, non-product stock codes dropped
-- (a product code is 5 digits plus optional letters), rows without a customer dropped.
\set ON_ERROR_STOP 1

CREATE TEMP TABLE raw_retail (invoice text, stock_code text, description text, quantity integer,
                              invoice_date timestamp, unit_price numeric, customer_id text, country text);
\set copy_cmd '\\copy raw_retail FROM PROGRAM ''gzip -dc ' :csv ''' WITH (FORMAT csv, HEADER true)'
:copy_cmd
SELECT count(*) AS raw_rows FROM raw_retail;
INSERT INTO ecrm.stage_order_line (namespace, order_ref, customer_ref, ordered_at, sku, product_name, quantity,
                                   unit_price, status, currency)
SELECT 'online_retail', r.invoice, r.customer_id, r.invoice_date AT TIME ZONE 'Europe/London', upper(r.stock_code),
       coalesce(nullif(btrim(r.description), ''), r.stock_code), r.quantity, r.unit_price, 'delivered', 'GBP'
  FROM raw_retail r
 WHERE r.invoice NOT LIKE 'C%' AND r.stock_code ~ '^[0-9]{5}[A-Za-z]*$' AND coalesce(r.customer_id, '') <> ''
   AND r.quantity > 0;
SELECT * FROM ecrm.load_staged();
-- vacuumed and analysed, as a database in service would be (sets hint bits and the visibility map)
VACUUM ANALYZE;
