
------------------------------------------------------------------------------
-- Ingestion API: how applications write.  Each call validates everything
-- before it writes and is one statement, so a failed call writes nothing.
------------------------------------------------------------------------------

-- The ISO 3166-1 alpha-2 code in a text field, upper-cased; an error names the field.
CREATE FUNCTION ecrm._country(value text, field text DEFAULT 'country') RETURNS text
    LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    IF value IS NULL THEN
        RETURN NULL;
    END IF;
    IF length(value) <> 2 OR ecrm.country_calling_code(upper(value)) IS NULL THEN
        RAISE EXCEPTION 'field "%" must be an ISO 3166-1 alpha-2 country code such as "GB", not "%"', field, left(value, 60)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN upper(value);
END
$$;

-- The normalised identity value of one kind, or an error naming the field.
CREATE FUNCTION ecrm._identity_value(kind ecrm.identity_kind, value text, field text) RETURNS text
    LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    v text := btrim(value, E' \t\r\n');
    n text;
BEGIN
    IF v IS NULL OR v = '' THEN
        RAISE EXCEPTION 'field "%" must not be empty', field USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF length(v) > 512 THEN
        RAISE EXCEPTION 'field "%" is too long (% characters, at most 512)', field, length(v)
            USING ERRCODE = 'string_data_right_truncation';
    END IF;
    IF kind = 'email' THEN
        n := ecrm.normalize_email(v);
        IF n IS NULL THEN
            RAISE EXCEPTION 'field "%" is not a valid email address: "%"', field, left(v, 100)
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    ELSIF kind = 'phone' THEN
        n := ecrm.normalize_phone(v);
        IF n IS NULL THEN
            RAISE EXCEPTION 'field "%" is not a valid phone number: "%"', field, left(v, 100)
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = CASE WHEN v !~ '^\s*(\+|00)' AND current_setting('ecrm.default_country', true) IN ('', NULL)
                                  THEN 'Write the number with its country code (+44 ...) or set ecrm.default_country.'
                                  ELSE 'A phone number has 7 to 15 digits after its country code.' END;
        END IF;
    ELSE
        n := v;
    END IF;
    RETURN n;
END
$$;

-- Attach one identity to a customer; an identity of another customer is a conflict.  member_id: the merged
-- profile on whose behalf it is attached (provenance for unmerge), NULL for the customer itself.  known: the
-- caller found the identity on this customer a moment ago, so finding it elsewhere now means a concurrent
-- merge or unmerge moved it: retryable (40001), not a conflict of the input.
CREATE FUNCTION ecrm._attach_identity(customer_id bigint, kind ecrm.identity_kind, namespace text,
                                      value text, raw_value text, source text, member_id bigint DEFAULT NULL,
                                      known boolean DEFAULT false) RETURNS bigint
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    owner bigint;
    iid   bigint;
BEGIN
    INSERT INTO ecrm.identity AS i (customer_id, kind, namespace, value, raw_value, source, member_id)
    VALUES (_attach_identity.customer_id, kind, coalesce(namespace, ''), value, raw_value, source,
            nullif(_attach_identity.member_id, _attach_identity.customer_id))
    ON CONFLICT ON CONSTRAINT identity_kind_namespace_value_key
        DO UPDATE SET last_seen_at = now()
    RETURNING i.customer_id, i.identity_id INTO owner, iid;
    IF owner <> _attach_identity.customer_id AND ecrm.resolve_customer(owner) <> _attach_identity.customer_id THEN
        IF known THEN
            RAISE EXCEPTION '% "%" was moved to customer % by a concurrent transaction', kind, value, owner
                USING ERRCODE = 'serialization_failure',
                      DETAIL = 'A merge or unmerge committed while the customer was being written.',
                      HINT = 'Retry the call.';
        END IF;
        RAISE EXCEPTION '% "%" already belongs to customer %', kind, value, owner
            USING ERRCODE = 'unique_violation',
                  HINT = 'Merge the two customers, or leave this identity out.';
    END IF;
    RETURN iid;
END
$$;

CREATE FUNCTION ecrm.find_customer(kind text, value text, namespace text DEFAULT '') RETURNS bigint
    LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    k ecrm.identity_kind := ecrm._enum_label(find_customer.kind, 'ecrm.identity_kind', 'kind');
    v text := ecrm._identity_value(k, find_customer.value, 'value');
BEGIN
    RETURN (SELECT ecrm.resolve_customer(i.customer_id) FROM ecrm.identity i
             WHERE i.kind = k AND i.namespace = coalesce(find_customer.namespace, '') AND i.value = v);
END
$$;
COMMENT ON FUNCTION ecrm.find_customer(text, text, text) IS
    'The live customer an identity (kind email, phone, device, cookie, external or social; value normalised first) points to; NULL when none';

CREATE FUNCTION ecrm.add_identity(customer_id bigint, kind text, value text, namespace text DEFAULT '',
                                  source text DEFAULT NULL) RETURNS bigint
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    id bigint := ecrm._live_customer(add_identity.customer_id);
    k  ecrm.identity_kind := ecrm._enum_label(add_identity.kind, 'ecrm.identity_kind', 'kind');
BEGIN
    IF length(namespace) > 100 THEN
        RAISE EXCEPTION 'field "namespace" is too long (% characters, at most 100)', length(namespace)
            USING ERRCODE = 'string_data_right_truncation';
    END IF;
    RETURN ecrm._attach_identity(id, k, namespace, ecrm._identity_value(k, value, 'value'), value, source,
                                 add_identity.customer_id);
END
$$;
COMMENT ON FUNCTION ecrm.add_identity(bigint, text, text, text, text) IS
    'Attach an identity (email, phone, device, cookie, external or social id) to a customer; returns the identity id. An identity of another customer is an error (SQLSTATE 23505)';

CREATE FUNCTION ecrm.upsert_customer(customer jsonb) RETURNS bigint
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    known text[] := ARRAY['customer_id', 'first_name', 'last_name', 'email', 'phone', 'birth_date', 'company',
                          'job_title', 'street', 'city', 'postal_code', 'region', 'country', 'language',
                          'lifecycle_stage', 'owner', 'source', 'attributes', 'external_id', 'identities',
                          'created_at'];
    doc        jsonb;
    k          text;
    target     bigint;
    behalf     bigint;
    matches    bigint[];
    members    bigint[];
    found_keys text[];
    found_live bigint[];
    known_keys text[];
    chg        jsonb;
    idents     jsonb := '[]';
    elem       jsonb;
    ik         ecrm.identity_kind;
    n          int := 0;
    v_email    text;
    v_phone    text;
    v_phone_n  text;
    v_birth    date;
    v_country  text;
    v_language text;
    v_stage    ecrm.lifecycle_stage;
    v_attrs    jsonb;
    v_created  timestamptz;
    v_source   text;
BEGIN
    IF customer IS NULL THEN
        RAISE EXCEPTION 'customer must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    doc := ecrm._check_object(customer, 'customer');
    FOR k IN SELECT jsonb_object_keys(doc) LOOP
        IF NOT k = ANY (known) THEN
            RAISE EXCEPTION 'unknown field "%" in customer', left(k, 100)
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Known fields: ' || array_to_string(known, ', ') || '. Put anything else under "attributes".';
        END IF;
    END LOOP;

    -- Validate every field before writing anything.
    v_email := ecrm._json_text(doc, 'email', 320);
    IF v_email IS NOT NULL THEN
        idents := idents || jsonb_build_object('kind', 'email', 'value', ecrm._identity_value('email', v_email, 'email'),
                                               'raw', v_email, 'namespace', '');
    END IF;
    v_phone := ecrm._json_text(doc, 'phone', 64);
    IF v_phone IS NOT NULL THEN
        v_phone_n := ecrm._identity_value('phone', v_phone, 'phone');
        idents := idents || jsonb_build_object('kind', 'phone', 'value', v_phone_n, 'raw', v_phone, 'namespace', '');
    END IF;
    IF doc ? 'external_id' AND jsonb_typeof(doc -> 'external_id') = 'number' THEN
        doc := jsonb_set(doc, '{external_id}', to_jsonb(doc ->> 'external_id'));
    END IF;
    IF ecrm._json_text(doc, 'external_id', 512) IS NOT NULL THEN
        idents := idents || jsonb_build_object('kind', 'external', 'value', ecrm._json_text(doc, 'external_id', 512),
                                               'raw', ecrm._json_text(doc, 'external_id', 512), 'namespace', '');
    END IF;
    IF doc ? 'identities' AND jsonb_typeof(doc -> 'identities') <> 'null' THEN
        IF jsonb_typeof(doc -> 'identities') <> 'array' THEN
            RAISE EXCEPTION 'field "identities" must be an array of {"kind", "value", "namespace"} objects'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF jsonb_array_length(doc -> 'identities') > 100 THEN
            RAISE EXCEPTION 'field "identities" has % elements, at most 100', jsonb_array_length(doc -> 'identities')
                USING ERRCODE = 'program_limit_exceeded';
        END IF;
        FOR elem IN SELECT e FROM jsonb_array_elements(doc -> 'identities') e LOOP
            n := n + 1;
            IF jsonb_typeof(elem) <> 'object' THEN
                RAISE EXCEPTION 'identities[%] must be an object, not %', n, jsonb_typeof(elem)
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            ik := ecrm._enum_label(ecrm._json_text(elem, 'kind', 20), 'ecrm.identity_kind', format('identities[%s].kind', n));
            IF ik IS NULL THEN
                RAISE EXCEPTION 'identities[%].kind is missing', n USING ERRCODE = 'invalid_parameter_value';
            END IF;
            idents := idents || jsonb_build_object(
                'kind', ik,
                'value', ecrm._identity_value(ik, ecrm._json_text(elem, 'value', 512), format('identities[%s].value', n)),
                'raw', ecrm._json_text(elem, 'value', 512),
                'namespace', coalesce(ecrm._json_text(elem, 'namespace', 100), ''));
        END LOOP;
    END IF;

    v_country := ecrm._country(ecrm._json_text(doc, 'country', 100));
    v_language := lower(ecrm._json_text(doc, 'language', 35));
    IF v_language !~ '^[a-z]{2,3}(-[a-z0-9]{2,8})*$' THEN
        RAISE EXCEPTION 'field "language" must be a language tag such as "en" or "pt-br", not "%"', v_language
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    BEGIN
        v_birth := ecrm._json_text(doc, 'birth_date', 40)::date;
        v_created := ecrm._json_text(doc, 'created_at', 60)::timestamptz;
    EXCEPTION WHEN datetime_field_overflow OR invalid_datetime_format THEN
        RAISE EXCEPTION 'field "%" is not a valid %', CASE WHEN v_birth IS NULL AND doc ? 'birth_date' THEN 'birth_date' ELSE 'created_at' END,
                        CASE WHEN v_birth IS NULL AND doc ? 'birth_date' THEN 'date (YYYY-MM-DD)' ELSE 'timestamp' END
            USING ERRCODE = 'invalid_datetime_format';
    END;
    IF v_birth IS NOT NULL AND (v_birth < '1900-01-01' OR v_birth > current_date) THEN
        RAISE EXCEPTION 'field "birth_date" is out of range: %', v_birth
            USING ERRCODE = 'datetime_field_overflow', DETAIL = 'A birth date lies between 1900-01-01 and today.';
    END IF;
    IF v_created IS NOT NULL THEN
        PERFORM ecrm._check_time(v_created, 'field "created_at"');
    END IF;
    v_stage := ecrm._enum_label(ecrm._json_text(doc, 'lifecycle_stage', 40), 'ecrm.lifecycle_stage', 'lifecycle_stage');
    v_attrs := ecrm._check_object(CASE WHEN jsonb_typeof(doc -> 'attributes') = 'null' THEN NULL ELSE doc -> 'attributes' END,
                                  'field "attributes"', 65536);
    v_source := ecrm._json_text(doc, 'source', 100);
    -- the remaining text fields are validated by _json_text below, before any write

    PERFORM ecrm._json_text(doc, f, 200) FROM unnest(ARRAY['first_name', 'last_name', 'company', 'job_title', 'city',
                                                           'postal_code', 'region', 'owner']) f;
    PERFORM ecrm._json_text(doc, 'street', 500);

    -- Which customer is this?
    IF doc ? 'customer_id' AND jsonb_typeof(doc -> 'customer_id') <> 'null' THEN
        IF jsonb_typeof(doc -> 'customer_id') <> 'number' OR (doc ->> 'customer_id') !~ '^[0-9]{1,18}$' THEN
            RAISE EXCEPTION 'field "customer_id" must be a positive integer, not %', left((doc -> 'customer_id')::text, 40)
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        behalf := (doc ->> 'customer_id')::bigint;
        target := ecrm._live_customer(behalf);
    END IF;
    -- the customers the identities point to, and the profiles that brought them (provenance)
    SELECT array_agg(DISTINCT x.live), array_agg(x.member ORDER BY x.o), array_agg(x.k), array_agg(x.live)
      INTO matches, members, found_keys, found_live
      FROM (SELECT ecrm.resolve_customer(i.customer_id) AS live, coalesce(i.member_id, i.customer_id) AS member,
                   concat_ws(' ', i.kind, i.namespace, i.value) AS k, e.o
              FROM jsonb_array_elements(idents) WITH ORDINALITY e(v, o)
              JOIN ecrm.identity i ON i.kind = (e.v ->> 'kind')::ecrm.identity_kind
                                  AND i.namespace = e.v ->> 'namespace' AND i.value = e.v ->> 'value') x;
    IF target IS NULL AND cardinality(matches) > 1 THEN
        RAISE EXCEPTION 'the identities given belong to different customers: %', array_to_string(matches, ', ')
            USING ERRCODE = 'unique_violation',
                  HINT = 'Merge those customers first, or leave out the identities that point elsewhere.';
    END IF;
    target := coalesce(target, matches[1]);
    -- On whose behalf is this written?  The profile named, else the profile that brought the first identity
    -- found; under a merge that may be a merged profile, whose record an unmerge must give back with this input.
    behalf := coalesce(behalf, members[1], target);
    IF behalf <> target AND ecrm.resolve_customer(behalf) IS DISTINCT FROM target THEN
        behalf := target;
    END IF;
    known_keys := ARRAY(SELECT u.k FROM unnest(found_keys, found_live) u(k, l) WHERE u.l = target);

    IF target IS NULL THEN
        INSERT INTO ecrm.customer_profile AS c
            (first_name, last_name, email, phone, birth_date, company, job_title, street, city, postal_code,
             region, country, language, lifecycle_stage, owner, source, attributes, created_at)
        VALUES (ecrm._json_text(doc, 'first_name', 200), ecrm._json_text(doc, 'last_name', 200), v_email, v_phone_n,
                v_birth, ecrm._json_text(doc, 'company', 200), ecrm._json_text(doc, 'job_title', 200),
                ecrm._json_text(doc, 'street', 500), ecrm._json_text(doc, 'city', 200),
                ecrm._json_text(doc, 'postal_code', 200), ecrm._json_text(doc, 'region', 200), v_country, v_language,
                coalesce(v_stage, 'subscriber'), ecrm._json_text(doc, 'owner', 200), v_source,
                jsonb_strip_nulls(coalesce(v_attrs, '{}')), coalesce(v_created, now()))
        RETURNING c.customer_id INTO target;
    ELSE
        UPDATE ecrm.customer_profile c SET
            first_name  = CASE WHEN doc ? 'first_name' THEN ecrm._json_text(doc, 'first_name', 200) ELSE c.first_name END,
            last_name   = CASE WHEN doc ? 'last_name' THEN ecrm._json_text(doc, 'last_name', 200) ELSE c.last_name END,
            email       = CASE WHEN doc ? 'email' THEN v_email ELSE c.email END,
            phone       = CASE WHEN doc ? 'phone' THEN v_phone_n ELSE c.phone END,
            birth_date  = CASE WHEN doc ? 'birth_date' THEN v_birth ELSE c.birth_date END,
            company     = CASE WHEN doc ? 'company' THEN ecrm._json_text(doc, 'company', 200) ELSE c.company END,
            job_title   = CASE WHEN doc ? 'job_title' THEN ecrm._json_text(doc, 'job_title', 200) ELSE c.job_title END,
            street      = CASE WHEN doc ? 'street' THEN ecrm._json_text(doc, 'street', 500) ELSE c.street END,
            city        = CASE WHEN doc ? 'city' THEN ecrm._json_text(doc, 'city', 200) ELSE c.city END,
            postal_code = CASE WHEN doc ? 'postal_code' THEN ecrm._json_text(doc, 'postal_code', 200) ELSE c.postal_code END,
            region      = CASE WHEN doc ? 'region' THEN ecrm._json_text(doc, 'region', 200) ELSE c.region END,
            country     = CASE WHEN doc ? 'country' THEN v_country ELSE c.country END,
            language    = CASE WHEN doc ? 'language' THEN v_language ELSE c.language END,
            lifecycle_stage = coalesce(v_stage, c.lifecycle_stage),
            owner       = CASE WHEN doc ? 'owner' THEN ecrm._json_text(doc, 'owner', 200) ELSE c.owner END,
            source      = coalesce(c.source, v_source),
            attributes  = CASE WHEN v_attrs IS NULL THEN c.attributes ELSE jsonb_strip_nulls(c.attributes || v_attrs) END
        WHERE c.customer_id = target AND c.status = 'active';
        IF NOT FOUND THEN
            RAISE EXCEPTION 'customer % was merged or erased by a concurrent transaction', target
                USING ERRCODE = 'serialization_failure',
                      DETAIL = 'The customer was found by its identities a moment before.', HINT = 'Retry the call.';
        END IF;
        IF behalf <> target OR EXISTS (SELECT FROM ecrm.merge_event e WHERE e.survivor_id = target AND e.unmerged_at IS NULL) THEN
            -- the fields given (as just written), for the own record of the profile written for
            SELECT coalesce(jsonb_object_agg(f, r.j -> f), '{}') INTO chg
              FROM (SELECT to_jsonb(c) AS j FROM ecrm.customer_profile c WHERE c.customer_id = target) r,
                   unnest(ARRAY['first_name', 'last_name', 'email', 'phone', 'birth_date', 'company', 'job_title', 'street',
                                'city', 'postal_code', 'region', 'country', 'language', 'owner', 'lifecycle_stage']) f
             WHERE doc ? f AND (f <> 'lifecycle_stage' OR v_stage IS NOT NULL);
            IF chg <> '{}' OR v_attrs IS NOT NULL THEN
                PERFORM ecrm._record_for_member(target, behalf, chg, v_attrs);
            END IF;
        END IF;
    END IF;

    PERFORM ecrm._attach_identity(target, (e ->> 'kind')::ecrm.identity_kind, e ->> 'namespace', e ->> 'value',
                                  e ->> 'raw', v_source, behalf,
                                  concat_ws(' ', e ->> 'kind', e ->> 'namespace', e ->> 'value') = ANY (known_keys))
       FROM jsonb_array_elements(idents) e;
    -- real-time identity resolution (40_matching.sql): may merge into an existing profile
    RETURN ecrm.resolve_duplicates(target);
END
$$;
COMMENT ON FUNCTION ecrm.upsert_customer(jsonb) IS
    'Create or update a customer from a JSON object. The customer is found by "customer_id", else by any of its identities (email, phone, external_id, identities[]); email and phone are normalised and attached as identities; then the profile is resolved against the others (ecrm.resolve_duplicates, by ecrm.realtime_resolution). Returns the customer id, that of the survivor when it was merged';

CREATE FUNCTION ecrm.upsert_product(sku text, name text, category text DEFAULT NULL, price numeric DEFAULT NULL,
                                    available boolean DEFAULT true, attributes jsonb DEFAULT '{}') RETURNS bigint
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    id bigint;
BEGIN
    IF sku IS NULL OR btrim(sku) = '' OR length(sku) > 100 THEN
        RAISE EXCEPTION 'sku must be 1 to 100 characters' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF name IS NULL OR btrim(name) = '' OR length(name) > 500 THEN
        RAISE EXCEPTION 'name of product "%" must be 1 to 500 characters', sku USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM ecrm._finite(price, 'price');
    IF price < 0 OR price = 'NaN' OR price >= 1e10 THEN
        RAISE EXCEPTION 'price of product "%" is out of range: %', sku, price USING ERRCODE = 'numeric_value_out_of_range';
    END IF;
    INSERT INTO ecrm.product AS p (sku, name, category, price, available, attributes)
    VALUES (btrim(upsert_product.sku), btrim(upsert_product.name), upsert_product.category, upsert_product.price,
            coalesce(upsert_product.available, true), ecrm._check_object(upsert_product.attributes, 'attributes', 65536))
    ON CONFLICT ON CONSTRAINT product_sku_key DO UPDATE SET name = EXCLUDED.name, category = EXCLUDED.category, price = EXCLUDED.price,
                                    available = EXCLUDED.available, attributes = EXCLUDED.attributes
    RETURNING p.product_id INTO id;
    RETURN id;
END
$$;
COMMENT ON FUNCTION ecrm.upsert_product(text, text, text, numeric, boolean, jsonb) IS
    'Create or update a product by SKU; returns its id';

CREATE FUNCTION ecrm._product_exists(product_id bigint, field text DEFAULT 'product_id') RETURNS bigint
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    IF product_id IS NOT NULL AND NOT EXISTS (SELECT FROM ecrm.product p WHERE p.product_id = _product_exists.product_id) THEN
        RAISE EXCEPTION 'product % does not exist', product_id
            USING ERRCODE = 'foreign_key_violation', DETAIL = format('No product has %s = %s.', field, product_id);
    END IF;
    RETURN product_id;
END
$$;

CREATE FUNCTION ecrm._campaign_exists(campaign_id bigint) RETURNS bigint
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    IF campaign_id IS NOT NULL AND NOT EXISTS (SELECT FROM ecrm.campaign c WHERE c.campaign_id = _campaign_exists.campaign_id) THEN
        RAISE EXCEPTION 'campaign % does not exist', campaign_id USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN campaign_id;
END
$$;

CREATE FUNCTION ecrm._check_kind(kind text) RETURNS text
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    IF kind IS NULL OR kind !~ '^[a-z][a-z0-9_.-]{0,62}$' THEN
        RAISE EXCEPTION 'invalid interaction kind "%"', left(kind, 100)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A kind is 1 to 63 lower-case letters, digits, "_", "." or "-", starting with a letter (page_view, email_open).';
    END IF;
    RETURN kind;
END
$$;

CREATE FUNCTION ecrm.record_interaction(customer_id bigint, channel text, kind text,
                                        occurred_at timestamptz DEFAULT now(), payload jsonb DEFAULT '{}',
                                        campaign_id bigint DEFAULT NULL, product_id bigint DEFAULT NULL) RETURNS bigint
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    id bigint;
BEGIN
    IF record_interaction.channel IS NULL THEN
        RAISE EXCEPTION 'channel must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    INSERT INTO ecrm.interaction AS i (customer_id, channel, kind, occurred_at, payload, campaign_id, product_id)
    VALUES (ecrm._live_customer(record_interaction.customer_id),
            ecrm._enum_label(record_interaction.channel, 'ecrm.channel', 'channel')::ecrm.channel,
            ecrm._check_kind(record_interaction.kind),
            ecrm._check_time(record_interaction.occurred_at, 'occurred_at'),
            ecrm._check_object(record_interaction.payload, 'payload'),
            ecrm._campaign_exists(record_interaction.campaign_id),
            ecrm._product_exists(record_interaction.product_id))
    RETURNING i.interaction_id INTO id;
    RETURN id;
END
$$;
COMMENT ON FUNCTION ecrm.record_interaction(bigint, text, text, timestamptz, jsonb, bigint, bigint) IS
    'Record one touch of a customer (channel web, email, social, chat, phone, survey, store, sales or support; a kind such as page_view); returns the interaction id';

CREATE FUNCTION ecrm.record_order(customer_id bigint, lines jsonb, ordered_at timestamptz DEFAULT now(),
                                  external_ref text DEFAULT NULL, status text DEFAULT 'placed',
                                  channel text DEFAULT 'web', currency text DEFAULT 'EUR',
                                  campaign_id bigint DEFAULT NULL, attributes jsonb DEFAULT '{}') RETURNS bigint
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    cid     bigint := ecrm._live_customer(record_order.customer_id);
    oid_    bigint;
    line    jsonb;
    n       int := 0;
    k       text;
    pid     bigint;
    qty     int;
    price   numeric;
    total   numeric := 0;
    parsed  jsonb := '[]';
    new_skus jsonb := '{}';
    prev    bigint;
BEGIN
    IF status IS NULL OR status NOT IN ('placed', 'paid', 'shipped', 'delivered', 'cancelled', 'returned') THEN
        RAISE EXCEPTION 'invalid order status "%"', left(status, 40)
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Use one of: placed, paid, shipped, delivered, cancelled, returned.';
    END IF;
    IF record_order.channel IS NULL THEN
        RAISE EXCEPTION 'channel must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM ecrm._enum_label(record_order.channel, 'ecrm.channel', 'channel');
    PERFORM ecrm._campaign_exists(record_order.campaign_id);
    PERFORM ecrm._check_time(record_order.ordered_at, 'ordered_at');
    IF currency IS NULL OR currency !~ '^[A-Z]{3}$' THEN
        RAISE EXCEPTION 'currency must be an ISO 4217 code such as EUR, not "%"', left(currency, 20)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF external_ref IS NOT NULL THEN
        IF length(external_ref) NOT BETWEEN 1 AND 100 THEN
            RAISE EXCEPTION 'external_ref must be 1 to 100 characters' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        SELECT o.order_id INTO prev FROM ecrm.orders o WHERE o.external_ref = record_order.external_ref;
        IF FOUND THEN
            RAISE EXCEPTION 'order "%" already exists (order %)', external_ref, prev USING ERRCODE = 'unique_violation';
        END IF;
    END IF;
    IF lines IS NULL OR jsonb_typeof(lines) <> 'array' OR jsonb_array_length(lines) = 0 THEN
        RAISE EXCEPTION 'lines must be a non-empty JSON array of {"sku" or "product_id", "quantity", "unit_price"} objects'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF jsonb_array_length(lines) > 10000 THEN
        RAISE EXCEPTION 'an order has at most 10000 lines, not %', jsonb_array_length(lines)
            USING ERRCODE = 'program_limit_exceeded';
    END IF;

    FOR line IN SELECT e FROM jsonb_array_elements(lines) e LOOP
        n := n + 1;
        IF jsonb_typeof(line) <> 'object' THEN
            RAISE EXCEPTION 'lines[%] must be an object, not %', n, jsonb_typeof(line) USING ERRCODE = 'invalid_parameter_value';
        END IF;
        FOR k IN SELECT jsonb_object_keys(line) LOOP
            IF k NOT IN ('sku', 'product_id', 'quantity', 'unit_price', 'name', 'category') THEN
                RAISE EXCEPTION 'unknown field "%" in lines[%]', left(k, 100), n
                    USING ERRCODE = 'invalid_parameter_value', HINT = 'Known fields: sku, product_id, quantity, unit_price, name, category.';
            END IF;
        END LOOP;
        IF jsonb_typeof(line -> 'quantity') IS DISTINCT FROM 'number' OR (line ->> 'quantity') !~ '^-?[0-9]{1,9}$'
           OR (line ->> 'quantity')::int = 0 THEN
            RAISE EXCEPTION 'lines[%].quantity must be a non-zero integer, not %', n, coalesce(left((line -> 'quantity')::text, 40), 'missing')
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        qty := (line ->> 'quantity')::int;
        IF line ? 'product_id' THEN
            IF jsonb_typeof(line -> 'product_id') <> 'number' OR (line ->> 'product_id') !~ '^[0-9]{1,18}$' THEN
                RAISE EXCEPTION 'lines[%].product_id must be a positive integer', n USING ERRCODE = 'invalid_parameter_value';
            END IF;
            pid := ecrm._product_exists((line ->> 'product_id')::bigint, format('lines[%s].product_id', n));
        ELSE
            SELECT p.product_id INTO pid FROM ecrm.product p WHERE p.sku = ecrm._json_text(line, 'sku', 100);
            IF NOT FOUND AND NOT new_skus ? coalesce(ecrm._json_text(line, 'sku', 100), '') THEN
                IF ecrm._json_text(line, 'sku', 100) IS NULL THEN
                    RAISE EXCEPTION 'lines[%] needs a "sku" or a "product_id"', n USING ERRCODE = 'invalid_parameter_value';
                ELSIF ecrm._json_text(line, 'name', 500) IS NULL THEN
                    RAISE EXCEPTION 'lines[%]: unknown product sku "%"', n, ecrm._json_text(line, 'sku', 100)
                        USING ERRCODE = 'foreign_key_violation',
                              HINT = 'Create it with ecrm.upsert_product(), or give the line a "name" to create it with the order.';
                END IF;
                pid := NULL;   -- created below, once everything is valid
                new_skus := new_skus || jsonb_build_object(ecrm._json_text(line, 'sku', 100), true);
            ELSIF NOT FOUND THEN
                pid := NULL;   -- created by an earlier line of this order
            END IF;
        END IF;
        IF line ? 'unit_price' THEN
            IF jsonb_typeof(line -> 'unit_price') <> 'number' OR (line ->> 'unit_price')::numeric < 0
               OR (line ->> 'unit_price')::numeric >= 1e10 THEN
                RAISE EXCEPTION 'lines[%].unit_price must be a number from 0 to 9999999999.99, not %', n, left((line -> 'unit_price')::text, 40)
                    USING ERRCODE = 'numeric_value_out_of_range';
            END IF;
            price := round((line ->> 'unit_price')::numeric, 2);
        ELSE
            SELECT p.price INTO price FROM ecrm.product p WHERE p.product_id = pid;
            IF price IS NULL THEN
                RAISE EXCEPTION 'lines[%] has no unit_price and its product has no price', n USING ERRCODE = 'invalid_parameter_value';
            END IF;
        END IF;
        IF abs(qty * price) >= 1e12 THEN
            RAISE EXCEPTION 'lines[%] amount is out of range', n USING ERRCODE = 'numeric_value_out_of_range';
        END IF;
        total := total + qty * price;
        parsed := parsed || jsonb_build_object('line_no', n, 'product_id', pid, 'quantity', qty, 'unit_price', price,
                                               'sku', line ->> 'sku', 'name', line ->> 'name', 'category', line ->> 'category');
    END LOOP;
    IF abs(total) >= 1e12 THEN
        RAISE EXCEPTION 'order total is out of range: %', total USING ERRCODE = 'numeric_value_out_of_range';
    END IF;

    INSERT INTO ecrm.orders AS o (customer_id, external_ref, status, ordered_at, channel, currency, total, campaign_id, attributes)
    VALUES (cid, record_order.external_ref, record_order.status, ecrm._check_time(record_order.ordered_at, 'ordered_at'),
            ecrm._enum_label(record_order.channel, 'ecrm.channel', 'channel')::ecrm.channel,
            record_order.currency, total, ecrm._campaign_exists(record_order.campaign_id),
            ecrm._check_object(record_order.attributes, 'attributes', 65536))
    RETURNING o.order_id INTO oid_;

    FOR line IN SELECT e FROM jsonb_array_elements(parsed) e LOOP
        pid := (line ->> 'product_id')::bigint;
        IF pid IS NULL THEN
            SELECT p.product_id INTO pid FROM ecrm.product p WHERE p.sku = btrim(line ->> 'sku');
            IF NOT FOUND THEN
                pid := ecrm.upsert_product(line ->> 'sku', line ->> 'name', line ->> 'category', (line ->> 'unit_price')::numeric);
            END IF;
        END IF;
        INSERT INTO ecrm.order_line (order_id, line_no, customer_id, product_id, quantity, unit_price)
        VALUES (oid_, (line ->> 'line_no')::int, cid, pid, (line ->> 'quantity')::int, (line ->> 'unit_price')::numeric);
    END LOOP;

    -- A first real order makes a prospect a customer.
    IF record_order.status NOT IN ('cancelled', 'returned') THEN
        PERFORM set_config('ecrm.lifecycle_reason', 'first order', true);
        UPDATE ecrm.customer_profile c SET lifecycle_stage = 'customer'
         WHERE c.customer_id = cid AND c.lifecycle_stage < 'customer';
        PERFORM set_config('ecrm.lifecycle_reason', '', true);
    END IF;
    RETURN oid_;
END
$$;
COMMENT ON FUNCTION ecrm.record_order(bigint, jsonb, timestamptz, text, text, text, text, bigint, jsonb) IS
    'Record an order with its lines ([{"sku": ..., "quantity": ..., "unit_price": ...}]); a first placed order moves a prospect to the customer stage. Returns the order id';

CREATE FUNCTION ecrm.create_campaign(name text, channel text, purpose text DEFAULT 'marketing_email',
                                     starts_at timestamptz DEFAULT NULL, ends_at timestamptz DEFAULT NULL,
                                     status text DEFAULT 'draft', budget numeric DEFAULT NULL,
                                     attributes jsonb DEFAULT '{}') RETURNS bigint
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    id bigint;
BEGIN
    IF name IS NULL OR btrim(name) = '' OR length(name) > 200 THEN
        RAISE EXCEPTION 'campaign name must be 1 to 200 characters' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF channel IS NULL THEN
        RAISE EXCEPTION 'channel must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM ecrm._finite(budget, 'budget');
    IF EXISTS (SELECT FROM ecrm.campaign c WHERE c.name = create_campaign.name) THEN
        RAISE EXCEPTION 'campaign "%" already exists', name USING ERRCODE = 'unique_violation';
    END IF;
    IF NOT EXISTS (SELECT FROM ecrm.consent_purpose p WHERE p.purpose = create_campaign.purpose) THEN
        RAISE EXCEPTION 'unknown consent purpose "%"', left(purpose, 100)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = format('Use one of: %s.', (SELECT string_agg(p.purpose, ', ' ORDER BY p.purpose) FROM ecrm.consent_purpose p));
    END IF;
    IF status IS NULL OR status NOT IN ('draft', 'scheduled', 'running', 'paused', 'completed', 'cancelled') THEN
        RAISE EXCEPTION 'invalid campaign status "%"', left(status, 40)
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Use one of: draft, scheduled, running, paused, completed, cancelled.';
    END IF;
    IF ends_at < starts_at THEN
        RAISE EXCEPTION 'campaign ends (%) before it starts (%)', ends_at, starts_at USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF budget < 0 OR budget = 'NaN' OR budget >= 1e12 THEN
        RAISE EXCEPTION 'budget is out of range: %', budget USING ERRCODE = 'numeric_value_out_of_range';
    END IF;
    INSERT INTO ecrm.campaign AS c (name, channel, purpose, starts_at, ends_at, status, budget, attributes)
    VALUES (btrim(create_campaign.name), ecrm._enum_label(create_campaign.channel, 'ecrm.channel', 'channel')::ecrm.channel,
            create_campaign.purpose, create_campaign.starts_at, create_campaign.ends_at, create_campaign.status,
            create_campaign.budget, ecrm._check_object(create_campaign.attributes, 'attributes', 65536))
    RETURNING c.campaign_id INTO id;
    RETURN id;
END
$$;
COMMENT ON FUNCTION ecrm.create_campaign(text, text, text, timestamptz, timestamptz, text, numeric, jsonb) IS
    'Create a campaign on a channel; purpose is the consent its recipients must have given. Returns the campaign id';

-- One set-based path for one event or many: validates every recipient first.
CREATE FUNCTION ecrm.record_campaign_events(campaign_id bigint, kind text, customer_ids bigint[],
                                            occurred_at timestamptz DEFAULT now(), revenue numeric DEFAULT 0,
                                            order_id bigint DEFAULT NULL, payload jsonb DEFAULT '{}') RETURNS integer
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    k       ecrm.campaign_event_kind := ecrm._enum_label(record_campaign_events.kind, 'ecrm.campaign_event_kind', 'kind');
    bad     bigint;
    purpose text;
    n       int;
BEGIN
    IF campaign_id IS NULL OR k IS NULL THEN
        RAISE EXCEPTION 'campaign_id and kind must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT c.purpose INTO purpose FROM ecrm.campaign c WHERE c.campaign_id = record_campaign_events.campaign_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'campaign % does not exist', campaign_id USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF customer_ids IS NULL OR cardinality(customer_ids) = 0 THEN
        RAISE EXCEPTION 'customer_ids must not be empty' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF cardinality(customer_ids) > 10000000 THEN
        RAISE EXCEPTION 'at most 10000000 recipients in one call, not %', cardinality(customer_ids)
            USING ERRCODE = 'program_limit_exceeded';
    END IF;
    PERFORM ecrm._finite(revenue, 'revenue');
    IF revenue IS NULL OR revenue < 0 OR revenue = 'NaN' OR revenue >= 1e12 THEN
        RAISE EXCEPTION 'revenue must be a number from 0 to 999999999999.99, not %', revenue
            USING ERRCODE = 'numeric_value_out_of_range';
    END IF;
    IF revenue > 0 AND k <> 'converted' THEN
        RAISE EXCEPTION 'only converted events carry revenue, not % events', k USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF order_id IS NOT NULL AND NOT EXISTS (SELECT FROM ecrm.orders o WHERE o.order_id = record_campaign_events.order_id) THEN
        RAISE EXCEPTION 'order % does not exist', order_id USING ERRCODE = 'foreign_key_violation';
    END IF;
    SELECT u.id INTO bad FROM unnest(customer_ids) u(id)
     WHERE u.id IS NULL OR NOT EXISTS (SELECT FROM ecrm.customer_profile p WHERE p.customer_id = u.id AND p.status <> 'erased')
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'customer % does not exist', coalesce(bad::text, 'NULL')
            USING ERRCODE = 'foreign_key_violation', DETAIL = 'No event was recorded.';
    END IF;

    INSERT INTO ecrm.campaign_event (campaign_id, customer_id, kind, occurred_at, revenue, order_id, payload)
    SELECT record_campaign_events.campaign_id, ecrm.resolve_customer(u.id), k,
           ecrm._check_time(record_campaign_events.occurred_at, 'occurred_at'), record_campaign_events.revenue,
           record_campaign_events.order_id, ecrm._check_object(record_campaign_events.payload, 'payload', 65536)
      FROM unnest(customer_ids) u(id);
    GET DIAGNOSTICS n = ROW_COUNT;

    -- Unsubscribing withdraws consent for the campaign's purpose.
    IF k = 'unsubscribed' THEN
        INSERT INTO ecrm.consent_event (customer_id, purpose, granted, recorded_at, source, evidence)
        SELECT DISTINCT ecrm.resolve_customer(u.id), purpose, false, record_campaign_events.occurred_at, 'campaign',
               jsonb_build_object('campaign_id', record_campaign_events.campaign_id)
          FROM unnest(customer_ids) u(id);
    END IF;
    RETURN n;
END
$$;
COMMENT ON FUNCTION ecrm.record_campaign_events(bigint, text, bigint[], timestamptz, numeric, bigint, jsonb) IS
    'Record one campaign event kind (sent, delivered, opened, clicked, converted, unsubscribed, bounced) for many recipients at once; unsubscribed also withdraws consent for the campaign''s purpose. Returns the number of events';

CREATE FUNCTION ecrm.record_campaign_event(campaign_id bigint, customer_id bigint, kind text,
                                           occurred_at timestamptz DEFAULT now(), revenue numeric DEFAULT 0,
                                           order_id bigint DEFAULT NULL, payload jsonb DEFAULT '{}') RETURNS bigint
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    PERFORM ecrm._live_customer(record_campaign_event.customer_id);
    PERFORM ecrm.record_campaign_events(campaign_id, kind, ARRAY[customer_id], occurred_at, revenue, order_id, payload);
    RETURN currval(pg_get_serial_sequence('ecrm.campaign_event', 'event_id'));
END
$$;
COMMENT ON FUNCTION ecrm.record_campaign_event(bigint, bigint, text, timestamptz, numeric, bigint, jsonb) IS
    'Record one campaign event for one recipient; returns the event id';

CREATE FUNCTION ecrm.record_consent(customer_id bigint, purpose text, granted boolean,
                                    recorded_at timestamptz DEFAULT now(), source text DEFAULT NULL,
                                    evidence jsonb DEFAULT '{}') RETURNS bigint
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    id bigint;
BEGIN
    IF granted IS NULL THEN
        RAISE EXCEPTION 'granted must be true or false, not null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF purpose IS NULL OR NOT EXISTS (SELECT FROM ecrm.consent_purpose p WHERE p.purpose = record_consent.purpose) THEN
        RAISE EXCEPTION 'unknown consent purpose "%"', left(coalesce(purpose, 'NULL'), 100)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = format('Use one of: %s.', (SELECT string_agg(p.purpose, ', ' ORDER BY p.purpose) FROM ecrm.consent_purpose p));
    END IF;
    INSERT INTO ecrm.consent_event AS e (customer_id, purpose, granted, recorded_at, source, evidence)
    VALUES (ecrm._live_customer(record_consent.customer_id), record_consent.purpose, record_consent.granted,
            ecrm._check_time(record_consent.recorded_at, 'recorded_at'), left(record_consent.source, 200),
            ecrm._check_object(record_consent.evidence, 'evidence', 65536))
    RETURNING e.consent_event_id INTO id;
    RETURN id;
END
$$;
COMMENT ON FUNCTION ecrm.record_consent(bigint, text, boolean, timestamptz, text, jsonb) IS
    'Record that a customer granted or withdrew consent for a purpose; the latest record is in force. Returns the consent event id';

CREATE FUNCTION ecrm.has_consent(customer_id bigint, purpose text) RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT coalesce((SELECT e.granted FROM ecrm.consent_event e
                      WHERE e.customer_id = ecrm.resolve_customer($1) AND e.purpose = $2
                      ORDER BY e.recorded_at DESC, e.consent_event_id DESC LIMIT 1), false)
$$;
COMMENT ON FUNCTION ecrm.has_consent(bigint, text) IS
    'Whether a customer''s consent for a purpose is in force (the latest record wins; no record means no consent). Call it before contacting someone';

------------------------------------------------------------------------------
-- Support tickets and the knowledge base
------------------------------------------------------------------------------
CREATE FUNCTION ecrm.open_ticket(customer_id bigint, subject text, body text DEFAULT NULL,
                                 channel text DEFAULT 'email', category text DEFAULT NULL,
                                 priority text DEFAULT 'normal', language text DEFAULT NULL,
                                 opened_at timestamptz DEFAULT now()) RETURNS bigint
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    cid bigint := ecrm._live_customer(open_ticket.customer_id);
    pr  ecrm.ticket_priority := ecrm._enum_label(coalesce(open_ticket.priority, 'normal'), 'ecrm.ticket_priority', 'priority');
    id  bigint;
BEGIN
    IF subject IS NULL OR btrim(subject) = '' OR length(subject) > 500 THEN
        RAISE EXCEPTION 'ticket subject must be 1 to 500 characters' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF length(body) > 100000 THEN
        RAISE EXCEPTION 'ticket body is too long (% characters, at most 100000)', length(body)
            USING ERRCODE = 'string_data_right_truncation';
    END IF;
    PERFORM ecrm._check_time(open_ticket.opened_at, 'opened_at');
    INSERT INTO ecrm.ticket AS t (customer_id, channel, category, subject, body, priority, language, opened_at,
                                  first_response_due_at, sla_due_at)
    SELECT cid, ecrm._enum_label(coalesce(open_ticket.channel, 'email'), 'ecrm.channel', 'channel')::ecrm.channel,
           left(open_ticket.category, 100), btrim(open_ticket.subject), open_ticket.body, pr,
           left(open_ticket.language, 35), open_ticket.opened_at,
           open_ticket.opened_at + s.first_response, open_ticket.opened_at + s.resolution
      FROM ecrm.sla_target(pr) s
    RETURNING t.ticket_id INTO id;
    INSERT INTO ecrm.ticket_event (ticket_id, customer_id, occurred_at, kind, body)
    VALUES (id, cid, open_ticket.opened_at, 'opened', open_ticket.subject);
    RETURN id;
END
$$;
COMMENT ON FUNCTION ecrm.open_ticket(bigint, text, text, text, text, text, text, timestamptz) IS
    'Open a support ticket; its first-response and resolution due times come from ecrm.sla_policy. Returns the ticket id';

CREATE FUNCTION ecrm.update_ticket(ticket_id bigint, status text DEFAULT NULL, priority text DEFAULT NULL,
                                   team text DEFAULT NULL, assignee text DEFAULT NULL, comment text DEFAULT NULL,
                                   author text DEFAULT NULL, reply boolean DEFAULT false,
                                   at timestamptz DEFAULT now()) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    t   ecrm.ticket;
    st  ecrm.ticket_status := ecrm._enum_label(update_ticket.status, 'ecrm.ticket_status', 'status');
    pr  ecrm.ticket_priority := ecrm._enum_label(update_ticket.priority, 'ecrm.ticket_priority', 'priority');
    who text := coalesce(author, current_user);
BEGIN
    SELECT * INTO t FROM ecrm.ticket x WHERE x.ticket_id = update_ticket.ticket_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'ticket % does not exist', coalesce(update_ticket.ticket_id::text, 'NULL') USING ERRCODE = 'no_data_found';
    END IF;
    PERFORM ecrm._check_time(at, 'at');
    IF at < t.opened_at THEN
        RAISE EXCEPTION 'at (%) is before the ticket was opened (%)', at, t.opened_at USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF reply AND coalesce(btrim(comment), '') = '' THEN
        RAISE EXCEPTION 'a reply needs a comment' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF length(comment) > 100000 THEN
        RAISE EXCEPTION 'comment is too long (% characters, at most 100000)', length(comment)
            USING ERRCODE = 'string_data_right_truncation';
    END IF;

    IF comment IS NOT NULL THEN
        INSERT INTO ecrm.ticket_event (ticket_id, customer_id, occurred_at, kind, author, body)
        VALUES (t.ticket_id, t.customer_id, at, CASE WHEN reply THEN 'reply' ELSE 'comment' END, who, comment);
    END IF;
    IF pr IS NOT NULL AND pr <> t.priority THEN
        INSERT INTO ecrm.ticket_event (ticket_id, customer_id, occurred_at, kind, author, details)
        VALUES (t.ticket_id, t.customer_id, at, 'priority', who, jsonb_build_object('from', t.priority, 'to', pr));
    END IF;
    IF (team IS NOT NULL AND team IS DISTINCT FROM t.team) OR (assignee IS NOT NULL AND assignee IS DISTINCT FROM t.assignee) THEN
        INSERT INTO ecrm.ticket_event (ticket_id, customer_id, occurred_at, kind, author, details)
        VALUES (t.ticket_id, t.customer_id, at, 'assigned', who,
                jsonb_build_object('team', coalesce(team, t.team), 'assignee', coalesce(assignee, t.assignee)));
    END IF;
    IF st IS NOT NULL AND st <> t.status THEN
        INSERT INTO ecrm.ticket_event (ticket_id, customer_id, occurred_at, kind, author, details)
        VALUES (t.ticket_id, t.customer_id, at,
                CASE WHEN st IN ('resolved', 'closed') AND t.status NOT IN ('resolved', 'closed') THEN 'resolved'
                     WHEN st IN ('open', 'pending') AND t.status IN ('resolved', 'closed') THEN 'reopened'
                     ELSE 'status' END,
                who, jsonb_build_object('from', t.status, 'to', st));
    END IF;

    UPDATE ecrm.ticket x SET
        status = coalesce(st, x.status),
        priority = coalesce(pr, x.priority),
        first_response_due_at = CASE WHEN pr IS NULL THEN x.first_response_due_at
                                     ELSE x.opened_at + (ecrm.sla_target(pr)).first_response END,
        sla_due_at = CASE WHEN pr IS NULL THEN x.sla_due_at
                          ELSE x.opened_at + (ecrm.sla_target(pr)).resolution END,
        team = coalesce(update_ticket.team, x.team),
        assignee = coalesce(update_ticket.assignee, x.assignee),
        first_response_at = CASE WHEN reply THEN coalesce(x.first_response_at, at) ELSE x.first_response_at END,
        resolved_at = CASE WHEN coalesce(st, x.status) IN ('resolved', 'closed') THEN coalesce(x.resolved_at, at) END
    WHERE x.ticket_id = t.ticket_id;
END
$$;
COMMENT ON FUNCTION ecrm.update_ticket(bigint, text, text, text, text, text, text, boolean, timestamptz) IS
    'Change a ticket''s status, priority (due times follow), team or assignee, and add a comment or a reply to the customer (the first reply sets first_response_at); every change is kept in ecrm.ticket_event';

CREATE FUNCTION ecrm.resolve_ticket(ticket_id bigint, resolution text DEFAULT NULL, author text DEFAULT NULL,
                                    at timestamptz DEFAULT now()) RETURNS void
    LANGUAGE sql SET search_path = pg_catalog, pg_temp AS
$$
    SELECT ecrm.update_ticket(ticket_id => $1, status => 'resolved', comment => $2, author => $3,
                              reply => $2 IS NOT NULL, at => $4)
$$;
COMMENT ON FUNCTION ecrm.resolve_ticket(bigint, text, text, timestamptz) IS
    'Resolve a ticket, optionally with a reply to the customer';

CREATE FUNCTION ecrm.kb_search(query text, max_results integer DEFAULT 10, config regconfig DEFAULT 'pg_catalog.english')
    RETURNS TABLE (article_id bigint, slug text, title text, rank real, snippet text)
    LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    q_all tsquery;
    q_any tsquery;
BEGIN
    IF max_results IS NULL OR max_results < 1 OR max_results > 1000 THEN
        RAISE EXCEPTION 'max_results must be between 1 and 1000, not %', coalesce(max_results::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF length(query) > 10000 THEN
        RAISE EXCEPTION 'query is too long (% characters, at most 10000)', length(query) USING ERRCODE = 'program_limit_exceeded';
    END IF;
    IF config IS NULL OR NOT EXISTS (SELECT FROM pg_ts_config c WHERE c.oid = config) THEN
        RAISE EXCEPTION 'text search configuration % does not exist', coalesce(config::oid::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Use one such as english, german or simple.';
    END IF;
    IF coalesce(btrim(query), '') = '' THEN
        RETURN;
    END IF;
    q_all := websearch_to_tsquery(config, query);
    -- A question in plain words matches articles with any of them, those with all of them first;
    -- "quotes", -minus and "or" keep their web-search meaning.
    IF query ~ '["-]' OR query ~* '\mor\M' THEN
        q_any := q_all;
    ELSE
        SELECT string_agg(quote_literal(l) || ':*', ' | ')::tsquery INTO q_any
          FROM unnest(tsvector_to_array(to_tsvector(config, coalesce(query, '')))) l;
    END IF;
    IF q_any IS NULL OR numnode(q_any) = 0 THEN
        RETURN;
    END IF;
    RETURN QUERY
    SELECT a.article_id, a.slug, a.title,
           (ts_rank_cd(a.search, q_any, 32) + CASE WHEN a.search @@ q_all THEN 1 ELSE 0 END)::real AS rank,
           ts_headline(config, a.body, q_any, 'StartSel=**, StopSel=**, MaxWords=30, MinWords=10, MaxFragments=2')
      FROM ecrm.kb_article a
     WHERE a.published AND a.search @@ q_any
     ORDER BY rank DESC, a.article_id
     LIMIT max_results;
END
$$;
COMMENT ON FUNCTION ecrm.kb_search(text, integer, regconfig) IS
    'Search published knowledge-base articles: plain words match any of them (articles with all of them rank first, above 1); "phrases", -exclusions and or keep their web-search meaning. Ranked, with a highlighted snippet';
