
------------------------------------------------------------------------------
-- Lead scoring, features from the CRM: what a predictive model learns from.
------------------------------------------------------------------------------

-- Features of every active customer as of a time, from data up to that time.
-- A SQL-standard body is inlined into the calling query, so a filter on
-- customer_id reaches the grouped subqueries (index scans for a few customers).
CREATE FUNCTION ecrm.crm_features(as_of timestamptz)
    RETURNS TABLE (customer_id bigint, country text, source text, language text, tenure_days double precision,
                   orders bigint, revenue double precision, days_since_last_order double precision,
                   interactions_90d bigint, web_90d bigint, email_90d bigint, social_90d bigint, chat_90d bigint,
                   phone_90d bigint, survey_90d bigint, store_90d bigint, sales_90d bigint, support_90d bigint,
                   email_opens_90d bigint, email_clicks_90d bigint, days_since_last_touch double precision)
    LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT c.customer_id, c.country, c.source, c.language,
           extract(epoch FROM as_of - c.created_at)::double precision / 86400,
           coalesce(o.orders, 0), coalesce(o.revenue, 0),
           extract(epoch FROM as_of - o.last_order_at)::double precision / 86400,
           coalesce(i.total, 0), coalesce(i.web, 0), coalesce(i.email, 0), coalesce(i.social, 0), coalesce(i.chat, 0),
           coalesce(i.phone, 0), coalesce(i.survey, 0), coalesce(i.store, 0), coalesce(i.sales, 0), coalesce(i.support, 0),
           coalesce(e.opens, 0), coalesce(e.clicks, 0),
           extract(epoch FROM as_of - i.last_at)::double precision / 86400
      FROM ecrm.customer_profile c
      LEFT JOIN (SELECT o.customer_id,
                        count(*) FILTER (WHERE o.status NOT IN ('cancelled', 'returned')) AS orders,
                        (sum(o.total) FILTER (WHERE o.status <> 'cancelled'))::double precision AS revenue,
                        max(o.ordered_at) FILTER (WHERE o.status NOT IN ('cancelled', 'returned')) AS last_order_at
                   FROM ecrm.orders o WHERE o.ordered_at <= as_of GROUP BY o.customer_id) o ON o.customer_id = c.customer_id
      LEFT JOIN (SELECT n.customer_id,
                        count(*) FILTER (WHERE n.occurred_at > as_of - interval '90 days') AS total,
                        count(*) FILTER (WHERE n.occurred_at > as_of - interval '90 days' AND n.channel = 'web') AS web,
                        count(*) FILTER (WHERE n.occurred_at > as_of - interval '90 days' AND n.channel = 'email') AS email,
                        count(*) FILTER (WHERE n.occurred_at > as_of - interval '90 days' AND n.channel = 'social') AS social,
                        count(*) FILTER (WHERE n.occurred_at > as_of - interval '90 days' AND n.channel = 'chat') AS chat,
                        count(*) FILTER (WHERE n.occurred_at > as_of - interval '90 days' AND n.channel = 'phone') AS phone,
                        count(*) FILTER (WHERE n.occurred_at > as_of - interval '90 days' AND n.channel = 'survey') AS survey,
                        count(*) FILTER (WHERE n.occurred_at > as_of - interval '90 days' AND n.channel = 'store') AS store,
                        count(*) FILTER (WHERE n.occurred_at > as_of - interval '90 days' AND n.channel = 'sales') AS sales,
                        count(*) FILTER (WHERE n.occurred_at > as_of - interval '90 days' AND n.channel = 'support') AS support,
                        max(n.occurred_at) AS last_at
                   FROM ecrm.interaction n WHERE n.occurred_at <= as_of GROUP BY n.customer_id) i ON i.customer_id = c.customer_id
      LEFT JOIN (SELECT v.customer_id,
                        count(*) FILTER (WHERE v.kind = 'opened') AS opens,
                        count(*) FILTER (WHERE v.kind = 'clicked') AS clicks
                   FROM ecrm.campaign_event v
                  WHERE v.occurred_at <= as_of AND v.occurred_at > as_of - interval '90 days'
                  GROUP BY v.customer_id) e ON e.customer_id = c.customer_id
     WHERE c.status = 'active';
END;
COMMENT ON FUNCTION ecrm.crm_features(timestamptz) IS
    'Features of every active customer from the CRM as of a time, using only data up to then: profile (country, source, language, tenure), orders (frequency, monetary value, recency), interactions per channel and email opens/clicks in the 90 days before, days since the last touch';

CREATE VIEW ecrm.lead_features AS
SELECT f.*, (f.orders > 0 OR c.lifecycle_stage >= 'customer') AS converted
  FROM ecrm.crm_features(now()) f
  JOIN ecrm.customer_profile c ON c.customer_id = f.customer_id;
COMMENT ON VIEW ecrm.lead_features IS
    'Features of every active customer as of now (ecrm.crm_features(now())) and whether they converted; what predictive lead models score';
COMMENT ON COLUMN ecrm.lead_features.tenure_days IS 'Days since the customer was first seen';
COMMENT ON COLUMN ecrm.lead_features.orders IS 'Frequency: orders placed (cancelled and returned ones left out)';
COMMENT ON COLUMN ecrm.lead_features.revenue IS 'Monetary value: net revenue';
COMMENT ON COLUMN ecrm.lead_features.days_since_last_order IS 'Recency: days since the latest order; NULL when none';
COMMENT ON COLUMN ecrm.lead_features.interactions_90d IS 'Interactions in the last 90 days';
COMMENT ON COLUMN ecrm.lead_features.web_90d IS 'Web interactions in the last 90 days';
COMMENT ON COLUMN ecrm.lead_features.email_90d IS 'Email interactions in the last 90 days';
COMMENT ON COLUMN ecrm.lead_features.social_90d IS 'Social interactions in the last 90 days';
COMMENT ON COLUMN ecrm.lead_features.chat_90d IS 'Chat interactions in the last 90 days';
COMMENT ON COLUMN ecrm.lead_features.phone_90d IS 'Phone interactions in the last 90 days';
COMMENT ON COLUMN ecrm.lead_features.survey_90d IS 'Survey interactions in the last 90 days';
COMMENT ON COLUMN ecrm.lead_features.store_90d IS 'Store interactions in the last 90 days';
COMMENT ON COLUMN ecrm.lead_features.sales_90d IS 'Sales interactions (meetings, demos, calls) in the last 90 days';
COMMENT ON COLUMN ecrm.lead_features.support_90d IS 'Support interactions in the last 90 days';
COMMENT ON COLUMN ecrm.lead_features.email_opens_90d IS 'Campaign messages opened in the last 90 days';
COMMENT ON COLUMN ecrm.lead_features.email_clicks_90d IS 'Campaign messages clicked in the last 90 days';
COMMENT ON COLUMN ecrm.lead_features.days_since_last_touch IS 'Days since the latest interaction; NULL when none';
COMMENT ON COLUMN ecrm.lead_features.converted IS 'The customer has ordered or reached the customer stage';

CREATE FUNCTION ecrm.lead_features_at(as_of timestamptz, horizon interval DEFAULT '90 days')
    RETURNS TABLE (customer_id bigint, country text, source text, language text, tenure_days double precision,
                   orders bigint, revenue double precision, days_since_last_order double precision,
                   interactions_90d bigint, web_90d bigint, email_90d bigint, social_90d bigint, chat_90d bigint,
                   phone_90d bigint, survey_90d bigint, store_90d bigint, sales_90d bigint, support_90d bigint,
                   email_opens_90d bigint, email_clicks_90d bigint, days_since_last_touch double precision,
                   converted boolean)
    LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT f.*,
           EXISTS (SELECT FROM ecrm.orders o
                    WHERE o.customer_id = f.customer_id AND o.status NOT IN ('cancelled', 'returned')
                      AND o.ordered_at > as_of AND o.ordered_at <= as_of + horizon) AS converted
      FROM ecrm.crm_features(as_of) f
      JOIN ecrm.customer_profile c ON c.customer_id = f.customer_id
     WHERE f.orders = 0 AND c.created_at <= as_of;
END;
COMMENT ON FUNCTION ecrm.lead_features_at(timestamptz, interval) IS
    'A training set without look-ahead: the leads of a past time (customers without an order yet), their features as of then, and whether they ordered within the horizon after';

-- A feature specification from the columns of a table or view.
CREATE FUNCTION ecrm.feature_spec(source regclass, exclude text[] DEFAULT '{}', max_levels integer DEFAULT 50)
    RETURNS jsonb
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    a      record;
    feats  jsonb := '[]';
    mean   double precision;
    bad    bigint;
    levels jsonb;
    x      text;
BEGIN
    IF source IS NULL THEN
        RAISE EXCEPTION 'source must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF max_levels IS NULL OR max_levels < 1 OR max_levels > 1000 THEN
        RAISE EXCEPTION 'max_levels must be between 1 and 1000, not %', coalesce(max_levels::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOREACH x IN ARRAY coalesce(exclude, '{}') LOOP
        IF NOT EXISTS (SELECT FROM pg_attribute t WHERE t.attrelid = source AND t.attname = x AND t.attnum > 0 AND NOT t.attisdropped) THEN
            RAISE EXCEPTION 'column "%" of % does not exist', x, source USING ERRCODE = 'undefined_column';
        END IF;
    END LOOP;
    FOR a IN SELECT t.attname::text AS name, format_type(t.atttypid, t.atttypmod) AS type, y.typcategory AS cat
               FROM pg_attribute t JOIN pg_type y ON y.oid = t.atttypid
              WHERE t.attrelid = source AND t.attnum > 0 AND NOT t.attisdropped
                AND t.attname <> ALL (coalesce(exclude, '{}'))
              ORDER BY t.attnum LOOP
        IF a.cat = 'B' THEN
            EXECUTE format('SELECT avg(%1$I::int::double precision), 0 FROM %2$s', a.name, source::text) INTO mean, bad;
        ELSIF a.cat = 'N' THEN
            EXECUTE format('SELECT avg(%1$I::double precision), count(*) FILTER (WHERE %1$I::double precision IN (''NaN'', ''Infinity'', ''-Infinity'')) FROM %2$s',
                           a.name, source::text)
               INTO mean, bad;
        END IF;
        IF a.cat IN ('N', 'B') THEN
            IF bad > 0 THEN
                RAISE EXCEPTION 'column "%" of % holds NaN or infinite values', a.name, source
                    USING ERRCODE = 'invalid_parameter_value', HINT = 'Clean the values or exclude the column.';
            END IF;
            feats := feats || jsonb_build_object('name', a.name, 'type', 'numeric', 'impute', coalesce(mean, 0));
        ELSIF a.cat IN ('S', 'E') THEN
            EXECUTE format('SELECT jsonb_agg(v ORDER BY v) FROM (SELECT %1$I::text AS v FROM %2$s WHERE %1$I IS NOT NULL
                             GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT %3$s) x', a.name, source::text, max_levels)
               INTO levels;
            IF levels IS NULL THEN
                RAISE NOTICE 'column "%" is always NULL and is left out', a.name;
            ELSE
                feats := feats || jsonb_build_object('name', a.name, 'type', 'categorical', 'levels', levels);
            END IF;
        ELSE
            RAISE EXCEPTION 'column "%" of % has type %, which feature_spec cannot encode', a.name, source, a.type
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Exclude it, or turn it into a number (for example days since) or a text category.';
        END IF;
    END LOOP;
    IF jsonb_array_length(feats) = 0 THEN
        RAISE EXCEPTION '% has no columns left to use as features', source USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN jsonb_build_object('features', feats);
END
$$;
COMMENT ON FUNCTION ecrm.feature_spec(regclass, text[], integer) IS
    'A feature specification for ecrm.encode_features from the columns of a table or view: numbers and booleans become numeric features (missing values imputed with the mean), text and enums categorical ones over their max_levels most frequent values';
