#!/usr/bin/env bash
# Load a UCI "Online Retail" CSV (InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country;
# gzip-compressed or plain) into ecrm through the bulk path (ecrm.stage_order_line + ecrm.load_staged()).
#
#   bash test/load_online_retail.sh FILE [psql connection options]
#   e.g. bash test/load_online_retail.sh ../shared/data/online_retail/online_retail_2010-12_to_2011-08.csv.gz -d shop
#
# Invoices become orders (external_ref = InvoiceNo); "C" invoices are credit notes (status returned, negative
# quantities); CustomerID becomes an external identity in namespace online_retail; InvoiceDate is UK time.
# Left out, and counted: rows without a CustomerID, and non-product codes (postage, fees, discounts, manual
# adjustments: anything that is not five digits and an optional letter suffix). Re-running skips invoices
# already loaded. One transaction: on error nothing is loaded.
set -euo pipefail
FILE=${1:?usage: bash test/load_online_retail.sh FILE [psql options]}
shift
[ -r "$FILE" ] || { echo "cannot read $FILE" >&2; exit 1; }

{
cat <<'SQL'
\set ON_ERROR_STOP on
\timing off
BEGIN;
CREATE TEMP TABLE online_retail_raw (
    invoice_no text, stock_code text, description text, quantity integer, invoice_date timestamp,
    unit_price numeric, customer_id text, country text) ON COMMIT DROP;
COPY online_retail_raw FROM STDIN WITH (FORMAT csv, HEADER true);
SQL
gzip -dcf "$FILE"
printf '\\.\n'
cat <<'SQL'
CREATE TEMP TABLE online_retail_country (name text PRIMARY KEY, iso2 text) ON COMMIT DROP;
INSERT INTO online_retail_country VALUES
    ('United Kingdom', 'GB'), ('France', 'FR'), ('Australia', 'AU'), ('Netherlands', 'NL'), ('Germany', 'DE'),
    ('Norway', 'NO'), ('EIRE', 'IE'), ('Switzerland', 'CH'), ('Spain', 'ES'), ('Poland', 'PL'), ('Portugal', 'PT'),
    ('Italy', 'IT'), ('Belgium', 'BE'), ('Lithuania', 'LT'), ('Japan', 'JP'), ('Iceland', 'IS'),
    ('Channel Islands', 'JE'), ('Denmark', 'DK'), ('Cyprus', 'CY'), ('Sweden', 'SE'), ('Austria', 'AT'),
    ('Israel', 'IL'), ('Finland', 'FI'), ('Greece', 'GR'), ('Singapore', 'SG'), ('Lebanon', 'LB'),
    ('United Arab Emirates', 'AE'), ('Saudi Arabia', 'SA'), ('Czech Republic', 'CZ'), ('Canada', 'CA'),
    ('Brazil', 'BR'), ('USA', 'US'), ('Bahrain', 'BH'), ('Malta', 'MT'), ('RSA', 'ZA'), ('Hong Kong', 'HK'),
    ('Nigeria', 'NG'), ('West Indies', NULL), ('Korea', 'KR'), ('Thailand', 'TH'), ('European Community', NULL),
    ('Unspecified', NULL);

SELECT count(*) AS rows_read,
       count(*) FILTER (WHERE coalesce(btrim(customer_id), '') = '') AS left_out_without_customer,
       count(*) FILTER (WHERE coalesce(btrim(customer_id), '') <> '' AND stock_code !~ '^[0-9]{5}[A-Za-z]{0,2}$') AS left_out_non_product,
       count(*) FILTER (WHERE coalesce(btrim(customer_id), '') <> '' AND stock_code ~ '^[0-9]{5}[A-Za-z]{0,2}$'
                          AND invoice_no LIKE 'C%') AS credit_note_lines
  FROM online_retail_raw;

INSERT INTO ecrm.stage_order_line (namespace, order_ref, customer_ref, ordered_at, sku, product_name, quantity,
                                   unit_price, status, channel, currency, country)
SELECT 'online_retail', r.invoice_no, regexp_replace(btrim(r.customer_id), '\.0$', ''),
       r.invoice_date AT TIME ZONE 'Europe/London', upper(r.stock_code), initcap(btrim(r.description)),
       CASE WHEN r.invoice_no LIKE 'C%' THEN -abs(r.quantity) ELSE r.quantity END, r.unit_price,
       CASE WHEN r.invoice_no LIKE 'C%' THEN 'returned' ELSE 'placed' END, 'web', 'GBP', c.iso2
  FROM online_retail_raw r LEFT JOIN online_retail_country c ON c.name = r.country
 WHERE coalesce(btrim(r.customer_id), '') <> ''
   AND r.stock_code ~ '^[0-9]{5}[A-Za-z]{0,2}$'
   AND r.quantity <> 0;

SELECT * FROM ecrm.load_staged();
COMMIT;
ANALYZE ecrm.customer_profile;
ANALYZE ecrm.identity;
ANALYZE ecrm.orders;
ANALYZE ecrm.order_line;
ANALYZE ecrm.product;
SQL
} | psql -X "$@"
