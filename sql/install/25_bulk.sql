
------------------------------------------------------------------------------
-- Bulk loading: COPY rows into the stage_* tables, then call
-- ecrm.load_staged(), which validates every row and loads them set-based in
-- one transaction (never row by row).
------------------------------------------------------------------------------
CREATE UNLOGGED TABLE ecrm.stage_customer (
    row_no          bigint GENERATED ALWAYS AS IDENTITY,
    namespace       text NOT NULL DEFAULT 'import',
    external_id     text,
    first_name      text,
    last_name       text,
    email           text,
    phone           text,
    birth_date      date,
    company         text,
    job_title       text,
    street          text,
    city            text,
    postal_code     text,
    region          text,
    country         text,
    language        text,
    lifecycle_stage text,
    owner           text,
    source          text,
    attributes      jsonb,
    created_at      timestamptz
);
COMMENT ON TABLE ecrm.stage_customer IS
    'Staging for bulk customer loads: COPY rows in, then call ecrm.load_staged(); a customer is keyed by (namespace, external_id)';

CREATE UNLOGGED TABLE ecrm.stage_order_line (
    row_no       bigint GENERATED ALWAYS AS IDENTITY,
    namespace    text NOT NULL DEFAULT 'import',
    order_ref    text,
    customer_ref text,
    ordered_at   timestamptz,
    sku          text,
    product_name text,
    category     text,
    quantity     integer,
    unit_price   numeric,
    status       text,
    channel      text,
    currency     text,
    country      text
);
COMMENT ON TABLE ecrm.stage_order_line IS
    'Staging for bulk order loads, one row per order line (a shop''s line-level export): COPY rows in, then call ecrm.load_staged(). customer_ref is the customer''s external id in namespace';

CREATE UNLOGGED TABLE ecrm.stage_interaction (
    row_no       bigint GENERATED ALWAYS AS IDENTITY,
    namespace    text NOT NULL DEFAULT 'import',
    customer_ref text,
    channel      text,
    kind         text,
    occurred_at  timestamptz,
    sku          text,
    campaign     text,
    payload      jsonb
);
COMMENT ON TABLE ecrm.stage_interaction IS
    'Staging for bulk interaction loads: COPY rows in, then call ecrm.load_staged(); sku and campaign (a name) are optional';

CREATE TABLE ecrm.stage_reject (
    stage       text NOT NULL,
    row_no      bigint NOT NULL,
    reason      text NOT NULL,
    row_data    jsonb NOT NULL,
    rejected_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE ecrm.stage_reject IS 'Rows that ecrm.load_staged(skip_invalid => true) left out, with why';

CREATE FUNCTION ecrm.load_staged(skip_invalid boolean DEFAULT false)
    RETURNS TABLE (stage text, loaded bigint, rejected bigint, skipped bigint)
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    first_bad record;
    nbad      bigint;
    n_cust    bigint;
    n_new     bigint;
    n_lines   bigint;
    n_orders  bigint;
    n_skip    bigint;
    n_inter   bigint;
BEGIN
    -- One loader at a time; the staging tables are shared.
    LOCK TABLE ecrm.stage_customer, ecrm.stage_order_line, ecrm.stage_interaction IN ACCESS EXCLUSIVE MODE;
    -- freshly COPYed rows have no statistics; without them the joins below are planned for a few hundred rows
    ANALYZE ecrm.stage_customer;
    ANALYZE ecrm.stage_order_line;
    ANALYZE ecrm.stage_interaction;

    -- a second call in one transaction finds the first call's work tables
    IF to_regclass('pg_temp._ecrm_problem') IS NOT NULL THEN
        DROP TABLE pg_temp._ecrm_problem, pg_temp._ecrm_ref, pg_temp._ecrm_order;
    END IF;
    CREATE TEMP TABLE _ecrm_problem ON COMMIT DROP AS
    SELECT 'stage_customer'::text AS stage, s.row_no, p.reason
      FROM ecrm.stage_customer s,
           LATERAL (SELECT CASE
                WHEN coalesce(btrim(s.external_id), '') = '' THEN 'external_id is missing'
                WHEN length(s.external_id) > 512 THEN 'external_id is longer than 512 characters'
                WHEN s.email IS NOT NULL AND ecrm.normalize_email(s.email) IS NULL THEN format('invalid email "%s"', left(s.email, 100))
                WHEN s.phone IS NOT NULL AND ecrm.normalize_phone(s.phone) IS NULL THEN format('invalid phone "%s"', left(s.phone, 100))
                WHEN s.country IS NOT NULL AND (length(s.country) <> 2 OR ecrm.country_calling_code(upper(s.country)) IS NULL)
                    THEN format('invalid country "%s"', left(s.country, 100))
                WHEN s.language IS NOT NULL AND lower(s.language) !~ '^[a-z]{2,3}(-[a-z0-9]{2,8})*$'
                    THEN format('invalid language "%s"', left(s.language, 100))
                WHEN s.lifecycle_stage IS NOT NULL AND s.lifecycle_stage NOT IN
                     (SELECT e.enumlabel FROM pg_enum e WHERE e.enumtypid = 'ecrm.lifecycle_stage'::regtype)
                    THEN format('invalid lifecycle_stage "%s"', left(s.lifecycle_stage, 100))
                WHEN s.attributes IS NOT NULL AND jsonb_typeof(s.attributes) <> 'object' THEN 'attributes is not a JSON object'
                WHEN s.birth_date NOT BETWEEN '1900-01-01' AND current_date THEN 'birth_date is out of range'
                WHEN s.created_at > now() + interval '1 day' THEN 'created_at is in the future'
                END) p(reason)
     WHERE p.reason IS NOT NULL
    UNION ALL
    SELECT 'stage_order_line', s.row_no, p.reason
      FROM ecrm.stage_order_line s,
           LATERAL (SELECT CASE
                WHEN coalesce(btrim(s.order_ref), '') = '' THEN 'order_ref is missing'
                WHEN length(s.order_ref) > 100 THEN 'order_ref is longer than 100 characters'
                WHEN coalesce(btrim(s.customer_ref), '') = '' THEN 'customer_ref is missing'
                WHEN length(s.customer_ref) > 512 THEN 'customer_ref is longer than 512 characters'
                WHEN s.ordered_at IS NULL THEN 'ordered_at is missing'
                WHEN s.ordered_at NOT BETWEEN '1900-01-01' AND now() + interval '1 day' THEN 'ordered_at is out of range'
                WHEN coalesce(btrim(s.sku), '') = '' THEN 'sku is missing'
                WHEN length(s.sku) > 100 THEN 'sku is longer than 100 characters'
                WHEN s.quantity IS NULL OR s.quantity = 0 THEN 'quantity is missing or zero'
                WHEN s.unit_price IS NULL THEN 'unit_price is missing'
                WHEN s.unit_price < 0 OR s.unit_price = 'NaN' OR s.unit_price >= 1e10 THEN format('unit_price %s is out of range', s.unit_price)
                WHEN abs(s.quantity * s.unit_price) >= 1e12 THEN 'line amount is out of range'
                WHEN s.status IS NOT NULL AND s.status NOT IN ('placed', 'paid', 'shipped', 'delivered', 'cancelled', 'returned')
                    THEN format('invalid status "%s"', left(s.status, 100))
                WHEN s.channel IS NOT NULL AND s.channel NOT IN
                     (SELECT e.enumlabel FROM pg_enum e WHERE e.enumtypid = 'ecrm.channel'::regtype)
                    THEN format('invalid channel "%s"', left(s.channel, 100))
                WHEN s.currency IS NOT NULL AND s.currency !~ '^[A-Z]{3}$' THEN format('invalid currency "%s"', left(s.currency, 100))
                WHEN s.country IS NOT NULL AND (length(s.country) <> 2 OR ecrm.country_calling_code(upper(s.country)) IS NULL)
                    THEN format('invalid country "%s"', left(s.country, 100))
                END) p(reason)
     WHERE p.reason IS NOT NULL
    UNION ALL
    SELECT 'stage_interaction', s.row_no, p.reason
      FROM ecrm.stage_interaction s,
           LATERAL (SELECT CASE
                WHEN coalesce(btrim(s.customer_ref), '') = '' THEN 'customer_ref is missing'
                WHEN length(s.customer_ref) > 512 THEN 'customer_ref is longer than 512 characters'
                WHEN s.channel IS NULL OR s.channel NOT IN
                     (SELECT e.enumlabel FROM pg_enum e WHERE e.enumtypid = 'ecrm.channel'::regtype)
                    THEN format('invalid channel "%s"', left(coalesce(s.channel, 'NULL'), 100))
                WHEN s.kind IS NULL OR s.kind !~ '^[a-z][a-z0-9_.-]{0,62}$' THEN format('invalid kind "%s"', left(coalesce(s.kind, 'NULL'), 100))
                WHEN s.occurred_at IS NULL THEN 'occurred_at is missing'
                WHEN s.occurred_at NOT BETWEEN '1900-01-01' AND now() + interval '1 day' THEN 'occurred_at is out of range'
                WHEN s.payload IS NOT NULL AND jsonb_typeof(s.payload) <> 'object' THEN 'payload is not a JSON object'
                WHEN s.sku IS NOT NULL AND NOT EXISTS (SELECT FROM ecrm.product p WHERE p.sku = s.sku)
                     AND NOT EXISTS (SELECT FROM ecrm.stage_order_line l WHERE l.sku = s.sku)
                    THEN format('unknown sku "%s"', left(s.sku, 100))
                WHEN s.campaign IS NOT NULL AND NOT EXISTS (SELECT FROM ecrm.campaign c WHERE c.name = s.campaign)
                    THEN format('unknown campaign "%s"', left(s.campaign, 100))
                END) p(reason)
     WHERE p.reason IS NOT NULL;

    -- An order whose lines name different customers is wrong as a whole.
    INSERT INTO _ecrm_problem
    SELECT 'stage_order_line', s.row_no, format('order "%s" has lines for more than one customer', left(s.order_ref, 100))
      FROM ecrm.stage_order_line s
     WHERE (s.namespace, s.order_ref) IN (SELECT l.namespace, l.order_ref FROM ecrm.stage_order_line l
                                           GROUP BY 1, 2 HAVING count(DISTINCT l.customer_ref) > 1)
       AND NOT EXISTS (SELECT FROM _ecrm_problem p WHERE p.stage = 'stage_order_line' AND p.row_no = s.row_no);

    SELECT count(*) INTO nbad FROM _ecrm_problem;
    IF nbad > 0 AND NOT skip_invalid THEN
        SELECT * INTO first_bad FROM _ecrm_problem ORDER BY 1, 2 LIMIT 1;
        RAISE EXCEPTION '% row %: %', first_bad.stage, first_bad.row_no, first_bad.reason
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('%s staged rows are invalid; nothing was loaded.', nbad),
                  HINT = 'Fix the rows, or call ecrm.load_staged(skip_invalid => true) to load the rest and keep the invalid rows in ecrm.stage_reject.';
    END IF;
    CREATE INDEX ON _ecrm_problem (stage, row_no);
    INSERT INTO ecrm.stage_reject (stage, row_no, reason, row_data)
    SELECT p.stage, p.row_no, p.reason, r.row_data
      FROM _ecrm_problem p
      JOIN (SELECT 'stage_customer' AS stage, s.row_no, to_jsonb(s) AS row_data FROM ecrm.stage_customer s
            UNION ALL SELECT 'stage_order_line', s.row_no, to_jsonb(s) FROM ecrm.stage_order_line s
            UNION ALL SELECT 'stage_interaction', s.row_no, to_jsonb(s) FROM ecrm.stage_interaction s) r
        ON r.stage = p.stage AND r.row_no = p.row_no;

    -- Every customer reference (namespace, external id) and the customer it is, old or new.
    CREATE TEMP TABLE _ecrm_ref ON COMMIT DROP AS
    WITH refs AS (
        SELECT s.namespace, btrim(s.external_id) AS ref, max(s.row_no) AS cust_row, NULL::text AS country, 0 AS src, min(s.row_no) AS first_row,
               NULL::timestamptz AS first_seen, NULL::timestamptz AS first_order_at
          FROM ecrm.stage_customer s
         WHERE NOT EXISTS (SELECT FROM _ecrm_problem p WHERE p.stage = 'stage_customer' AND p.row_no = s.row_no)
         GROUP BY 1, 2
        UNION ALL
        SELECT s.namespace, btrim(s.customer_ref), NULL, max(upper(s.country)), 1, min(s.row_no), min(s.ordered_at),
               min(s.ordered_at) FILTER (WHERE coalesce(s.status, 'placed') NOT IN ('cancelled', 'returned'))
          FROM ecrm.stage_order_line s
         WHERE NOT EXISTS (SELECT FROM _ecrm_problem p WHERE p.stage = 'stage_order_line' AND p.row_no = s.row_no)
         GROUP BY 1, 2
        UNION ALL
        SELECT s.namespace, btrim(s.customer_ref), NULL, NULL, 2, min(s.row_no), min(s.occurred_at), NULL
          FROM ecrm.stage_interaction s
         WHERE NOT EXISTS (SELECT FROM _ecrm_problem p WHERE p.stage = 'stage_interaction' AND p.row_no = s.row_no)
         GROUP BY 1, 2)
    SELECT r.namespace, r.ref, max(r.cust_row) AS cust_row, max(r.country) AS country,
           ecrm.resolve_customer(min(i.customer_id)) AS customer_id, min(i.customer_id) IS NULL AS is_new,
           min(array[r.src, r.first_row]) AS appearance, min(r.first_seen) AS first_seen, min(r.first_order_at) AS first_order_at
      FROM refs r
      LEFT JOIN ecrm.identity i ON i.kind = 'external' AND i.namespace = r.namespace AND i.value = r.ref
     GROUP BY r.namespace, r.ref;
    -- new ids in the order the customers first appear in the staged data
    UPDATE _ecrm_ref r SET customer_id = n.id
      FROM (SELECT o.namespace, o.ref, nextval(pg_get_serial_sequence('ecrm.customer_profile', 'customer_id')) AS id
              FROM (SELECT x.namespace, x.ref FROM _ecrm_ref x WHERE x.is_new ORDER BY x.appearance) o) n
     WHERE r.namespace = n.namespace AND r.ref = n.ref;
    CREATE UNIQUE INDEX ON _ecrm_ref (namespace, ref);
    ANALYZE _ecrm_ref;

    INSERT INTO ecrm.customer_profile
        (customer_id, first_name, last_name, email, phone, birth_date, company, job_title, street, city,
         postal_code, region, country, language, lifecycle_stage, owner, source, attributes, created_at)
    SELECT r.customer_id, s.first_name, s.last_name, btrim(s.email), ecrm.normalize_phone(s.phone), s.birth_date,
           s.company, s.job_title, s.street, s.city, s.postal_code, s.region, coalesce(upper(s.country), r.country),
           lower(s.language),
           CASE WHEN r.first_order_at IS NOT NULL
                THEN greatest(coalesce(s.lifecycle_stage, 'subscriber')::ecrm.lifecycle_stage, 'customer')
                ELSE coalesce(s.lifecycle_stage, 'subscriber')::ecrm.lifecycle_stage END,
           s.owner, coalesce(s.source, r.namespace), coalesce(s.attributes, '{}'),
           coalesce(s.created_at, least(r.first_seen, now()), now())
      FROM _ecrm_ref r
      LEFT JOIN ecrm.stage_customer s ON s.row_no = r.cust_row
     WHERE r.is_new;
    GET DIAGNOSTICS n_new = ROW_COUNT;
    -- a new customer whose first order is in this load became a customer then, not now
    INSERT INTO ecrm.lifecycle_change (customer_id, from_stage, to_stage, changed_at, reason)
    SELECT r.customer_id, coalesce(s.lifecycle_stage, 'subscriber')::ecrm.lifecycle_stage, 'customer', r.first_order_at, 'first order'
      FROM _ecrm_ref r LEFT JOIN ecrm.stage_customer s ON s.row_no = r.cust_row
     WHERE r.is_new AND r.first_order_at IS NOT NULL AND coalesce(s.lifecycle_stage, 'subscriber')::ecrm.lifecycle_stage < 'customer';

    UPDATE ecrm.customer_profile c SET
        first_name = coalesce(s.first_name, c.first_name), last_name = coalesce(s.last_name, c.last_name),
        email = coalesce(btrim(s.email), c.email), phone = coalesce(ecrm.normalize_phone(s.phone), c.phone),
        birth_date = coalesce(s.birth_date, c.birth_date), company = coalesce(s.company, c.company),
        job_title = coalesce(s.job_title, c.job_title), street = coalesce(s.street, c.street),
        city = coalesce(s.city, c.city), postal_code = coalesce(s.postal_code, c.postal_code),
        region = coalesce(s.region, c.region), country = coalesce(upper(s.country), c.country),
        language = coalesce(lower(s.language), c.language),
        lifecycle_stage = coalesce(s.lifecycle_stage::ecrm.lifecycle_stage, c.lifecycle_stage),
        owner = coalesce(s.owner, c.owner), attributes = c.attributes || coalesce(s.attributes, '{}')
      FROM _ecrm_ref r JOIN ecrm.stage_customer s ON s.row_no = r.cust_row
     WHERE NOT r.is_new AND c.customer_id = r.customer_id;
    GET DIAGNOSTICS n_cust = ROW_COUNT;

    INSERT INTO ecrm.identity (customer_id, kind, namespace, value, raw_value, source)
    SELECT r.customer_id, 'external', r.namespace, r.ref, r.ref, r.namespace FROM _ecrm_ref r WHERE r.is_new;
    -- An email or phone that already points elsewhere is left for identity resolution to judge.
    INSERT INTO ecrm.identity (customer_id, kind, namespace, value, raw_value, source)
    SELECT DISTINCT ON (k.kind, k.value) r.customer_id, k.kind, '', k.value, k.raw, r.namespace
      FROM _ecrm_ref r
      JOIN ecrm.stage_customer s ON s.row_no = r.cust_row
      CROSS JOIN LATERAL (VALUES ('email'::ecrm.identity_kind, ecrm.normalize_email(s.email), s.email),
                                 ('phone'::ecrm.identity_kind, ecrm.normalize_phone(s.phone), s.phone)) k(kind, value, raw)
     WHERE k.value IS NOT NULL
     ORDER BY k.kind, k.value, r.customer_id
    ON CONFLICT ON CONSTRAINT identity_kind_namespace_value_key DO NOTHING;

    -- Products named by order lines that the catalogue lacks.
    INSERT INTO ecrm.product (sku, name, category, price)
    SELECT DISTINCT ON (btrim(s.sku)) btrim(s.sku), left(coalesce(nullif(btrim(s.product_name), ''), btrim(s.sku)), 500),
           s.category, round(s.unit_price, 2)
      FROM ecrm.stage_order_line s
     WHERE NOT EXISTS (SELECT FROM _ecrm_problem p WHERE p.stage = 'stage_order_line' AND p.row_no = s.row_no)
     ORDER BY btrim(s.sku), s.row_no DESC
    ON CONFLICT (sku) DO NOTHING;

    -- Orders: one per (namespace, order_ref); an order already loaded is skipped, so a re-run is harmless.
    CREATE TEMP TABLE _ecrm_order ON COMMIT DROP AS
    SELECT s.namespace, s.order_ref, min(s.customer_ref) AS customer_ref, min(s.ordered_at) AS ordered_at,
           coalesce(min(s.status), CASE WHEN sum(s.quantity * round(s.unit_price, 2)) < 0 THEN 'returned' ELSE 'placed' END) AS status,
           coalesce(min(s.channel), 'web') AS channel, coalesce(min(s.currency), 'EUR') AS currency,
           sum(s.quantity * round(s.unit_price, 2)) AS total, count(*) AS nlines,
           EXISTS (SELECT FROM ecrm.orders o WHERE o.external_ref = s.order_ref) AS loaded_before,
           NULL::bigint AS order_id
      FROM ecrm.stage_order_line s
     WHERE NOT EXISTS (SELECT FROM _ecrm_problem p WHERE p.stage = 'stage_order_line' AND p.row_no = s.row_no)
     GROUP BY s.namespace, s.order_ref;
    DELETE FROM _ecrm_order o USING _ecrm_order o2
     WHERE o.order_ref = o2.order_ref AND o.namespace > o2.namespace;   -- one order per reference
    UPDATE _ecrm_order r SET order_id = n.id
      FROM (SELECT o.namespace, o.order_ref, nextval(pg_get_serial_sequence('ecrm.orders', 'order_id')) AS id
              FROM (SELECT x.namespace, x.order_ref FROM _ecrm_order x WHERE NOT x.loaded_before
                     ORDER BY x.ordered_at, x.order_ref) o) n
     WHERE r.namespace = n.namespace AND r.order_ref = n.order_ref;
    CREATE UNIQUE INDEX ON _ecrm_order (namespace, order_ref);
    ANALYZE _ecrm_order;
    SELECT coalesce(sum(o.nlines), 0) INTO n_skip FROM _ecrm_order o WHERE o.loaded_before;

    INSERT INTO ecrm.orders (order_id, customer_id, external_ref, status, ordered_at, channel, currency, total, attributes)
    SELECT o.order_id, r.customer_id, o.order_ref, o.status, o.ordered_at, o.channel::ecrm.channel, o.currency, o.total,
           jsonb_build_object('namespace', o.namespace)
      FROM _ecrm_order o JOIN _ecrm_ref r ON r.namespace = o.namespace AND r.ref = btrim(o.customer_ref)
     WHERE NOT o.loaded_before;
    GET DIAGNOSTICS n_orders = ROW_COUNT;

    INSERT INTO ecrm.order_line (order_id, line_no, customer_id, product_id, quantity, unit_price)
    SELECT o.order_id, row_number() OVER (PARTITION BY o.order_id ORDER BY s.row_no), r.customer_id, p.product_id,
           s.quantity, round(s.unit_price, 2)
      FROM ecrm.stage_order_line s
      JOIN _ecrm_order o ON o.namespace = s.namespace AND o.order_ref = s.order_ref
      JOIN _ecrm_ref r ON r.namespace = o.namespace AND r.ref = btrim(o.customer_ref)
      JOIN ecrm.product p ON p.sku = btrim(s.sku)
     WHERE NOT o.loaded_before
       AND NOT EXISTS (SELECT FROM _ecrm_problem q WHERE q.stage = 'stage_order_line' AND q.row_no = s.row_no);
    GET DIAGNOSTICS n_lines = ROW_COUNT;

    PERFORM set_config('ecrm.lifecycle_reason', 'first order', true);
    UPDATE ecrm.customer_profile c SET lifecycle_stage = 'customer'
      FROM (SELECT DISTINCT r.customer_id FROM _ecrm_order o
              JOIN _ecrm_ref r ON r.namespace = o.namespace AND r.ref = btrim(o.customer_ref)
             WHERE NOT o.loaded_before AND o.status NOT IN ('cancelled', 'returned') AND NOT r.is_new) b
     WHERE c.customer_id = b.customer_id AND c.lifecycle_stage < 'customer';
    PERFORM set_config('ecrm.lifecycle_reason', '', true);

    INSERT INTO ecrm.interaction (customer_id, channel, kind, occurred_at, product_id, campaign_id, payload)
    SELECT r.customer_id, s.channel::ecrm.channel, s.kind, s.occurred_at, p.product_id, c.campaign_id, coalesce(s.payload, '{}')
      FROM ecrm.stage_interaction s
      JOIN _ecrm_ref r ON r.namespace = s.namespace AND r.ref = btrim(s.customer_ref)
      LEFT JOIN ecrm.product p ON p.sku = s.sku
      LEFT JOIN ecrm.campaign c ON c.name = s.campaign
     WHERE NOT EXISTS (SELECT FROM _ecrm_problem q WHERE q.stage = 'stage_interaction' AND q.row_no = s.row_no);
    GET DIAGNOSTICS n_inter = ROW_COUNT;

    TRUNCATE ecrm.stage_customer, ecrm.stage_order_line, ecrm.stage_interaction;

    stage := 'customers'; loaded := n_new + n_cust; skipped := 0;
    rejected := (SELECT count(*) FROM _ecrm_problem p WHERE p.stage = 'stage_customer');
    RETURN NEXT;
    stage := 'orders'; loaded := n_orders; rejected := 0;
    skipped := (SELECT count(*) FROM _ecrm_order o WHERE o.loaded_before);
    RETURN NEXT;
    stage := 'order_lines'; loaded := n_lines; skipped := n_skip;
    rejected := (SELECT count(*) FROM _ecrm_problem p WHERE p.stage = 'stage_order_line');
    RETURN NEXT;
    stage := 'interactions'; loaded := n_inter; skipped := 0;
    rejected := (SELECT count(*) FROM _ecrm_problem p WHERE p.stage = 'stage_interaction');
    RETURN NEXT;
END
$$;
COMMENT ON FUNCTION ecrm.load_staged(boolean) IS
    'Load everything in the stage_* tables set-based in one transaction: customers by (namespace, external id), products by SKU, orders by reference (already loaded ones are skipped), interactions. Any invalid row fails the whole load unless skip_invalid, which keeps such rows in ecrm.stage_reject. Empties the staging tables';
