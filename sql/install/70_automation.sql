
------------------------------------------------------------------------------
-- Automation: message templates, rules (a trigger, conditions, an action),
-- the run ledger that makes every firing happen once, the outbox that
-- senders drain, and run_automation(), the one function a scheduler calls.
-- Support: routing rules, SLA targets, the ticket queue's breach forecast
-- and knowledge-base suggestions for a ticket.
------------------------------------------------------------------------------

------------------------------------------------------------------------------
-- Templates (src/template.c): "{{ first_name | there }}" placeholders
------------------------------------------------------------------------------
CREATE FUNCTION ecrm.template_fields(template text) RETURNS text[]
    AS 'MODULE_PATHNAME', 'ecrm_template_fields'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.template_fields(text) IS
    'Placeholder names of a template ("Hello {{ first_name | there }}" gives {first_name}), in order of first use; a malformed placeholder is an error (SQLSTATE 22P02)';

CREATE FUNCTION ecrm.render_template(template text, fields jsonb) RETURNS text
    AS 'MODULE_PATHNAME', 'ecrm_render_template'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.render_template(text, jsonb) IS
    'A template with each {{ name }} replaced by fields->name (strings as they are, arrays joined with ", "); an absent, null or empty value gives the placeholder''s fallback ({{ name | fallback }}) or nothing';

-- The fields a template can use, and which triggers provide them (NULL: every trigger).
CREATE FUNCTION ecrm.template_vocabulary()
    RETURNS TABLE (field text, trigger_kinds text[], description text)
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT v.field, v.kinds, v.description FROM (VALUES
        (1, 'customer_id', NULL::text[], 'Customer id'),
        (2, 'first_name', NULL, 'First name'),
        (3, 'last_name', NULL, 'Last name'),
        (4, 'full_name', NULL, 'First and last name'),
        (5, 'email', NULL, 'Primary email address'),
        (6, 'phone', NULL, 'Primary phone number'),
        (7, 'company', NULL, 'Company'),
        (8, 'job_title', NULL, 'Job title'),
        (9, 'city', NULL, 'City'),
        (10, 'country', NULL, 'Country code'),
        (11, 'language', NULL, 'Preferred language'),
        (12, 'lifecycle_stage', NULL, 'Lifecycle stage'),
        (13, 'owner', NULL, 'Sales or account owner'),
        (14, 'recommended_products', NULL, 'Names of up to 3 recommended products (ecrm.recommend; empty where recommendations are not installed)'),
        (15, 'rule_name', NULL, 'Name of the automation rule'),
        (16, 'today', NULL, 'The date the action is performed (YYYY-MM-DD)'),
        (20, 'interaction_kind', '{interaction}', 'Kind of the interaction (page_view, ...)'),
        (21, 'interaction_channel', '{interaction}', 'Channel of the interaction'),
        (22, 'product_name', '{interaction}', 'Product of the interaction'),
        (23, 'occurred_at', '{interaction,order}', 'When the interaction or order happened'),
        (30, 'order_id', '{order}', 'Order id'),
        (31, 'order_ref', '{order}', 'Order number in the source system'),
        (32, 'order_total', '{order}', 'Order total'),
        (33, 'currency', '{order}', 'Order currency'),
        (40, 'cart_items', '{cart_abandoned}', 'Names of the products put in the cart since the last order'),
        (41, 'cart_value', '{cart_abandoned}', 'Catalogue value of those products'),
        (42, 'cart_added_at', '{cart_abandoned}', 'When the last product was put in the cart'),
        (50, 'last_order_at', '{no_order}', 'Time of the last order'),
        (51, 'days_since_last_order', '{no_order}', 'Days since the last order'),
        (60, 'score', '{score_threshold}', 'The lead score that crossed the threshold'),
        (61, 'model_id', '{score_threshold}', 'Scoring model id'),
        (70, 'segment', '{segment_entered,segment_exited}', 'Segment name'),
        (80, 'ticket_id', '{ticket_sla_breach}', 'Ticket id'),
        (81, 'ticket_subject', '{ticket_sla_breach}', 'Ticket subject'),
        (82, 'ticket_priority', '{ticket_sla_breach}', 'Ticket priority'),
        (83, 'ticket_team', '{ticket_sla_breach}', 'Team of the ticket'),
        (84, 'due_at', '{ticket_sla_breach}', 'The due time that is breached or about to be'),
        (90, 'date_field', '{date}', 'The date that triggered (birth_date or created_at)'),
        (91, 'anniversary_years', '{date}', 'Years since that date (age on a birthday, years as a customer)'),
        (100, 'from_stage', '{stage_changed}', 'Lifecycle stage before the move'),
        (101, 'to_stage', '{stage_changed}', 'Lifecycle stage after the move')
    ) v(ord, field, kinds, description)
    ORDER BY v.ord;
END;
COMMENT ON FUNCTION ecrm.template_vocabulary() IS
    'Fields a message template or task title can use: customer fields for every rule, and fields of the trigger (trigger_kinds; NULL means every trigger)';

CREATE TABLE ecrm.message_template (
    template_id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    name        text NOT NULL UNIQUE CHECK (name ~ '^[a-z][a-z0-9_.-]{0,62}$'),
    channel     ecrm.channel NOT NULL,
    purpose     text NOT NULL REFERENCES ecrm.consent_purpose,
    subject     text CHECK (length(subject) <= 1000),
    body        text NOT NULL CHECK (length(body) BETWEEN 1 AND 100000),
    fields      text[] NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE ecrm.message_template IS 'Message templates of automation rules: channel, the consent purpose a recipient must have given, subject and body with {{ field }} placeholders';
COMMENT ON COLUMN ecrm.message_template.fields IS 'Placeholders the subject and body use (kept by a trigger)';

-- Validate a template when it is saved: placeholders parse and are known fields.
CREATE FUNCTION ecrm._message_template_check() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    unknown text;
BEGIN
    IF NEW.channel NOT IN ('email', 'phone', 'web', 'chat', 'social') THEN
        RAISE EXCEPTION 'templates are for the email, phone (SMS), web, chat or social channel, not %', NEW.channel
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    NEW.fields := ARRAY(SELECT DISTINCT f FROM unnest(ecrm.template_fields(coalesce(NEW.subject, ''))
                                                      || ecrm.template_fields(NEW.body)) f ORDER BY f);
    SELECT f INTO unknown FROM unnest(NEW.fields) f
     WHERE f NOT IN (SELECT v.field FROM ecrm.template_vocabulary() v) LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'template "%" uses unknown field "%"', NEW.name, unknown
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'ecrm.template_vocabulary() lists the fields a template can use.';
    END IF;
    -- a restored template keeps its time (ecrm._restoring(), 10_store.sql)
    NEW.updated_at := CASE WHEN TG_OP = 'INSERT' AND ecrm._restoring() THEN coalesce(NEW.updated_at, now()) ELSE now() END;
    RETURN NEW;
END
$$;
CREATE TRIGGER message_template_check BEFORE INSERT OR UPDATE ON ecrm.message_template
    FOR EACH ROW EXECUTE FUNCTION ecrm._message_template_check();

CREATE FUNCTION ecrm.save_template(name text, channel text, body text, subject text DEFAULT NULL,
                                   purpose text DEFAULT NULL) RETURNS bigint
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    ch  ecrm.channel;
    pur text;
    id  bigint;
BEGIN
    IF name IS NULL OR name !~ '^[a-z][a-z0-9_.-]{0,62}$' THEN
        RAISE EXCEPTION 'invalid template name "%"', left(coalesce(name, 'NULL'), 100)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A template name is 1 to 63 lower-case letters, digits, "_", "." or "-", starting with a letter.';
    END IF;
    IF channel IS NULL THEN
        RAISE EXCEPTION 'channel must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    ch := ecrm._enum_label(channel, 'ecrm.channel', 'channel');
    IF body IS NULL OR btrim(body) = '' THEN
        RAISE EXCEPTION 'the body of template "%" must not be empty', name USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF length(body) > 100000 OR length(subject) > 1000 THEN
        RAISE EXCEPTION 'template "%" is too long (body at most 100000, subject at most 1000 characters)', name
            USING ERRCODE = 'string_data_right_truncation';
    END IF;
    pur := coalesce(purpose, CASE WHEN ch = 'phone' THEN 'sms' ELSE 'marketing_email' END);
    IF NOT EXISTS (SELECT FROM ecrm.consent_purpose p WHERE p.purpose = pur) THEN
        RAISE EXCEPTION 'unknown consent purpose "%"', left(pur, 100)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = format('Use one of: %s.', (SELECT string_agg(p.purpose, ', ' ORDER BY p.purpose) FROM ecrm.consent_purpose p));
    END IF;
    INSERT INTO ecrm.message_template AS t (name, channel, purpose, subject, body)
    VALUES (save_template.name, ch, pur, save_template.subject, save_template.body)
    ON CONFLICT ON CONSTRAINT message_template_name_key
        DO UPDATE SET channel = EXCLUDED.channel, purpose = EXCLUDED.purpose, subject = EXCLUDED.subject, body = EXCLUDED.body
    RETURNING t.template_id INTO id;
    RETURN id;
END
$$;
COMMENT ON FUNCTION ecrm.save_template(text, text, text, text, text) IS
    'Create or replace a message template by name (channel email, phone for SMS, web, chat or social; purpose defaults to sms for phone, marketing_email otherwise). Placeholders are checked against ecrm.template_vocabulary(). Returns the template id';

------------------------------------------------------------------------------
-- Campaign membership (an action can add customers to a campaign)
------------------------------------------------------------------------------
CREATE TABLE ecrm.campaign_member (
    member_id   bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    campaign_id bigint NOT NULL REFERENCES ecrm.campaign ON DELETE CASCADE,
    customer_id bigint NOT NULL REFERENCES ecrm.customer_profile (customer_id),
    added_at    timestamptz NOT NULL DEFAULT now(),
    rule_id     bigint,
    source      text
);
CREATE INDEX campaign_member_campaign_idx ON ecrm.campaign_member (campaign_id, customer_id);
CREATE INDEX campaign_member_customer_idx ON ecrm.campaign_member (customer_id);
COMMENT ON TABLE ecrm.campaign_member IS 'Customers added to a campaign (by an automation rule or by hand), like Salesforce CampaignMember';

------------------------------------------------------------------------------
-- Rules
------------------------------------------------------------------------------
CREATE TABLE ecrm.automation_rule (
    rule_id        bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    name           text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 200),
    description    text,
    enabled        boolean NOT NULL DEFAULT true,
    trigger_kind   text NOT NULL,
    trigger        jsonb NOT NULL DEFAULT '{}',
    conditions     jsonb NOT NULL DEFAULT '[]',
    action_kind    text NOT NULL,
    action         jsonb NOT NULL DEFAULT '{}',
    delay          interval NOT NULL DEFAULT '0' CHECK (delay >= interval '0'),
    condition_sql  text NOT NULL DEFAULT 'true',
    parent_rule_id bigint,     -- no self-referencing foreign key (pg_dump could not order the rows): see _automation_rule_orphans
    template_id    bigint REFERENCES ecrm.message_template,
    campaign_id    bigint REFERENCES ecrm.campaign,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX automation_rule_trigger_idx ON ecrm.automation_rule (trigger_kind) WHERE enabled;
CREATE INDEX automation_rule_parent_idx ON ecrm.automation_rule (parent_rule_id) WHERE parent_rule_id IS NOT NULL;
COMMENT ON TABLE ecrm.automation_rule IS
    'Automation rules: when a trigger happens (trigger_kind + trigger), and the conditions hold, perform an action (send_message, create_task, set_stage, add_to_campaign) after delay. Validated when saved (ecrm.save_rule or a direct write)';
COMMENT ON COLUMN ecrm.automation_rule.trigger_kind IS
    'interaction, order, cart_abandoned, no_order, score_threshold, segment_entered, segment_exited, ticket_sla_breach, date, stage_changed, or rule (a follow-up of another rule)';
COMMENT ON COLUMN ecrm.automation_rule.condition_sql IS 'The conditions compiled to SQL when the rule is saved (from validated JSON only)';
COMMENT ON COLUMN ecrm.automation_rule.delay IS 'How long after the trigger the action is due; its conditions are checked then';

-- A string field of a JSON object of rule settings, or an error naming it.
CREATE FUNCTION ecrm._rule_text(doc jsonb, field text, what text, required boolean DEFAULT false) RETURNS text
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    IF doc -> field IS NULL OR jsonb_typeof(doc -> field) = 'null' THEN
        IF required THEN
            RAISE EXCEPTION '% needs "%"', what, field USING ERRCODE = 'invalid_parameter_value';
        END IF;
        RETURN NULL;
    END IF;
    IF jsonb_typeof(doc -> field) <> 'string' THEN
        RAISE EXCEPTION '"%" of % must be a string, not %', field, what, jsonb_typeof(doc -> field)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF length(doc ->> field) > 10000 THEN
        RAISE EXCEPTION '"%" of % is too long', field, what USING ERRCODE = 'string_data_right_truncation';
    END IF;
    RETURN doc ->> field;
END
$$;

-- A number field of a JSON object of rule settings within [lo, hi], or an error naming it.
CREATE FUNCTION ecrm._rule_number(doc jsonb, field text, what text, lo numeric, hi numeric,
                                  required boolean DEFAULT false, whole boolean DEFAULT false) RETURNS numeric
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    v numeric;
BEGIN
    -- -Infinity and Infinity are open bounds; NaN is no bound at all
    IF lo = 'NaN' OR hi = 'NaN' THEN
        RAISE EXCEPTION 'bounds of "%" of % must not be NaN', field, what USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF doc -> field IS NULL OR jsonb_typeof(doc -> field) = 'null' THEN
        IF required THEN
            RAISE EXCEPTION '% needs "%"', what, field USING ERRCODE = 'invalid_parameter_value';
        END IF;
        RETURN NULL;
    END IF;
    IF jsonb_typeof(doc -> field) <> 'number' THEN
        RAISE EXCEPTION '"%" of % must be a number, not %', field, what, jsonb_typeof(doc -> field)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v := (doc ->> field)::numeric;
    IF v < lo OR v > hi OR (whole AND v <> trunc(v)) THEN
        RAISE EXCEPTION '"%" of % must be a % from % to %, not %', field, what,
                        CASE WHEN whole THEN 'whole number' ELSE 'number' END, lo, hi, v
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN v;
END
$$;

-- An interval field (text such as "4 hours") within [lo, hi], or an error naming it.
CREATE FUNCTION ecrm._rule_interval(doc jsonb, field text, what text, lo interval, hi interval,
                                    dflt interval DEFAULT NULL) RETURNS interval
    LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    s text := ecrm._rule_text(doc, field, what, dflt IS NULL);
    v interval;
BEGIN
    -- the bounds (and a default) come from ecrm's own callers: an interval outside them is never returned
    IF lo IS NULL OR hi IS NULL OR lo < interval '0' OR hi > interval '100 years' OR lo > hi THEN
        RAISE EXCEPTION 'the bounds of "%" of % must be intervals with 0 <= low <= high <= 100 years, not % and %', field, what, lo, hi
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF dflt < lo OR dflt > hi THEN
        RAISE EXCEPTION 'the default of "%" of % must be between % and %, not %', field, what, lo, hi, dflt
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF s IS NULL THEN
        RETURN dflt;
    END IF;
    BEGIN
        v := s::interval;
    EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow OR interval_field_overflow THEN
        RAISE EXCEPTION '"%" of % is not a valid interval: "%"', field, what, left(s, 100)
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Write an interval such as ''4 hours'' or ''3 days''.';
    END;
    IF v < interval '0' THEN
        RAISE EXCEPTION '"%" of % must not be negative: %', field, what, v USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF v < lo OR v > hi THEN
        RAISE EXCEPTION '"%" of % must be between % and %, not %', field, what, lo, hi, v
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN v;
END
$$;

-- Rules restored from a dump (ecrm._restoring(), 10_store.sql) were valid where they came from, and the
-- rows they refer to (a parent rule, a segment) may only arrive later in the same restore: checks that
-- look at other rows are skipped for them.  Everything a rule runs is still compiled here from its JSON.

-- The segment named in a rule, checked against ecrm.segment (issue 6) when segments are installed.
CREATE FUNCTION ecrm._check_segment(segment text, what text) RETURNS text
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    found boolean;
BEGIN
    IF segment IS NULL OR btrim(segment) = '' THEN
        RAISE EXCEPTION '% needs a segment name', what USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF ecrm._restoring() THEN
        RETURN segment;
    END IF;
    IF to_regclass('ecrm.segment') IS NULL OR to_regprocedure('ecrm.in_segment(bigint,text)') IS NULL THEN
        RAISE EXCEPTION 'segment "%" cannot be used: segments are not installed', left(segment, 100)
            USING ERRCODE = 'feature_not_supported',
                  DETAIL = format('%s refers to a segment, but ecrm.segment and ecrm.in_segment() do not exist.', what),
                  HINT = 'Install the segments capability of ecrm first.';
    END IF;
    EXECUTE 'SELECT EXISTS (SELECT FROM ecrm.segment s WHERE s.name = $1)' INTO found USING segment;
    IF NOT found THEN
        RAISE EXCEPTION 'segment "%" does not exist', left(segment, 100)
            USING ERRCODE = 'foreign_key_violation', DETAIL = format('%s refers to it.', what);
    END IF;
    RETURN segment;
END
$$;

-- A comparison operator of a condition.
CREATE FUNCTION ecrm._rule_op(op text, what text) RETURNS text
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    IF op IS NULL OR op NOT IN ('=', '<>', '<', '<=', '>', '>=') THEN
        RAISE EXCEPTION 'invalid operator "%" in %', left(coalesce(op, 'NULL'), 20), what
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Use one of =, <>, <, <=, >, >=.';
    END IF;
    RETURN op;
END
$$;

-- numeric from text, NULL when the text is not a number (attribute conditions never fail at run time)
CREATE FUNCTION ecrm._to_numeric(value text) RETURNS numeric
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE WHEN value ~ '^\s*-?[0-9]{1,30}(\.[0-9]{1,30})?\s*$' THEN value::numeric END;

-- Compile the conditions of a rule (a JSON array, all must hold) to a SQL expression over
-- c (the ecrm.customer_profile row) and r (the ecrm.automation_run row).  Every name comes
-- from a fixed list and every value is quoted with format(%L), so the result is safe to run.
CREATE FUNCTION ecrm._compile_conditions(conditions jsonb, rule_name text) RETURNS text
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    cond  jsonb;
    i     int := 0;
    parts text[] := '{}';
    what  text;
    k     text;
    fld   text;
    expr  text;
    op    text;
    val   jsonb;
    sub   jsonb;
    stage boolean;
    lits  text;
    nkeys int;
BEGIN
    IF conditions IS NULL OR jsonb_typeof(conditions) = 'null' THEN
        RETURN 'true';
    END IF;
    IF jsonb_typeof(conditions) <> 'array' THEN
        RAISE EXCEPTION 'conditions of rule "%" must be a JSON array of condition objects, not %', rule_name, jsonb_typeof(conditions)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF jsonb_array_length(conditions) > 50 THEN
        RAISE EXCEPTION 'rule "%" has % conditions, at most 50', rule_name, jsonb_array_length(conditions)
            USING ERRCODE = 'program_limit_exceeded';
    END IF;
    FOR cond IN SELECT e FROM jsonb_array_elements(conditions) e LOOP
        i := i + 1;
        what := format('condition %s of rule "%s"', i, rule_name);
        IF jsonb_typeof(cond) <> 'object' THEN
            RAISE EXCEPTION '% must be an object, not %', what, jsonb_typeof(cond) USING ERRCODE = 'invalid_parameter_value';
        END IF;
        SELECT count(*) INTO nkeys FROM jsonb_object_keys(cond);
        IF cond ? 'field' THEN
            FOR k IN SELECT jsonb_object_keys(cond) LOOP
                IF k NOT IN ('field', 'op', 'value') THEN
                    RAISE EXCEPTION 'unknown key "%" in %', left(k, 100), what
                        USING ERRCODE = 'invalid_parameter_value', HINT = 'A field condition is {"field": ..., "op": ..., "value": ...}.';
                END IF;
            END LOOP;
            fld := ecrm._rule_text(cond, 'field', what, true);
            stage := fld = 'lifecycle_stage';
            IF fld IN ('country', 'language', 'city', 'region', 'postal_code', 'source', 'owner', 'company', 'job_title') THEN
                expr := format('c.%I', fld);
            ELSIF fld = 'email_domain' THEN
                expr := 'lower(split_part(c.email, ''@'', 2))';
            ELSIF stage THEN
                expr := 'c.lifecycle_stage';
            ELSIF fld ~ '^attributes\.[A-Za-z0-9_]{1,63}$' THEN
                expr := format('(c.attributes ->> %L)', substr(fld, 12));
            ELSE
                RAISE EXCEPTION 'unknown field "%" in %', left(fld, 100), what
                    USING ERRCODE = 'invalid_parameter_value',
                          HINT = 'Use country, language, city, region, postal_code, source, owner, company, job_title, email_domain, lifecycle_stage or attributes.<key>.';
            END IF;
            op := coalesce(ecrm._rule_text(cond, 'op', what), '=');
            val := cond -> 'value';
            IF op IN ('is_null', 'is_not_null') THEN
                IF val IS NOT NULL THEN
                    RAISE EXCEPTION '% takes no value with operator %', what, op USING ERRCODE = 'invalid_parameter_value';
                END IF;
                parts := parts || format('(%s IS %s NULL)', expr, CASE WHEN op = 'is_null' THEN '' ELSE 'NOT' END);
                CONTINUE;
            END IF;
            IF op IN ('in', 'not_in') THEN
                IF val IS NULL OR jsonb_typeof(val) <> 'array' OR jsonb_array_length(val) NOT BETWEEN 1 AND 1000
                   OR EXISTS (SELECT FROM jsonb_array_elements(val) e WHERE jsonb_typeof(e) <> 'string') THEN
                    RAISE EXCEPTION '% needs a "value" that is an array of 1 to 1000 strings for operator %', what, op
                        USING ERRCODE = 'invalid_parameter_value';
                END IF;
                IF stage THEN
                    PERFORM ecrm._enum_label(e, 'ecrm.lifecycle_stage', 'lifecycle_stage') FROM jsonb_array_elements_text(val) e;
                END IF;
                SELECT string_agg(format('%L', e) || CASE WHEN stage THEN '::ecrm.lifecycle_stage' ELSE '' END, ', ')
                  INTO lits FROM jsonb_array_elements_text(val) e;
                parts := parts || format('(%s %s (%s))', expr, CASE WHEN op = 'in' THEN 'IN' ELSE 'NOT IN' END, lits);
                CONTINUE;
            END IF;
            op := ecrm._rule_op(op, what);
            IF val IS NULL OR jsonb_typeof(val) NOT IN ('string', 'number') THEN
                RAISE EXCEPTION '% needs a "value" that is a string or a number', what USING ERRCODE = 'invalid_parameter_value';
            END IF;
            IF stage THEN
                PERFORM ecrm._enum_label(val #>> '{}', 'ecrm.lifecycle_stage', 'lifecycle_stage');
                parts := parts || format('(%s %s %L::ecrm.lifecycle_stage)', expr, op, val #>> '{}');
            ELSIF jsonb_typeof(val) = 'number' THEN
                parts := parts || format('(ecrm._to_numeric(%s) %s %s)', expr, op, (val #>> '{}')::numeric);
            ELSE
                parts := parts || format('(%s %s %L)', expr, op, val #>> '{}');
            END IF;
        ELSIF nkeys <> 1 THEN
            RAISE EXCEPTION '% must have exactly one key (or field, op and value)', what
                USING ERRCODE = 'invalid_parameter_value';
        ELSIF cond ? 'segment' OR cond ? 'not_segment' THEN
            k := CASE WHEN cond ? 'segment' THEN 'segment' ELSE 'not_segment' END;
            parts := parts || format('(%s coalesce(ecrm.in_segment(c.customer_id, %L), false))',
                                     CASE WHEN k = 'segment' THEN '' ELSE 'NOT' END,
                                     ecrm._check_segment(ecrm._rule_text(cond, k, what, true), what));
        ELSIF cond ? 'consent' THEN
            fld := ecrm._rule_text(cond, 'consent', what, true);
            IF NOT EXISTS (SELECT FROM ecrm.consent_purpose p WHERE p.purpose = fld) THEN
                RAISE EXCEPTION 'unknown consent purpose "%" in %', left(fld, 100), what USING ERRCODE = 'invalid_parameter_value';
            END IF;
            parts := parts || format('ecrm.has_consent(c.customer_id, %L)', fld);
        ELSIF cond ? 'ordered_since_trigger' THEN
            IF jsonb_typeof(cond -> 'ordered_since_trigger') <> 'boolean' THEN
                RAISE EXCEPTION '"ordered_since_trigger" of % must be true or false', what USING ERRCODE = 'invalid_parameter_value';
            END IF;
            parts := parts || format('(%s EXISTS (SELECT FROM ecrm.orders o WHERE o.customer_id = c.customer_id AND o.ordered_at >= r.triggered_at AND o.status NOT IN (''cancelled'', ''returned'')))',
                                     CASE WHEN (cond ->> 'ordered_since_trigger')::boolean THEN '' ELSE 'NOT' END);
        ELSIF cond ? 'orders' OR cond ? 'revenue' OR cond ? 'days_since_last_order' THEN
            k := (SELECT x FROM jsonb_object_keys(cond) x);
            sub := cond -> k;
            IF jsonb_typeof(sub) <> 'object' OR EXISTS (SELECT FROM jsonb_object_keys(sub) x WHERE x NOT IN ('op', 'value')) THEN
                RAISE EXCEPTION '"%" of % must be an object {"op": ..., "value": ...}', k, what USING ERRCODE = 'invalid_parameter_value';
            END IF;
            op := ecrm._rule_op(coalesce(ecrm._rule_text(sub, 'op', what), '>='), what);
            expr := CASE k
                WHEN 'orders' THEN '(SELECT count(*) FROM ecrm.orders o WHERE o.customer_id = c.customer_id AND o.status NOT IN (''cancelled'', ''returned''))'
                WHEN 'revenue' THEN '(SELECT coalesce(sum(o.total), 0) FROM ecrm.orders o WHERE o.customer_id = c.customer_id AND o.status <> ''cancelled'')'
                ELSE '(SELECT extract(epoch FROM $3 - max(o.ordered_at)) / 86400 FROM ecrm.orders o WHERE o.customer_id = c.customer_id AND o.status NOT IN (''cancelled'', ''returned''))' END;
            parts := parts || format('(%s %s %s)', expr, op, ecrm._rule_number(sub, 'value', what, -1e12, 1e12, true));
        ELSIF cond ? 'score' THEN
            sub := cond -> 'score';
            IF jsonb_typeof(sub) <> 'object' OR EXISTS (SELECT FROM jsonb_object_keys(sub) x WHERE x NOT IN ('model_id', 'op', 'value')) THEN
                RAISE EXCEPTION '"score" of % must be an object {"model_id": ..., "op": ..., "value": ...}', what USING ERRCODE = 'invalid_parameter_value';
            END IF;
            IF to_regclass('ecrm.lead_score') IS NULL THEN
                RAISE EXCEPTION '% uses lead scores, but lead scores are not installed', what
                    USING ERRCODE = 'feature_not_supported', DETAIL = 'The table ecrm.lead_score does not exist.';
            END IF;
            op := ecrm._rule_op(coalesce(ecrm._rule_text(sub, 'op', what), '>='), what);
            parts := parts || format('EXISTS (SELECT FROM ecrm.lead_score s WHERE s.customer_id = c.customer_id%s AND s.score %s %s)',
                                     coalesce(' AND s.model_id = ' || ecrm._rule_number(sub, 'model_id', what, 1, 9e18, false, true), ''),
                                     op, ecrm._rule_number(sub, 'value', what, -1e12, 1e12, true));
        ELSE
            RAISE EXCEPTION 'unknown condition "%" in rule "%"', left((SELECT x FROM jsonb_object_keys(cond) x), 100), rule_name
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Conditions are {"field", "op", "value"}, {"segment"}, {"not_segment"}, {"consent"}, {"orders"}, {"revenue"}, {"days_since_last_order"}, {"score"} or {"ordered_since_trigger"}.';
        END IF;
    END LOOP;
    RETURN CASE WHEN cardinality(parts) = 0 THEN 'true' ELSE array_to_string(parts, ' AND ') END;
END
$$;

-- Fields a rule's trigger provides (follow-ups inherit those of the rule they follow).
CREATE FUNCTION ecrm._rule_fields(trigger_kind text, parent_rule_id bigint) RETURNS text[]
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    kinds text[] := ARRAY[trigger_kind];
    p     bigint := parent_rule_id;
    pk    text;
    hops  int := 0;
BEGIN
    WHILE p IS NOT NULL AND hops < 100 LOOP
        SELECT r.trigger_kind, r.parent_rule_id INTO pk, p FROM ecrm.automation_rule r WHERE r.rule_id = p;
        kinds := kinds || pk;
        hops := hops + 1;
    END LOOP;
    RETURN ARRAY(SELECT v.field FROM ecrm.template_vocabulary() v
                  WHERE v.trigger_kinds IS NULL OR v.trigger_kinds && kinds);
END
$$;

-- Validate a rule when it is saved (INSERT or UPDATE, through save_rule or directly) and compile it.
CREATE FUNCTION ecrm._automation_rule_check() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    t       jsonb := coalesce(NEW.trigger, '{}');
    a       jsonb := coalesce(NEW.action, '{}');
    what    text := format('the trigger of rule "%s"', NEW.name);
    awhat   text := format('the action of rule "%s"', NEW.name);
    allowed text[];
    k       text;
    ct      jsonb := '{}';
    ca      jsonb := '{}';
    used    text[] := '{}';
    avail   text[];
    bad     text;
    tpl     ecrm.message_template;
    cyc     text;
    restoring boolean := ecrm._restoring();
    given_parent bigint;
BEGIN
    -- one rule save at a time, so the cycle check below sees every other rule
    PERFORM pg_advisory_xact_lock(hashtext('ecrm.automation_rule'));
    IF NEW.name IS NULL OR btrim(NEW.name) = '' OR length(NEW.name) > 200 THEN
        RAISE EXCEPTION 'rule name must be 1 to 200 characters' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF jsonb_typeof(t) <> 'object' THEN
        RAISE EXCEPTION '% must be a JSON object, not %', what, jsonb_typeof(t) USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF jsonb_typeof(a) <> 'object' THEN
        RAISE EXCEPTION '% must be a JSON object, not %', awhat, jsonb_typeof(a) USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NEW.delay IS NULL OR NEW.delay < interval '0' THEN
        RAISE EXCEPTION 'delay of rule "%" must not be negative: %', NEW.name, coalesce(NEW.delay::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NEW.delay > interval '366 days' THEN
        RAISE EXCEPTION 'delay of rule "%" must be at most 366 days, not %', NEW.name, NEW.delay
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- the trigger
    allowed := CASE NEW.trigger_kind
        WHEN 'interaction' THEN '{kind,channel,max_age}'
        WHEN 'order' THEN '{min_total,first_order,max_age}'
        WHEN 'cart_abandoned' THEN '{after,lookback}'
        WHEN 'no_order' THEN '{days,lookback}'
        WHEN 'score_threshold' THEN '{at_least,model_id}'
        WHEN 'segment_entered' THEN '{segment}'
        WHEN 'segment_exited' THEN '{segment}'
        WHEN 'ticket_sla_breach' THEN '{target,before,lookback}'
        WHEN 'date' THEN '{field,days_before}'
        WHEN 'stage_changed' THEN '{to,from,max_age}'
        WHEN 'rule' THEN '{rule}' END::text[];
    IF allowed IS NULL THEN
        RAISE EXCEPTION 'unknown trigger kind "%" in rule "%"', left(coalesce(NEW.trigger_kind, 'NULL'), 100), NEW.name
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use interaction, order, cart_abandoned, no_order, score_threshold, segment_entered, segment_exited, ticket_sla_breach, date, stage_changed or rule.';
    END IF;
    FOR k IN SELECT jsonb_object_keys(t) LOOP
        IF NOT k = ANY (allowed) THEN
            RAISE EXCEPTION 'unknown setting "%" in %', left(k, 100), what
                USING ERRCODE = 'invalid_parameter_value', HINT = format('A %s trigger takes: %s.', NEW.trigger_kind, array_to_string(allowed, ', '));
        END IF;
    END LOOP;
    given_parent := NEW.parent_rule_id;
    NEW.parent_rule_id := NULL;
    CASE NEW.trigger_kind
    WHEN 'interaction' THEN
        ct := jsonb_build_object('kind', ecrm._check_kind(ecrm._rule_text(t, 'kind', what, true)));
        IF ecrm._rule_text(t, 'channel', what) IS NOT NULL THEN
            ct := ct || jsonb_build_object('channel', ecrm._enum_label(t ->> 'channel', 'ecrm.channel', 'channel'));
        END IF;
        ct := ct || jsonb_build_object('max_age', ecrm._rule_interval(t, 'max_age', what, '1 minute', '3650 days', '1 day'));
    WHEN 'order' THEN
        ct := jsonb_strip_nulls(jsonb_build_object('min_total', ecrm._rule_number(t, 'min_total', what, 0, 1e12)));
        IF t ? 'first_order' THEN
            IF jsonb_typeof(t -> 'first_order') <> 'boolean' THEN
                RAISE EXCEPTION '"first_order" of % must be true or false', what USING ERRCODE = 'invalid_parameter_value';
            END IF;
            ct := ct || jsonb_build_object('first_order', t -> 'first_order');
        END IF;
        ct := ct || jsonb_build_object('max_age', ecrm._rule_interval(t, 'max_age', what, '1 minute', '3650 days', '1 day'));
    WHEN 'cart_abandoned' THEN
        ct := jsonb_build_object('after', ecrm._rule_interval(t, 'after', what, '1 minute', '90 days'),
                                 'lookback', ecrm._rule_interval(t, 'lookback', what, '1 minute', '365 days', '7 days'));
    WHEN 'no_order' THEN
        ct := jsonb_build_object('days', ecrm._rule_number(t, 'days', what, 1, 3650, true, true),
                                 'lookback', ecrm._rule_interval(t, 'lookback', what, '1 day', '3650 days', '7 days'));
    WHEN 'score_threshold' THEN
        IF to_regclass('ecrm.lead_score') IS NULL THEN
            RAISE EXCEPTION 'rule "%" reacts to lead scores, but lead scores are not installed', NEW.name
                USING ERRCODE = 'feature_not_supported', DETAIL = 'The table ecrm.lead_score does not exist.',
                      HINT = 'Install the lead-scoring capability of ecrm first.';
        END IF;
        ct := jsonb_strip_nulls(jsonb_build_object('at_least', ecrm._rule_number(t, 'at_least', what, -1e12, 1e12, true),
                                                   'model_id', ecrm._rule_number(t, 'model_id', what, 1, 9e18, false, true)));
    WHEN 'segment_entered', 'segment_exited' THEN
        IF to_regclass('ecrm.segment_event') IS NULL THEN
            RAISE EXCEPTION 'rule "%" reacts to segment changes, but segments are not installed', NEW.name
                USING ERRCODE = 'feature_not_supported', DETAIL = 'The table ecrm.segment_event does not exist.',
                      HINT = 'Install the segments capability of ecrm first.';
        END IF;
        ct := jsonb_build_object('segment', ecrm._check_segment(ecrm._rule_text(t, 'segment', what, true), what));
    WHEN 'ticket_sla_breach' THEN
        k := coalesce(ecrm._rule_text(t, 'target', what), 'resolution');
        IF k NOT IN ('resolution', 'first_response') THEN
            RAISE EXCEPTION '"target" of % must be resolution or first_response, not "%"', what, left(k, 100)
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        ct := jsonb_build_object('target', k,
                                 'before', ecrm._rule_interval(t, 'before', what, '0', '30 days', '0'),
                                 'lookback', ecrm._rule_interval(t, 'lookback', what, '1 minute', '365 days', '7 days'));
    WHEN 'date' THEN
        k := ecrm._rule_text(t, 'field', what, true);
        IF k NOT IN ('birth_date', 'created_at') THEN
            RAISE EXCEPTION '"field" of % must be birth_date or created_at, not "%"', what, left(k, 100)
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        ct := jsonb_build_object('field', k, 'days_before', coalesce(ecrm._rule_number(t, 'days_before', what, 0, 365, false, true), 0));
    WHEN 'stage_changed' THEN
        ct := jsonb_strip_nulls(jsonb_build_object(
                'to', ecrm._enum_label(ecrm._rule_text(t, 'to', what), 'ecrm.lifecycle_stage', 'stage'),
                'from', ecrm._enum_label(ecrm._rule_text(t, 'from', what), 'ecrm.lifecycle_stage', 'stage')))
              || jsonb_build_object('max_age', ecrm._rule_interval(t, 'max_age', what, '1 minute', '3650 days', '1 day'));
    WHEN 'rule' THEN
        k := ecrm._rule_text(t, 'rule', what, true);
        IF restoring AND given_parent IS NOT NULL THEN
            NEW.parent_rule_id := given_parent;   -- the foreign key checks it at the end of the COPY
        ELSE
            SELECT r.rule_id INTO NEW.parent_rule_id FROM ecrm.automation_rule r WHERE r.name = k;
        END IF;
        IF NEW.parent_rule_id IS NULL THEN
            RAISE EXCEPTION 'rule "%" follows rule "%", which does not exist', NEW.name, left(k, 200)
                USING ERRCODE = 'foreign_key_violation';
        END IF;
        ct := jsonb_build_object('rule', k);
    END CASE;
    NEW.trigger := ct;

    -- the conditions
    NEW.conditions := coalesce(NEW.conditions, '[]');
    NEW.condition_sql := ecrm._compile_conditions(NEW.conditions, NEW.name);

    -- the action
    NEW.template_id := NULL;
    NEW.campaign_id := NULL;
    CASE NEW.action_kind
    WHEN 'send_message' THEN
        FOR k IN SELECT jsonb_object_keys(a) LOOP
            IF k <> 'template' THEN
                RAISE EXCEPTION 'unknown setting "%" in %', left(k, 100), awhat
                    USING ERRCODE = 'invalid_parameter_value', HINT = 'A send_message action takes: template.';
            END IF;
        END LOOP;
        SELECT * INTO tpl FROM ecrm.message_template m WHERE m.name = ecrm._rule_text(a, 'template', awhat, true);
        IF NOT FOUND THEN
            RAISE EXCEPTION 'template "%" does not exist', left(a ->> 'template', 100)
                USING ERRCODE = 'foreign_key_violation', DETAIL = format('%s refers to it.', awhat),
                      HINT = 'Create it with ecrm.save_template().';
        END IF;
        NEW.template_id := tpl.template_id;
        used := tpl.fields;
        ca := jsonb_build_object('template', tpl.name);
    WHEN 'create_task' THEN
        FOR k IN SELECT jsonb_object_keys(a) LOOP
            IF k NOT IN ('title', 'notes', 'assignee', 'due_in') THEN
                RAISE EXCEPTION 'unknown setting "%" in %', left(k, 100), awhat
                    USING ERRCODE = 'invalid_parameter_value', HINT = 'A create_task action takes: title, notes, assignee, due_in.';
            END IF;
        END LOOP;
        k := ecrm._rule_text(a, 'title', awhat, true);
        IF btrim(k) = '' OR length(k) > 500 THEN
            RAISE EXCEPTION 'the task title in % must be 1 to 500 characters', awhat USING ERRCODE = 'invalid_parameter_value';
        END IF;
        used := ecrm.template_fields(k) || ecrm.template_fields(coalesce(ecrm._rule_text(a, 'notes', awhat), ''));
        ca := jsonb_strip_nulls(jsonb_build_object(
                'title', k, 'notes', a ->> 'notes',
                'assignee', coalesce(nullif(btrim(ecrm._rule_text(a, 'assignee', awhat)), ''), 'owner'),
                'due_in', ecrm._rule_interval(a, 'due_in', awhat, '0', '366 days', '1 day')));
    WHEN 'set_stage' THEN
        FOR k IN SELECT jsonb_object_keys(a) LOOP
            IF k NOT IN ('stage', 'only_forward') THEN
                RAISE EXCEPTION 'unknown setting "%" in %', left(k, 100), awhat
                    USING ERRCODE = 'invalid_parameter_value', HINT = 'A set_stage action takes: stage, only_forward.';
            END IF;
        END LOOP;
        IF a ? 'only_forward' AND jsonb_typeof(a -> 'only_forward') <> 'boolean' THEN
            RAISE EXCEPTION '"only_forward" of % must be true or false', awhat USING ERRCODE = 'invalid_parameter_value';
        END IF;
        ca := jsonb_build_object('stage', ecrm._enum_label(ecrm._rule_text(a, 'stage', awhat, true), 'ecrm.lifecycle_stage', 'stage'),
                                 'only_forward', coalesce((a ->> 'only_forward')::boolean, true));
    WHEN 'add_to_campaign' THEN
        FOR k IN SELECT jsonb_object_keys(a) LOOP
            IF k <> 'campaign' THEN
                RAISE EXCEPTION 'unknown setting "%" in %', left(k, 100), awhat
                    USING ERRCODE = 'invalid_parameter_value', HINT = 'An add_to_campaign action takes: campaign (its name).';
            END IF;
        END LOOP;
        SELECT c.campaign_id INTO NEW.campaign_id FROM ecrm.campaign c WHERE c.name = ecrm._rule_text(a, 'campaign', awhat, true);
        IF NOT FOUND THEN
            RAISE EXCEPTION 'campaign "%" does not exist', left(a ->> 'campaign', 200)
                USING ERRCODE = 'foreign_key_violation', DETAIL = format('%s refers to it.', awhat);
        END IF;
        ca := jsonb_build_object('campaign', a ->> 'campaign');
    ELSE
        RAISE EXCEPTION 'unknown action kind "%" in rule "%"', left(coalesce(NEW.action_kind, 'NULL'), 100), NEW.name
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Use send_message, create_task, set_stage or add_to_campaign.';
    END CASE;
    NEW.action := ca;

    -- every field the message or task uses must come from this rule's trigger
    IF restoring THEN
        NEW.updated_at := coalesce(NEW.updated_at, now());
        RETURN NEW;
    END IF;
    avail := ecrm._rule_fields(NEW.trigger_kind, NEW.parent_rule_id);
    SELECT u INTO bad FROM unnest(used) u WHERE NOT u = ANY (avail) LIMIT 1;
    IF FOUND THEN
        IF NOT bad IN (SELECT v.field FROM ecrm.template_vocabulary() v) THEN
            RAISE EXCEPTION 'rule "%" uses unknown field "%"', NEW.name, bad
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Fields available to a ' || NEW.trigger_kind || ' trigger: ' || array_to_string(avail, ', ') || '.';
        END IF;
        RAISE EXCEPTION 'rule "%" uses field "%", which a % trigger does not provide', NEW.name, bad, NEW.trigger_kind
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Fields available to a ' || NEW.trigger_kind || ' trigger: ' || array_to_string(avail, ', ') || '.';
    END IF;

    -- no rule may trigger itself again, through follow-ups or stage changes
    WITH RECURSIVE rules AS (
        SELECT r.rule_id, r.name, r.trigger_kind, r.trigger, r.action_kind, r.action, r.parent_rule_id
          FROM ecrm.automation_rule r WHERE r.rule_id <> NEW.rule_id
        UNION ALL
        SELECT NEW.rule_id, NEW.name, NEW.trigger_kind, NEW.trigger, NEW.action_kind, NEW.action, NEW.parent_rule_id),
    edges AS (
        SELECT p.rule_id AS src, c.rule_id AS dst
          FROM rules p JOIN rules c ON c.trigger_kind = 'rule' AND c.parent_rule_id = p.rule_id
        UNION
        SELECT p.rule_id, c.rule_id
          FROM rules p JOIN rules c ON p.action_kind = 'set_stage' AND c.trigger_kind = 'stage_changed'
                                   AND coalesce(c.trigger ->> 'to', p.action ->> 'stage') = p.action ->> 'stage'),
    walk (node, path) AS (
        SELECT e.dst, ARRAY[NEW.rule_id, e.dst] FROM edges e WHERE e.src = NEW.rule_id
        UNION ALL
        SELECT e.dst, w.path || e.dst
          FROM walk w JOIN edges e ON e.src = w.node
         WHERE w.node <> NEW.rule_id AND NOT e.dst = ANY (w.path[2:]) AND cardinality(w.path) < 1000)
    SELECT string_agg(format('"%s"', (SELECT x.name FROM rules x WHERE x.rule_id = p.id)), ' -> ' ORDER BY p.ord)
      INTO cyc
      FROM (SELECT w.path FROM walk w WHERE w.node = NEW.rule_id LIMIT 1) c, unnest(c.path) WITH ORDINALITY p(id, ord);
    IF cyc IS NOT NULL THEN
        RAISE EXCEPTION 'rule "%" would start a cycle of rules: %', NEW.name, cyc
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'Each rule in the cycle triggers the next (a follow-up, or a stage change another rule reacts to).';
    END IF;
    NEW.updated_at := now();
    RETURN NEW;
END
$$;
CREATE TRIGGER automation_rule_check BEFORE INSERT OR UPDATE ON ecrm.automation_rule
    FOR EACH ROW EXECUTE FUNCTION ecrm._automation_rule_check();

-- parent_rule_id has no foreign key to its own table: pg_dump cannot order the rows of a self-referencing
-- extension table and warns of circular foreign keys.  A new parent is checked when the rule is saved
-- (above); what the key's NO ACTION did on the other side is done here, at the end of the statement: a
-- rule that still has follow-ups cannot be deleted or renumbered.  It reads only this table.
CREATE FUNCTION ecrm._automation_rule_orphans() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    bad record;
BEGIN
    SELECT c.name AS child, c.parent_rule_id AS parent INTO bad
      FROM ecrm.automation_rule c
     WHERE c.parent_rule_id IN (SELECT o.rule_id FROM old_rows o)
       AND NOT EXISTS (SELECT FROM ecrm.automation_rule p WHERE p.rule_id = c.parent_rule_id)
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'automation rule % still has follow-up rules', bad.parent
            USING ERRCODE = 'foreign_key_violation',
                  DETAIL = format('Rule "%s" follows it (parent_rule_id = %s).', bad.child, bad.parent),
                  HINT = 'Delete or change the follow-up rules first.';
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER automation_rule_parent_del AFTER DELETE ON ecrm.automation_rule REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION ecrm._automation_rule_orphans();
CREATE TRIGGER automation_rule_parent_upd AFTER UPDATE ON ecrm.automation_rule REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION ecrm._automation_rule_orphans();

CREATE FUNCTION ecrm.save_rule(name text, trigger_kind text, trigger jsonb, action_kind text, action jsonb,
                               conditions jsonb DEFAULT '[]', delay interval DEFAULT '0',
                               enabled boolean DEFAULT true, description text DEFAULT NULL) RETURNS bigint
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    id bigint;
BEGIN
    INSERT INTO ecrm.automation_rule AS r (name, trigger_kind, trigger, action_kind, action, conditions, delay, enabled, description)
    VALUES (btrim(save_rule.name), save_rule.trigger_kind, coalesce(save_rule.trigger, '{}'), save_rule.action_kind,
            coalesce(save_rule.action, '{}'), coalesce(save_rule.conditions, '[]'), save_rule.delay,
            coalesce(save_rule.enabled, true), left(save_rule.description, 2000))
    ON CONFLICT ON CONSTRAINT automation_rule_name_key DO UPDATE
        SET trigger_kind = EXCLUDED.trigger_kind, trigger = EXCLUDED.trigger, action_kind = EXCLUDED.action_kind,
            action = EXCLUDED.action, conditions = EXCLUDED.conditions, delay = EXCLUDED.delay,
            enabled = EXCLUDED.enabled, description = EXCLUDED.description
    RETURNING r.rule_id INTO id;
    RETURN id;
END
$$;
COMMENT ON FUNCTION ecrm.save_rule(text, text, jsonb, text, jsonb, jsonb, interval, boolean, text) IS
    'Create or replace an automation rule by name: a trigger (kind + settings), conditions (JSON array, all must hold), an action (send_message, create_task, set_stage, add_to_campaign) and a delay. Everything is validated now — unknown segments, templates or fields, negative delays, cycles of rules are errors — not when the rule fires. Returns the rule id';

------------------------------------------------------------------------------
-- The run ledger: one row per (rule, trigger occurrence).  Its unique key is
-- what makes a trigger act once, however often it is seen.
------------------------------------------------------------------------------
CREATE TABLE ecrm.automation_run (
    run_id        bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    rule_id       bigint NOT NULL REFERENCES ecrm.automation_rule ON DELETE CASCADE,
    customer_id   bigint NOT NULL REFERENCES ecrm.customer_profile (customer_id),
    dedupe_key    text NOT NULL,
    triggered_at  timestamptz NOT NULL,
    due_at        timestamptz NOT NULL,
    context       jsonb NOT NULL DEFAULT '{}',
    status        text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done', 'skipped')),
    reason        text,
    performed_at  timestamptz,
    parent_run_id bigint,
    depth         integer NOT NULL DEFAULT 0,
    CONSTRAINT automation_run_rule_key UNIQUE (rule_id, dedupe_key)
);
CREATE INDEX automation_run_due_idx ON ecrm.automation_run (due_at) WHERE status = 'pending';
CREATE INDEX automation_run_customer_idx ON ecrm.automation_run (customer_id);
COMMENT ON TABLE ecrm.automation_run IS
    'Every firing of every rule: what triggered it (dedupe_key, unique per rule, so nothing fires twice), when it is due, and what became of it (done, or skipped with the reason)';
COMMENT ON COLUMN ecrm.automation_run.dedupe_key IS 'Identity of the trigger occurrence (the interaction, the cart, the order lapsed after, the ticket due time, the birthday year, ...)';
COMMENT ON COLUMN ecrm.automation_run.context IS 'Fields of the trigger for templates (cart_items, order_total, segment, ...)';
COMMENT ON COLUMN ecrm.automation_run.reason IS 'Why a run was skipped: conditions not met, no consent, no address, customer not active';

------------------------------------------------------------------------------
-- The outbox: messages and tasks for senders and applications to consume
------------------------------------------------------------------------------
CREATE TABLE ecrm.outbox (
    message_id   bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    customer_id  bigint REFERENCES ecrm.customer_profile (customer_id),
    topic        text NOT NULL CHECK (topic ~ '^[a-z][a-z0-9_.-]{0,62}$'),
    channel      ecrm.channel,
    purpose      text REFERENCES ecrm.consent_purpose,
    recipient    text,
    subject      text,
    body         text,
    payload      jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(payload) = 'object'),
    dedupe_key   text NOT NULL UNIQUE CHECK (length(dedupe_key) BETWEEN 1 AND 500),
    rule_id      bigint REFERENCES ecrm.automation_rule ON DELETE SET NULL,
    run_id       bigint REFERENCES ecrm.automation_run ON DELETE SET NULL,
    status       text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'processing', 'done', 'failed')),
    attempts     integer NOT NULL DEFAULT 0,
    max_attempts integer NOT NULL DEFAULT 5 CHECK (max_attempts BETWEEN 1 AND 100),
    available_at timestamptz NOT NULL DEFAULT now(),
    claimed_by   text,
    claimed_at   timestamptz,
    lease_until  timestamptz,
    done_at      timestamptz,
    last_error   text,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outbox_ready_idx ON ecrm.outbox (available_at, message_id) WHERE status = 'pending';
CREATE INDEX outbox_lease_idx ON ecrm.outbox (lease_until) WHERE status = 'processing';
CREATE INDEX outbox_customer_idx ON ecrm.outbox (customer_id);
COMMENT ON TABLE ecrm.outbox IS
    'Messages and tasks waiting for a sender or an application: claim with ecrm.outbox_claim() (FOR UPDATE SKIP LOCKED), then ecrm.outbox_done() or ecrm.outbox_failed() (retries with exponential backoff). Each insert notifies channel ecrm_outbox';
COMMENT ON COLUMN ecrm.outbox.topic IS 'message (to the customer), task (for a user), or an application''s own topic';
COMMENT ON COLUMN ecrm.outbox.recipient IS 'Email address, phone number or user name the message is for';
COMMENT ON COLUMN ecrm.outbox.dedupe_key IS 'Unique key: enqueueing the same key twice gives one message';
COMMENT ON COLUMN ecrm.outbox.status IS 'pending (waiting until available_at), processing (claimed until lease_until), done, failed (gave up)';
COMMENT ON COLUMN ecrm.outbox.available_at IS 'When the message may be claimed (later for a delayed retry)';
COMMENT ON COLUMN ecrm.outbox.lease_until IS 'A claim expires then: a worker that died does not hold a message for ever';

-- Wake workers at once: one notification per topic per statement that enqueues.
CREATE FUNCTION ecrm._outbox_notify() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    PERFORM pg_notify('ecrm_outbox', x.topic) FROM (SELECT DISTINCT n.topic FROM new_rows n) x;
    RETURN NULL;
END
$$;
CREATE TRIGGER outbox_notify AFTER INSERT ON ecrm.outbox REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION ecrm._outbox_notify();

CREATE FUNCTION ecrm.enqueue(topic text, customer_id bigint, payload jsonb DEFAULT '{}', dedupe_key text DEFAULT NULL,
                             channel text DEFAULT NULL, purpose text DEFAULT NULL, recipient text DEFAULT NULL,
                             subject text DEFAULT NULL, body text DEFAULT NULL,
                             available_at timestamptz DEFAULT now(), max_attempts integer DEFAULT 5) RETURNS bigint
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    cid bigint;
    id  bigint;
BEGIN
    IF topic IS NULL OR topic !~ '^[a-z][a-z0-9_.-]{0,62}$' THEN
        RAISE EXCEPTION 'invalid topic "%"', left(coalesce(topic, 'NULL'), 100)
            USING ERRCODE = 'invalid_parameter_value', HINT = 'A topic is 1 to 63 lower-case letters, digits, "_", "." or "-", starting with a letter.';
    END IF;
    IF customer_id IS NOT NULL THEN
        cid := ecrm._live_customer(enqueue.customer_id);
    END IF;
    IF dedupe_key IS NOT NULL AND (btrim(dedupe_key) = '' OR length(dedupe_key) > 500) THEN
        RAISE EXCEPTION 'dedupe_key must be 1 to 500 characters' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF max_attempts IS NULL OR max_attempts NOT BETWEEN 1 AND 100 THEN
        RAISE EXCEPTION 'max_attempts must be between 1 and 100, not %', coalesce(max_attempts::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF available_at IS NULL OR NOT isfinite(available_at) THEN
        RAISE EXCEPTION 'available_at must be a finite time' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF length(subject) > 10000 OR length(body) > 1000000 OR length(recipient) > 1000 THEN
        RAISE EXCEPTION 'subject, body or recipient is too long' USING ERRCODE = 'string_data_right_truncation';
    END IF;
    IF purpose IS NOT NULL THEN
        IF NOT EXISTS (SELECT FROM ecrm.consent_purpose p WHERE p.purpose = enqueue.purpose) THEN
            RAISE EXCEPTION 'unknown consent purpose "%"', left(purpose, 100) USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF cid IS NULL THEN
            RAISE EXCEPTION 'a message with a consent purpose needs a customer_id' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        -- no consent, no message
        IF NOT ecrm.has_consent(cid, purpose) THEN
            RETURN NULL;
        END IF;
    END IF;
    INSERT INTO ecrm.outbox AS o (customer_id, topic, channel, purpose, recipient, subject, body, payload, dedupe_key,
                                  available_at, max_attempts)
    VALUES (cid, topic, ecrm._enum_label(enqueue.channel, 'ecrm.channel', 'channel')::ecrm.channel, purpose, recipient,
            subject, body, ecrm._check_object(payload, 'payload'),
            coalesce(enqueue.dedupe_key, 'app:' || gen_random_uuid()), available_at, max_attempts)
    ON CONFLICT ON CONSTRAINT outbox_dedupe_key_key DO NOTHING
    RETURNING o.message_id INTO id;
    IF id IS NULL THEN
        SELECT o.message_id INTO id FROM ecrm.outbox o WHERE o.dedupe_key = enqueue.dedupe_key;
    END IF;
    RETURN id;
END
$$;
COMMENT ON FUNCTION ecrm.enqueue(text, bigint, jsonb, text, text, text, text, text, text, timestamptz, integer) IS
    'Put a message or task of an application into the outbox; a dedupe_key already there returns the existing message id; a message with a consent purpose the customer has not given (or withdrew) is not enqueued and NULL is returned';

CREATE FUNCTION ecrm.outbox_claim(worker text, max_messages integer DEFAULT 10, topics text[] DEFAULT NULL,
                                  lease interval DEFAULT '5 minutes') RETURNS SETOF ecrm.outbox
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    got bigint;
BEGIN
    IF worker IS NULL OR btrim(worker) = '' OR length(worker) > 200 THEN
        RAISE EXCEPTION 'worker must be a name of 1 to 200 characters' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF max_messages IS NULL OR max_messages NOT BETWEEN 1 AND 10000 THEN
        RAISE EXCEPTION 'max_messages must be between 1 and 10000, not %', coalesce(max_messages::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF lease IS NULL OR lease < interval '1 second' OR lease > interval '1 day' THEN
        RAISE EXCEPTION 'lease must be between 1 second and 1 day, not %', coalesce(lease::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- first the claims of workers that died (their lease ran out), then due messages, oldest first
    RETURN QUERY
    UPDATE ecrm.outbox o
       SET attempts = o.attempts + 1, claimed_by = worker, claimed_at = clock_timestamp(), lease_until = clock_timestamp() + lease
     WHERE o.message_id IN (SELECT p.message_id FROM ecrm.outbox p
                             WHERE p.status = 'processing' AND p.lease_until < clock_timestamp()
                               AND (topics IS NULL OR p.topic = ANY (topics))
                             ORDER BY p.lease_until LIMIT max_messages
                               FOR UPDATE SKIP LOCKED)
    RETURNING o.*;
    GET DIAGNOSTICS got = ROW_COUNT;
    IF got < max_messages THEN
        RETURN QUERY
        UPDATE ecrm.outbox o
           SET status = 'processing', attempts = o.attempts + 1, claimed_by = worker, claimed_at = clock_timestamp(),
               lease_until = clock_timestamp() + lease
         WHERE o.message_id IN (SELECT p.message_id FROM ecrm.outbox p
                                 WHERE p.status = 'pending' AND p.available_at <= clock_timestamp()
                                   AND (topics IS NULL OR p.topic = ANY (topics))
                                 ORDER BY p.available_at, p.message_id LIMIT max_messages - got
                                   FOR UPDATE SKIP LOCKED)
        RETURNING o.*;
    END IF;
END
$$;
COMMENT ON FUNCTION ecrm.outbox_claim(text, integer, text[], interval) IS
    'Claim up to max_messages messages that are due (optionally of some topics) for a worker, oldest first, with FOR UPDATE SKIP LOCKED so concurrent workers never get the same message; the claim lasts for lease, after which another worker may take the message';

CREATE FUNCTION ecrm._outbox_claimed(message_id bigint, worker text) RETURNS ecrm.outbox
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    m ecrm.outbox;
BEGIN
    SELECT * INTO m FROM ecrm.outbox o WHERE o.message_id = _outbox_claimed.message_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'message % does not exist', coalesce(message_id::text, 'NULL') USING ERRCODE = 'no_data_found';
    END IF;
    IF m.status <> 'processing' OR m.claimed_by IS DISTINCT FROM worker THEN
        RAISE EXCEPTION 'message % is not claimed by worker "%"', message_id, left(coalesce(worker, 'NULL'), 200)
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = format('Its status is %s%s.', m.status, CASE WHEN m.claimed_by IS NOT NULL AND m.status = 'processing'
                                                                     THEN format(', claimed by "%s"', m.claimed_by) ELSE '' END),
                  HINT = 'A claim that outlived its lease may have been taken over by another worker.';
    END IF;
    RETURN m;
END
$$;

CREATE FUNCTION ecrm.outbox_done(message_id bigint, worker text) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    PERFORM ecrm._outbox_claimed(message_id, worker);
    UPDATE ecrm.outbox o SET status = 'done', done_at = clock_timestamp(), lease_until = NULL, last_error = NULL
     WHERE o.message_id = outbox_done.message_id;
END
$$;
COMMENT ON FUNCTION ecrm.outbox_done(bigint, text) IS
    'Mark a claimed message as sent; an error (SQLSTATE 55000) when the worker does not hold it';

CREATE FUNCTION ecrm.outbox_done(message_ids bigint[], worker text) RETURNS integer
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    bad bigint;
    n   integer;
BEGIN
    IF message_ids IS NULL OR cardinality(message_ids) > 100000 THEN
        RAISE EXCEPTION 'message_ids must be an array of at most 100000 ids' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM FROM ecrm.outbox o WHERE o.message_id = ANY (message_ids) ORDER BY o.message_id FOR UPDATE;
    SELECT m.id INTO bad FROM unnest(message_ids) m(id)
     WHERE NOT EXISTS (SELECT FROM ecrm.outbox o WHERE o.message_id = m.id AND o.status = 'processing' AND o.claimed_by = worker)
     LIMIT 1;
    IF FOUND THEN
        PERFORM ecrm._outbox_claimed(bad, worker);   -- raises the error that says why
    END IF;
    UPDATE ecrm.outbox o SET status = 'done', done_at = clock_timestamp(), lease_until = NULL, last_error = NULL
     WHERE o.message_id = ANY (message_ids);
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
COMMENT ON FUNCTION ecrm.outbox_done(bigint[], text) IS
    'Mark many claimed messages as sent at once (all or none: an error when the worker does not hold one of them); returns how many';

CREATE FUNCTION ecrm.outbox_failed(message_id bigint, worker text, reason text, retry boolean DEFAULT true,
                                   retry_in interval DEFAULT NULL) RETURNS text
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    m       ecrm.outbox := ecrm._outbox_claimed(message_id, worker);
    backoff interval;
BEGIN
    IF retry_in IS NOT NULL AND (retry_in < interval '0' OR retry_in > interval '30 days') THEN
        RAISE EXCEPTION 'retry_in must be between 0 and 30 days, not %', retry_in USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF coalesce(retry, true) AND m.attempts < m.max_attempts THEN
        -- 30 s, 1 min, 2 min, 4 min, ... at most 6 hours
        backoff := coalesce(retry_in, least(interval '30 seconds' * power(2, least(m.attempts - 1, 20)), interval '6 hours'));
        UPDATE ecrm.outbox o SET status = 'pending', available_at = clock_timestamp() + backoff, lease_until = NULL,
                                 last_error = left(reason, 2000)
         WHERE o.message_id = outbox_failed.message_id;
        RETURN 'pending';
    END IF;
    UPDATE ecrm.outbox o SET status = 'failed', done_at = clock_timestamp(), lease_until = NULL, last_error = left(reason, 2000)
     WHERE o.message_id = outbox_failed.message_id;
    RETURN 'failed';
END
$$;
COMMENT ON FUNCTION ecrm.outbox_failed(bigint, text, text, boolean, interval) IS
    'Record that sending a claimed message failed: it is retried after an exponential backoff (30 s, 1 min, 2 min, ... at most 6 h, or retry_in) until max_attempts, then marked failed; retry => false gives up at once. Returns the new status';

CREATE VIEW ecrm.outbox_stats AS
SELECT o.topic, o.status, count(*) AS messages,
       min(o.available_at) FILTER (WHERE o.status = 'pending') AS oldest_due_at,
       max(o.attempts) AS max_attempts_used,
       count(*) FILTER (WHERE o.status = 'processing' AND o.lease_until < now()) AS expired_claims
  FROM ecrm.outbox o
 GROUP BY o.topic, o.status;
COMMENT ON VIEW ecrm.outbox_stats IS 'Outbox health per topic and status: how many messages, the oldest one waiting, retries and claims that expired';
COMMENT ON COLUMN ecrm.outbox_stats.topic IS 'message, task or an application topic';
COMMENT ON COLUMN ecrm.outbox_stats.messages IS 'Number of messages';
COMMENT ON COLUMN ecrm.outbox_stats.oldest_due_at IS 'Earliest available_at among pending messages (how far behind the senders are)';
COMMENT ON COLUMN ecrm.outbox_stats.max_attempts_used IS 'Most attempts any message took';
COMMENT ON COLUMN ecrm.outbox_stats.expired_claims IS 'Claims whose lease ran out (a worker died or is stuck)';

------------------------------------------------------------------------------
-- The engine
------------------------------------------------------------------------------

-- Names of up to k products recommended to a customer (ecrm.recommend, 60_recommend.sql) by the model named
-- item_item when it is trained, else by the model built last; none when no model is trained.
CREATE FUNCTION ecrm._recommended_products(customer_id bigint, k integer DEFAULT 3) RETURNS text[]
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    model text;
    names text[];
BEGIN
    SELECT m.name INTO model FROM ecrm.rec_model m ORDER BY m.name <> 'item_item', m.built_at DESC, m.model_id DESC LIMIT 1;
    IF model IS NULL THEN
        RETURN '{}';
    END IF;
    SELECT coalesce(array_agg(p.name ORDER BY r.score DESC, p.product_id), '{}') INTO names
      FROM ecrm.recommend(_recommended_products.customer_id, k, model) r
      JOIN ecrm.product p ON p.product_id = r.product_id;
    RETURN names;
END
$$;

COMMENT ON FUNCTION ecrm._recommended_products(bigint, integer) IS
    'Names of up to k products ecrm.recommend gives a customer (model item_item, else the one built last; empty without a model): the recommended_products field of templates';

-- The fields a template sees for one customer and run (a SQL-standard body: inlined into the caller's query).
CREATE FUNCTION ecrm._template_values(c ecrm.customer_profile, context jsonb, rule_name text, want_recommendations boolean)
    RETURNS jsonb
    LANGUAGE sql STABLE
    RETURN jsonb_strip_nulls(jsonb_build_object(
               'customer_id', c.customer_id, 'first_name', c.first_name, 'last_name', c.last_name,
               'full_name', nullif(concat_ws(' ', c.first_name, c.last_name), ''), 'email', c.email, 'phone', c.phone,
               'company', c.company, 'job_title', c.job_title, 'city', c.city, 'country', c.country,
               'language', c.language, 'lifecycle_stage', c.lifecycle_stage, 'owner', c.owner,
               'rule_name', rule_name, 'today', (now() AT TIME ZONE 'UTC')::date))
           || coalesce(context, '{}')
           || CASE WHEN want_recommendations
                   THEN jsonb_build_object('recommended_products', to_jsonb(ecrm._recommended_products(c.customer_id, 3)))
                   ELSE '{}' END;

-- Perform the pending runs among run_ids (each rule's action, after checking its conditions and, for
-- messages, consent and address), then start the follow-up rules of those done.  Returns per rule how
-- many runs were done and skipped.
CREATE FUNCTION ecrm._automation_perform(run_ids bigint[], as_of timestamptz)
    RETURNS TABLE (rule_id bigint, done bigint, skipped bigint)
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    rl      ecrm.automation_rule;
    tpl     ecrm.message_template;
    due_sql text;
    act_sql text;
    n_done  bigint;
    n_skip  bigint;
    done_ids bigint[];
    child   bigint[];
    purpose text;
BEGIN
    IF run_ids IS NULL OR cardinality(run_ids) = 0 THEN
        RETURN;
    END IF;
    FOR rl IN SELECT r.* FROM ecrm.automation_rule r
               WHERE r.rule_id IN (SELECT DISTINCT x.rule_id FROM ecrm.automation_run x WHERE x.run_id = ANY (run_ids))
               ORDER BY r.rule_id LOOP
        tpl := NULL;
        purpose := NULL;
        IF rl.action_kind = 'send_message' THEN
            SELECT * INTO tpl FROM ecrm.message_template m WHERE m.template_id = rl.template_id;
            purpose := tpl.purpose;
        ELSIF rl.action_kind = 'add_to_campaign' THEN
            SELECT c.purpose INTO purpose FROM ecrm.campaign c WHERE c.campaign_id = rl.campaign_id;
        END IF;
        -- the due runs of this rule, locked, each with its verdict
        due_sql := format($q$
            SELECT r.run_id, r.customer_id, r.context,
                   CASE WHEN NOT rl_enabled THEN 'rule disabled'
                        WHEN c.status <> 'active' THEN 'customer is ' || c.status
                        WHEN NOT coalesce((%1$s), false) THEN 'conditions not met'
                        WHEN %2$L IS NOT NULL AND NOT ecrm.has_consent(r.customer_id, %2$L) THEN 'no consent for ' || %2$L
                        WHEN %3$L = 'email' AND c.email IS NULL THEN 'no email address'
                        WHEN %3$L = 'phone' AND c.phone IS NULL THEN 'no phone number'
                        WHEN %4$L = 'create_task' AND %5$L = 'owner' AND c.owner IS NULL THEN 'customer has no owner'
                   END AS reason,
                   CASE WHEN %4$L IN ('send_message', 'create_task') AND c.status = 'active'
                        THEN ecrm._template_values(c, r.context, %6$L, %7$L) END AS vals,
                   CASE WHEN %3$L = 'email' THEN c.email WHEN %3$L = 'phone' THEN c.phone
                        WHEN %4$L = 'create_task' THEN CASE WHEN %5$L = 'owner' THEN c.owner ELSE %5$L END END AS recipient
              FROM ecrm.automation_run r
              JOIN ecrm.customer_profile c ON c.customer_id = r.customer_id
              CROSS JOIN (SELECT %8$L::boolean AS rl_enabled) e
             WHERE r.run_id = ANY ($1) AND r.rule_id = $2 AND r.status = 'pending'
               FOR UPDATE OF r SKIP LOCKED$q$,
            rl.condition_sql, purpose, tpl.channel, rl.action_kind, rl.action ->> 'assignee', rl.name,
            coalesce('recommended_products' = ANY (tpl.fields), false)
                OR coalesce(rl.action ->> 'title' ~ '\{\{\s*recommended_products', false)
                OR coalesce(rl.action ->> 'notes' ~ '\{\{\s*recommended_products', false),
            rl.enabled);
        act_sql := CASE rl.action_kind
            WHEN 'send_message' THEN format($q$
                INSERT INTO ecrm.outbox (customer_id, topic, channel, purpose, recipient, subject, body, payload, dedupe_key, rule_id, run_id)
                SELECT d.customer_id, 'message', %1$L, %2$L, d.recipient, ecrm.render_template(%3$L, d.vals),
                       ecrm.render_template(%4$L, d.vals), d.vals || jsonb_build_object('template', %5$L),
                       'run:' || d.run_id, $2, d.run_id
                  FROM due d WHERE d.reason IS NULL
                ON CONFLICT (dedupe_key) DO NOTHING RETURNING run_id$q$,
                tpl.channel, tpl.purpose, coalesce(tpl.subject, ''), tpl.body, tpl.name)
            WHEN 'create_task' THEN format($q$
                INSERT INTO ecrm.outbox (customer_id, topic, recipient, subject, body, payload, dedupe_key, rule_id, run_id)
                SELECT d.customer_id, 'task', d.recipient, ecrm.render_template(%1$L, d.vals),
                       nullif(ecrm.render_template(%2$L, d.vals), ''),
                       d.vals || jsonb_build_object('assignee', d.recipient, 'due_at', $3 + %3$L::interval),
                       'run:' || d.run_id, $2, d.run_id
                  FROM due d WHERE d.reason IS NULL
                ON CONFLICT (dedupe_key) DO NOTHING RETURNING run_id$q$,
                rl.action ->> 'title', coalesce(rl.action ->> 'notes', ''), rl.action ->> 'due_in')
            WHEN 'set_stage' THEN format($q$
                UPDATE ecrm.customer_profile c SET lifecycle_stage = %1$L
                  FROM due d
                 WHERE c.customer_id = d.customer_id AND d.reason IS NULL AND c.lifecycle_stage <> %1$L
                   AND (NOT %2$L::boolean OR c.lifecycle_stage < %1$L::ecrm.lifecycle_stage)
                RETURNING d.run_id$q$,
                rl.action ->> 'stage', rl.action ->> 'only_forward')
            WHEN 'add_to_campaign' THEN format($q$
                INSERT INTO ecrm.campaign_member (campaign_id, customer_id, added_at, rule_id, source)
                SELECT %1$s, d.customer_id, $3, $2, 'automation'
                  FROM due d
                 WHERE d.reason IS NULL
                   AND NOT EXISTS (SELECT FROM ecrm.campaign_member m WHERE m.campaign_id = %1$s AND m.customer_id = d.customer_id)
                RETURNING customer_id AS run_id$q$,
                rl.campaign_id)
            END;
        IF rl.action_kind = 'set_stage' THEN
            PERFORM set_config('ecrm.lifecycle_reason', left('automation rule ' || rl.name, 200), true);
        END IF;
        EXECUTE format($q$
            WITH due AS (%s),
            act AS (%s),
            upd AS (
                UPDATE ecrm.automation_run r
                   SET status = CASE WHEN d.reason IS NULL THEN 'done' ELSE 'skipped' END, reason = d.reason,
                       performed_at = clock_timestamp()
                  FROM due d
                 WHERE r.run_id = d.run_id
                RETURNING r.run_id, r.status)
            SELECT count(*) FILTER (WHERE status = 'done'), count(*) FILTER (WHERE status = 'skipped'),
                   array_agg(run_id) FILTER (WHERE status = 'done')
              FROM upd$q$, due_sql, act_sql)
           INTO n_done, n_skip, done_ids USING run_ids, rl.rule_id, as_of;
        IF rl.action_kind = 'set_stage' THEN
            PERFORM set_config('ecrm.lifecycle_reason', '', true);
        END IF;
        rule_id := rl.rule_id;
        done := n_done;
        skipped := n_skip;
        RETURN NEXT;

        -- follow-ups of the runs done: due after their own delay
        IF done_ids IS NOT NULL AND EXISTS (SELECT FROM ecrm.automation_rule f WHERE f.parent_rule_id = rl.rule_id AND f.enabled) THEN
            WITH ins AS (
                INSERT INTO ecrm.automation_run AS x (rule_id, customer_id, dedupe_key, triggered_at, due_at, context, parent_run_id, depth)
                SELECT f.rule_id, r.customer_id, 'after:' || r.run_id, as_of, as_of + f.delay, r.context, r.run_id, r.depth + 1
                  FROM ecrm.automation_run r
                  JOIN ecrm.automation_rule f ON f.parent_rule_id = r.rule_id AND f.enabled AND f.trigger_kind = 'rule'
                 WHERE r.run_id = ANY (done_ids) AND r.depth < 50
                ON CONFLICT ON CONSTRAINT automation_run_rule_key DO NOTHING
                RETURNING x.run_id, x.due_at)
            SELECT array_agg(i.run_id) FILTER (WHERE i.due_at <= as_of) INTO child FROM ins i;
            IF child IS NOT NULL THEN
                RETURN QUERY SELECT * FROM ecrm._automation_perform(child, as_of);
            END IF;
        END IF;
    END LOOP;
END
$$;

-- Record the runs of event-driven rules and perform the ones due now (a statement-level trigger calls it).
-- Candidates: (rule_id, customer_id, dedupe_key, triggered_at, context).
CREATE FUNCTION ecrm._automation_fire(candidates jsonb) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    ids bigint[];
BEGIN
    -- a restore (ecrm._restoring(), 10_store.sql) brings the ledger and the outbox as they were: nothing fires again
    IF ecrm._restoring() THEN
        RETURN;
    END IF;
    WITH ins AS (
        INSERT INTO ecrm.automation_run AS x (rule_id, customer_id, dedupe_key, triggered_at, due_at, context)
        SELECT (c ->> 'rule_id')::bigint, (c ->> 'customer_id')::bigint, c ->> 'dedupe_key',
               (c ->> 'triggered_at')::timestamptz, now() + r.delay, coalesce(c -> 'context', '{}')
          FROM jsonb_array_elements(candidates) c
          JOIN ecrm.automation_rule r ON r.rule_id = (c ->> 'rule_id')::bigint
        ON CONFLICT ON CONSTRAINT automation_run_rule_key DO NOTHING
        RETURNING x.run_id, x.due_at)
    SELECT array_agg(i.run_id) FILTER (WHERE i.due_at <= now()) INTO ids FROM ins i;
    IF ids IS NOT NULL THEN
        PERFORM ecrm._automation_perform(ids, now());
    END IF;
END
$$;

-- Event triggers.  SECURITY DEFINER: rules are the admin's, so an agent who records an interaction or an
-- order needs no write access to the ledger and the outbox; search_path is fixed and every rule's SQL was
-- compiled from validated JSON when it was saved.
CREATE FUNCTION ecrm._automation_on_interaction() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    cand jsonb;
BEGIN
    IF NOT EXISTS (SELECT FROM ecrm.automation_rule r WHERE r.enabled AND r.trigger_kind = 'interaction') THEN
        RETURN NULL;
    END IF;
    SELECT jsonb_agg(jsonb_build_object(
               'rule_id', r.rule_id, 'customer_id', n.customer_id, 'dedupe_key', 'interaction:' || n.interaction_id,
               'triggered_at', n.occurred_at,
               'context', jsonb_strip_nulls(jsonb_build_object(
                   'interaction_kind', n.kind, 'interaction_channel', n.channel, 'occurred_at', n.occurred_at,
                   'product_name', (SELECT p.name FROM ecrm.product p WHERE p.product_id = n.product_id)))))
      INTO cand
      FROM new_rows n
      JOIN ecrm.automation_rule r ON r.enabled AND r.trigger_kind = 'interaction' AND r.trigger ->> 'kind' = n.kind
                                 AND (r.trigger ->> 'channel' IS NULL OR r.trigger ->> 'channel' = n.channel::text)
     WHERE n.occurred_at > now() - (r.trigger ->> 'max_age')::interval;
    IF cand IS NOT NULL THEN
        PERFORM ecrm._automation_fire(cand);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER interaction_automation AFTER INSERT ON ecrm.interaction REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION ecrm._automation_on_interaction();

CREATE FUNCTION ecrm._automation_on_order() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    cand jsonb;
BEGIN
    IF NOT EXISTS (SELECT FROM ecrm.automation_rule r WHERE r.enabled AND r.trigger_kind = 'order') THEN
        RETURN NULL;
    END IF;
    SELECT jsonb_agg(jsonb_build_object(
               'rule_id', r.rule_id, 'customer_id', n.customer_id, 'dedupe_key', 'order:' || n.order_id,
               'triggered_at', n.ordered_at,
               'context', jsonb_strip_nulls(jsonb_build_object(
                   'order_id', n.order_id, 'order_ref', n.external_ref, 'order_total', n.total, 'currency', n.currency,
                   'occurred_at', n.ordered_at))))
      INTO cand
      FROM new_rows n
      JOIN ecrm.automation_rule r ON r.enabled AND r.trigger_kind = 'order'
     WHERE n.status NOT IN ('cancelled', 'returned')
       AND n.ordered_at > now() - (r.trigger ->> 'max_age')::interval
       AND n.total >= coalesce((r.trigger ->> 'min_total')::numeric, 0)
       AND (NOT coalesce((r.trigger ->> 'first_order')::boolean, false)
            OR NOT EXISTS (SELECT FROM ecrm.orders o WHERE o.customer_id = n.customer_id AND o.order_id <> n.order_id
                              AND o.status NOT IN ('cancelled', 'returned')
                              AND (o.ordered_at, o.order_id) < (n.ordered_at, n.order_id)));
    IF cand IS NOT NULL THEN
        PERFORM ecrm._automation_fire(cand);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER orders_automation AFTER INSERT ON ecrm.orders REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION ecrm._automation_on_order();

CREATE FUNCTION ecrm._automation_on_stage() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    cand jsonb;
BEGIN
    IF NOT EXISTS (SELECT FROM ecrm.automation_rule r WHERE r.enabled AND r.trigger_kind = 'stage_changed') THEN
        RETURN NULL;
    END IF;
    SELECT jsonb_agg(jsonb_build_object(
               'rule_id', r.rule_id, 'customer_id', n.customer_id, 'dedupe_key', 'stage:' || n.change_id,
               'triggered_at', n.changed_at,
               'context', jsonb_strip_nulls(jsonb_build_object('from_stage', n.from_stage, 'to_stage', n.to_stage))))
      INTO cand
      FROM new_rows n
      JOIN ecrm.automation_rule r ON r.enabled AND r.trigger_kind = 'stage_changed'
                                 AND (r.trigger ->> 'to' IS NULL OR r.trigger ->> 'to' = n.to_stage::text)
                                 AND (r.trigger ->> 'from' IS NULL OR r.trigger ->> 'from' = n.from_stage::text)
     WHERE n.changed_at > now() - (r.trigger ->> 'max_age')::interval;
    IF cand IS NOT NULL THEN
        PERFORM ecrm._automation_fire(cand);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER lifecycle_change_automation AFTER INSERT ON ecrm.lifecycle_change REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION ecrm._automation_on_stage();

-- Lead scores (issue 5) crossing a threshold upwards: a new row at or above it, or an update from below.
CREATE FUNCTION ecrm._automation_on_score() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    cand jsonb;
BEGIN
    IF NOT EXISTS (SELECT FROM ecrm.automation_rule r WHERE r.enabled AND r.trigger_kind = 'score_threshold') THEN
        RETURN NULL;
    END IF;
    -- an insert at or above the threshold, or an update from below it (old_rows exists for updates only)
    EXECUTE format($q$
        SELECT jsonb_agg(jsonb_build_object(
                   'rule_id', r.rule_id, 'customer_id', n.customer_id,
                   'dedupe_key', 'score:' || n.model_id || ':' || n.customer_id || ':' || coalesce(n.computed_at, now()),
                   'triggered_at', coalesce(n.computed_at, now()),
                   'context', jsonb_build_object('score', n.score, 'model_id', n.model_id)))
          FROM new_rows n
          %s
          JOIN ecrm.automation_rule r ON r.enabled AND r.trigger_kind = 'score_threshold'
                                     AND (r.trigger ->> 'model_id' IS NULL OR (r.trigger ->> 'model_id')::bigint = n.model_id)
         WHERE n.score >= (r.trigger ->> 'at_least')::double precision %s$q$,
        CASE WHEN TG_OP = 'UPDATE' THEN 'JOIN old_rows o ON o.customer_id = n.customer_id AND o.model_id = n.model_id' ELSE '' END,
        CASE WHEN TG_OP = 'UPDATE' THEN 'AND (o.score IS NULL OR o.score < (r.trigger ->> ''at_least'')::double precision)' ELSE '' END)
      INTO cand;
    IF cand IS NOT NULL THEN
        PERFORM ecrm._automation_fire(cand);
    END IF;
    RETURN NULL;
END
$$;

-- Segment entries and exits (issue 6).
CREATE FUNCTION ecrm._automation_on_segment() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    cand jsonb;
BEGIN
    IF NOT EXISTS (SELECT FROM ecrm.automation_rule r WHERE r.enabled AND r.trigger_kind IN ('segment_entered', 'segment_exited')) THEN
        RETURN NULL;
    END IF;
    EXECUTE $q$
    SELECT jsonb_agg(jsonb_build_object(
               'rule_id', r.rule_id, 'customer_id', n.customer_id,
               'dedupe_key', 'segment:' || n.segment_id || ':' || n.customer_id || ':' || n.kind || ':' || n.occurred_at,
               'triggered_at', n.occurred_at,
               'context', jsonb_build_object('segment', s.name)))
      FROM new_rows n
      JOIN ecrm.segment s ON s.segment_id = n.segment_id
      JOIN ecrm.automation_rule r ON r.enabled AND r.trigger_kind = 'segment_' || n.kind AND r.trigger ->> 'segment' = s.name$q$
      INTO cand;
    IF cand IS NOT NULL THEN
        PERFORM ecrm._automation_fire(cand);
    END IF;
    RETURN NULL;
END
$$;

-- Attach the capturing triggers to the tables of lead scoring and segments when they exist.
-- Called at install; call it again after installing those capabilities later. Returns what it attached.
CREATE FUNCTION ecrm._automation_attach() RETURNS text[]
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    done text[] := '{}';
    t    record;
BEGIN
    FOR t IN SELECT * FROM (VALUES
        ('ecrm.lead_score', 'lead_score_automation_insert', 'INSERT', 'NEW TABLE AS new_rows', '_automation_on_score'),
        ('ecrm.lead_score', 'lead_score_automation_update', 'UPDATE', 'OLD TABLE AS old_rows NEW TABLE AS new_rows', '_automation_on_score'),
        ('ecrm.segment_event', 'segment_event_automation', 'INSERT', 'NEW TABLE AS new_rows', '_automation_on_segment')
      ) v(rel, tg, ev, ref, fn) LOOP
        IF to_regclass(t.rel) IS NOT NULL
           AND NOT EXISTS (SELECT FROM pg_trigger g WHERE g.tgrelid = to_regclass(t.rel) AND g.tgname = t.tg) THEN
            EXECUTE format('CREATE TRIGGER %I AFTER %s ON %s REFERENCING %s FOR EACH STATEMENT EXECUTE FUNCTION ecrm.%I()',
                           t.tg, t.ev, t.rel, t.ref, t.fn);
            done := done || (t.rel || '.' || t.tg);
        END IF;
    END LOOP;
    RETURN done;
END
$$;
COMMENT ON FUNCTION ecrm._automation_attach() IS
    'Attach the automation triggers to ecrm.lead_score (score_threshold rules) and ecrm.segment_event (segment_entered/exited rules) when those tables exist; safe to call again. Returns the triggers it created';

-- The time-based triggers, evaluated set-based as of a time; returns the runs each rule fired.
CREATE FUNCTION ecrm._automation_scan(rl ecrm.automation_rule, as_of timestamptz) RETURNS bigint
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    n       bigint := 0;
    t       jsonb := rl.trigger;
    after_  interval;
    back    interval;
    target_day date;
    md      int;
    leap_md int;
BEGIN
    CASE rl.trigger_kind
    WHEN 'cart_abandoned' THEN
        -- the latest cart_add of a customer is older than "after" (yet within the lookback) and no order followed it
        after_ := (t ->> 'after')::interval;
        back := (t ->> 'lookback')::interval;
        INSERT INTO ecrm.automation_run (rule_id, customer_id, dedupe_key, triggered_at, due_at, context)
        SELECT rl.rule_id, x.customer_id, 'cart:' || x.interaction_id, x.occurred_at + after_, as_of + rl.delay,
               jsonb_build_object('cart_added_at', x.occurred_at, 'cart_items', to_jsonb(ci.items), 'cart_value', ci.value)
          FROM (SELECT y.* FROM (SELECT DISTINCT ON (i.customer_id) i.customer_id, i.interaction_id, i.occurred_at
                                   FROM ecrm.interaction i
                                  WHERE i.kind = 'cart_add' AND i.occurred_at > as_of - after_ - back AND i.occurred_at <= as_of
                                  ORDER BY i.customer_id, i.occurred_at DESC, i.interaction_id DESC) y
                 WHERE y.occurred_at <= as_of - after_
                   -- (scalar subqueries: one index probe per candidate; a join would read every order)
                   AND coalesce((SELECT max(o.ordered_at) FROM ecrm.orders o
                                  WHERE o.customer_id = y.customer_id AND o.status <> 'cancelled'), '-infinity') < y.occurred_at
                   AND NOT EXISTS (SELECT FROM ecrm.automation_run a WHERE a.rule_id = rl.rule_id AND a.dedupe_key = 'cart:' || y.interaction_id)
                OFFSET 0) x
          CROSS JOIN LATERAL (
                SELECT coalesce(array_agg(DISTINCT p.name), '{}') AS items, sum(p.price) AS value
                  FROM ecrm.interaction i JOIN ecrm.product p ON p.product_id = i.product_id
                 WHERE i.customer_id = x.customer_id AND i.kind = 'cart_add' AND i.occurred_at > as_of - after_ - back
                   AND i.occurred_at <= x.occurred_at
                   AND i.occurred_at > coalesce((SELECT max(o.ordered_at) FROM ecrm.orders o
                                                  WHERE o.customer_id = x.customer_id AND o.ordered_at <= x.occurred_at),
                                                '-infinity')) ci
        ON CONFLICT ON CONSTRAINT automation_run_rule_key DO NOTHING;
        GET DIAGNOSTICS n = ROW_COUNT;
    WHEN 'no_order' THEN
        -- the last order of a customer lies "days" back (within the lookback): nothing since
        back := (t ->> 'lookback')::interval;
        INSERT INTO ecrm.automation_run (rule_id, customer_id, dedupe_key, triggered_at, due_at, context)
        SELECT DISTINCT ON (o.customer_id) rl.rule_id, o.customer_id, 'no_order:' || o.order_id,
               o.ordered_at + make_interval(days => (t ->> 'days')::int), as_of + rl.delay,
               jsonb_build_object('last_order_at', o.ordered_at,
                                  'days_since_last_order', floor(extract(epoch FROM as_of - o.ordered_at) / 86400)::int)
          FROM ecrm.orders o
         WHERE o.ordered_at <= as_of - make_interval(days => (t ->> 'days')::int)
           AND o.ordered_at > as_of - make_interval(days => (t ->> 'days')::int) - back
           AND o.status NOT IN ('cancelled', 'returned')
           -- (a scalar subquery: one index probe per order; a join would read every order)
           AND (SELECT max(l.ordered_at) FROM ecrm.orders l
                 WHERE l.customer_id = o.customer_id AND l.status NOT IN ('cancelled', 'returned')) = o.ordered_at
           AND NOT EXISTS (SELECT FROM ecrm.automation_run a WHERE a.rule_id = rl.rule_id AND a.dedupe_key = 'no_order:' || o.order_id)
         ORDER BY o.customer_id, o.ordered_at DESC, o.order_id DESC
        ON CONFLICT ON CONSTRAINT automation_run_rule_key DO NOTHING;
        GET DIAGNOSTICS n = ROW_COUNT;
    WHEN 'date' THEN
        -- anniversaries of birth_date or created_at falling on as_of + days_before (UTC); 29 February counts on 28 February in other years
        target_day := (as_of AT TIME ZONE 'UTC')::date + (t ->> 'days_before')::int;
        md := extract(month FROM target_day)::int * 100 + extract(day FROM target_day)::int;
        leap_md := CASE WHEN md = 228 AND extract(day FROM (date_trunc('year', target_day) + interval '1 month 28 days'))::int <> 29 THEN 229 END;
        IF t ->> 'field' = 'birth_date' THEN
            INSERT INTO ecrm.automation_run (rule_id, customer_id, dedupe_key, triggered_at, due_at, context)
            SELECT rl.rule_id, c.customer_id, 'birth_date:' || extract(year FROM target_day) || ':' || c.customer_id, as_of, as_of + rl.delay,
                   jsonb_build_object('date_field', c.birth_date,
                                      'anniversary_years', extract(year FROM target_day)::int - extract(year FROM c.birth_date)::int)
              FROM ecrm.customer_profile c
             WHERE c.status = 'active' AND c.birth_date IS NOT NULL AND c.birth_date < target_day
               AND (extract(month FROM c.birth_date) * 100 + extract(day FROM c.birth_date)) IN (md, coalesce(leap_md, md))
            ON CONFLICT ON CONSTRAINT automation_run_rule_key DO NOTHING;
        ELSE
            INSERT INTO ecrm.automation_run (rule_id, customer_id, dedupe_key, triggered_at, due_at, context)
            SELECT rl.rule_id, c.customer_id, 'created_at:' || extract(year FROM target_day) || ':' || c.customer_id, as_of, as_of + rl.delay,
                   jsonb_build_object('date_field', (c.created_at AT TIME ZONE 'UTC')::date,
                                      'anniversary_years', extract(year FROM target_day)::int - extract(year FROM c.created_at AT TIME ZONE 'UTC')::int)
              FROM ecrm.customer_profile c
             WHERE c.status = 'active' AND (c.created_at AT TIME ZONE 'UTC')::date < target_day
               AND (extract(month FROM c.created_at AT TIME ZONE 'UTC') * 100 + extract(day FROM c.created_at AT TIME ZONE 'UTC'))
                   IN (md, coalesce(leap_md, md))
               AND extract(year FROM c.created_at AT TIME ZONE 'UTC') < extract(year FROM target_day)
            ON CONFLICT ON CONSTRAINT automation_run_rule_key DO NOTHING;
        END IF;
        GET DIAGNOSTICS n = ROW_COUNT;
    WHEN 'ticket_sla_breach' THEN
        -- open tickets whose due time has passed, or will within "before"; each due time once
        after_ := (t ->> 'before')::interval;
        back := (t ->> 'lookback')::interval;
        INSERT INTO ecrm.automation_run (rule_id, customer_id, dedupe_key, triggered_at, due_at, context)
        SELECT rl.rule_id, k.customer_id, 'ticket:' || k.ticket_id || ':' || (t ->> 'target') || ':' || extract(epoch FROM k.due),
               k.due - after_, as_of + rl.delay,
               jsonb_strip_nulls(jsonb_build_object('ticket_id', k.ticket_id, 'ticket_subject', k.subject,
                                                    'ticket_priority', k.priority, 'ticket_team', k.team, 'due_at', k.due))
          FROM (SELECT tk.*, CASE WHEN t ->> 'target' = 'first_response' THEN tk.first_response_due_at ELSE tk.sla_due_at END AS due
                  FROM ecrm.ticket tk
                 WHERE tk.status IN ('open', 'pending')
                   AND (t ->> 'target' = 'resolution' OR tk.first_response_at IS NULL)) k
         WHERE k.due <= as_of + after_ AND k.due > as_of - back
        ON CONFLICT ON CONSTRAINT automation_run_rule_key DO NOTHING;
        GET DIAGNOSTICS n = ROW_COUNT;
    ELSE
        n := 0;
    END CASE;
    RETURN n;
END
$$;

CREATE FUNCTION ecrm.run_automation(as_of timestamptz DEFAULT now(), max_runs integer DEFAULT 1000000)
    RETURNS TABLE (rule text, trigger_kind text, triggered bigint, performed bigint, skipped bigint, still_pending bigint)
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    rl      ecrm.automation_rule;
    ids     bigint[] := '{}';
    trig    bigint[] := '{}';
    dn      bigint[] := '{}';
    sk      bigint[] := '{}';
    batch   bigint[];
    res     record;
    pos     int;
    total   bigint := 0;
BEGIN
    IF as_of IS NULL OR NOT isfinite(as_of) THEN
        RAISE EXCEPTION 'as_of must be a finite time' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM ecrm._check_time(as_of, 'as_of');
    IF max_runs IS NULL OR max_runs < 1 THEN
        RAISE EXCEPTION 'max_runs must be positive, not %', coalesce(max_runs::text, 'NULL') USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- one scheduler at a time; a second call returns at once (the ledger would keep it correct anyway)
    IF NOT pg_try_advisory_xact_lock(hashtext('ecrm.run_automation')) THEN
        RAISE NOTICE 'another ecrm.run_automation() is running; nothing done';
        RETURN;
    END IF;

    FOR rl IN SELECT r.* FROM ecrm.automation_rule r
               WHERE r.enabled AND r.trigger_kind IN ('cart_abandoned', 'no_order', 'date', 'ticket_sla_breach')
               ORDER BY r.rule_id LOOP
        ids := ids || rl.rule_id;
        trig := trig || ecrm._automation_scan(rl, as_of);
        dn := dn || 0::bigint;
        sk := sk || 0::bigint;
    END LOOP;

    -- perform everything due, oldest first, in batches
    LOOP
        SELECT array_agg(x.run_id) INTO batch
          FROM (SELECT r.run_id FROM ecrm.automation_run r
                 WHERE r.status = 'pending' AND r.due_at <= as_of
                 ORDER BY r.due_at, r.run_id LIMIT least(50000, max_runs - total)) x;
        EXIT WHEN batch IS NULL;
        FOR res IN SELECT * FROM ecrm._automation_perform(batch, as_of) LOOP
            pos := array_position(ids, res.rule_id);
            IF pos IS NULL THEN
                ids := ids || res.rule_id;
                trig := trig || 0::bigint;
                dn := dn || res.done;
                sk := sk || res.skipped;
            ELSE
                dn[pos] := dn[pos] + res.done;
                sk[pos] := sk[pos] + res.skipped;
            END IF;
        END LOOP;
        total := total + cardinality(batch);
        EXIT WHEN total >= max_runs;
        -- runs that could not be locked (another transaction holds them) are left for the next call
        EXIT WHEN NOT EXISTS (SELECT FROM ecrm.automation_run r WHERE r.run_id = ANY (batch) AND r.status <> 'pending');
    END LOOP;

    RETURN QUERY
    SELECT r.name, r.trigger_kind, trig[p.i], dn[p.i], sk[p.i],
           (SELECT count(*) FROM ecrm.automation_run x WHERE x.rule_id = r.rule_id AND x.status = 'pending')
      FROM generate_subscripts(ids, 1) p(i)
      JOIN ecrm.automation_rule r ON r.rule_id = ids[p.i]
     ORDER BY r.rule_id;
END
$$;
COMMENT ON FUNCTION ecrm.run_automation(timestamptz, integer) IS
    'The scheduler''s entry point (run it every minute, e.g. with pg_cron): evaluates the time-based rules (cart_abandoned, no_order, date, ticket_sla_breach) as of a time, then performs every run that is due (delayed actions and follow-ups). Nothing fires twice: the ledger ecrm.automation_run has one row per trigger occurrence. Returns per rule what was triggered, performed and skipped';

-- Partial indexes for the time-based triggers.
CREATE INDEX interaction_cart_add_idx ON ecrm.interaction (occurred_at) WHERE kind = 'cart_add';
CREATE INDEX customer_profile_birthday_idx ON ecrm.customer_profile
    ((extract(month FROM birth_date) * 100 + extract(day FROM birth_date))) WHERE birth_date IS NOT NULL AND status = 'active';
CREATE INDEX customer_profile_signup_day_idx ON ecrm.customer_profile
    ((extract(month FROM created_at AT TIME ZONE 'UTC') * 100 + extract(day FROM created_at AT TIME ZONE 'UTC')))
    WHERE status = 'active';

------------------------------------------------------------------------------
-- Support: routing rules, SLA targets, the queue's breach forecast, KB suggestions
------------------------------------------------------------------------------

-- The text search configuration for a language tag (en, de-CH, ...); simple when PostgreSQL has none.
CREATE FUNCTION ecrm._ts_config(language text) RETURNS regconfig
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN coalesce((SELECT c.oid::regconfig FROM pg_catalog.pg_ts_config c
                      WHERE c.cfgnamespace = 'pg_catalog'::regnamespace
                        AND c.cfgname = CASE pg_catalog.lower(pg_catalog.split_part(language, '-', 1))
                                WHEN 'en' THEN 'english' WHEN 'de' THEN 'german' WHEN 'fr' THEN 'french'
                                WHEN 'es' THEN 'spanish' WHEN 'it' THEN 'italian' WHEN 'nl' THEN 'dutch'
                                WHEN 'sv' THEN 'swedish' WHEN 'pt' THEN 'portuguese' WHEN 'da' THEN 'danish'
                                WHEN 'fi' THEN 'finnish' WHEN 'no' THEN 'norwegian' WHEN 'nb' THEN 'norwegian'
                                WHEN 'ru' THEN 'russian' WHEN 'hu' THEN 'hungarian' WHEN 'ro' THEN 'romanian'
                                WHEN 'tr' THEN 'turkish' END),
                    'pg_catalog.simple'::regconfig);

CREATE TABLE ecrm.routing_rule (
    routing_rule_id    bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    name               text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 200),
    sort_order         integer NOT NULL DEFAULT 100,
    enabled            boolean NOT NULL DEFAULT true,
    categories         text[],
    channels           ecrm.channel[],
    languages          text[],
    min_customer_value numeric(14,2) CHECK (min_customer_value >= 0),
    segment            text,
    keywords           text,
    team               text NOT NULL CHECK (length(team) BETWEEN 1 AND 100),
    priority           ecrm.ticket_priority,
    created_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX routing_rule_position_idx ON ecrm.routing_rule (sort_order, routing_rule_id) WHERE enabled;
COMMENT ON TABLE ecrm.routing_rule IS
    'Ticket routing: the first enabled rule (by sort_order) whose conditions all hold assigns a team, and raises the priority to its own, when a ticket opens without a team';
COMMENT ON COLUMN ecrm.routing_rule.categories IS 'Ticket categories it applies to (NULL: any)';
COMMENT ON COLUMN ecrm.routing_rule.channels IS 'Channels it applies to (NULL: any)';
COMMENT ON COLUMN ecrm.routing_rule.languages IS 'Languages (of the ticket, else of the customer) it applies to, as primary tags such as en or de (NULL: any)';
COMMENT ON COLUMN ecrm.routing_rule.min_customer_value IS 'Applies to customers whose net order revenue is at least this';
COMMENT ON COLUMN ecrm.routing_rule.segment IS 'Applies to members of this segment (needs ecrm.in_segment)';
COMMENT ON COLUMN ecrm.routing_rule.keywords IS 'Web-search query ("refund or charged", "\"not arrived\"") the subject and body must match';
COMMENT ON COLUMN ecrm.routing_rule.priority IS 'Priority the ticket gets at least (NULL keeps it)';

CREATE FUNCTION ecrm._routing_rule_check() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    what text := format('routing rule "%s"', NEW.name);
BEGIN
    IF NEW.team IS NULL OR btrim(NEW.team) = '' OR length(NEW.team) > 100 THEN
        RAISE EXCEPTION '% needs a team of 1 to 100 characters', what USING ERRCODE = 'invalid_parameter_value';
    END IF;
    NEW.team := btrim(NEW.team);
    IF NEW.categories IS NOT NULL AND (cardinality(NEW.categories) = 0 OR array_position(NEW.categories, NULL) IS NOT NULL) THEN
        RAISE EXCEPTION 'categories of % must be NULL (any) or a non-empty list without NULLs', what USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NEW.channels IS NOT NULL AND (cardinality(NEW.channels) = 0 OR array_position(NEW.channels, NULL) IS NOT NULL) THEN
        RAISE EXCEPTION 'channels of % must be NULL (any) or a non-empty list without NULLs', what USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NEW.languages IS NOT NULL THEN
        IF cardinality(NEW.languages) = 0 OR EXISTS (SELECT FROM unnest(NEW.languages) l WHERE l IS NULL OR l !~ '^[a-z]{2,3}$') THEN
            RAISE EXCEPTION 'languages of % must be primary language tags such as en or de', what
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END IF;
    IF NEW.min_customer_value < 0 OR NEW.min_customer_value = 'NaN' THEN
        RAISE EXCEPTION 'min_customer_value of % must not be negative', what USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NEW.segment IS NOT NULL THEN
        PERFORM ecrm._check_segment(NEW.segment, what);
    END IF;
    IF NEW.keywords IS NOT NULL THEN
        IF length(NEW.keywords) > 1000 THEN
            RAISE EXCEPTION 'keywords of % must be at most 1000 characters, not %', what, length(NEW.keywords)
                USING ERRCODE = 'program_limit_exceeded';
        END IF;
        IF numnode(websearch_to_tsquery('pg_catalog.simple', NEW.keywords)) = 0 THEN
            RAISE EXCEPTION 'keywords of % must be a search query with at least one word', what
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER routing_rule_check BEFORE INSERT OR UPDATE ON ecrm.routing_rule
    FOR EACH ROW EXECUTE FUNCTION ecrm._routing_rule_check();

CREATE FUNCTION ecrm.save_routing_rule(name text, team text, priority text DEFAULT NULL, categories text[] DEFAULT NULL,
                                       channels text[] DEFAULT NULL, languages text[] DEFAULT NULL,
                                       min_customer_value numeric DEFAULT NULL, segment text DEFAULT NULL,
                                       keywords text DEFAULT NULL, sort_order integer DEFAULT 100,
                                       enabled boolean DEFAULT true) RETURNS bigint
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    id bigint;
BEGIN
    IF name IS NULL OR btrim(name) = '' OR length(name) > 200 THEN
        RAISE EXCEPTION 'routing rule name must be 1 to 200 characters' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM ecrm._finite(min_customer_value, 'min_customer_value');
    IF cardinality(categories) > 1000 OR cardinality(channels) > 100 OR cardinality(languages) > 100
       OR EXISTS (SELECT FROM unnest(categories || languages) v WHERE length(v) > 200) THEN
        RAISE EXCEPTION 'routing rule "%" has too many or too long categories or languages (at most 1000 categories, 100 languages, 200 characters each)', name
            USING ERRCODE = 'program_limit_exceeded';
    END IF;
    IF length(keywords) > 1000 THEN
        RAISE EXCEPTION 'keywords of routing rule "%" must be at most 1000 characters, not %', name, length(keywords)
            USING ERRCODE = 'program_limit_exceeded';
    END IF;
    PERFORM ecrm._enum_label(c, 'ecrm.channel', 'channel') FROM unnest(channels) c;
    INSERT INTO ecrm.routing_rule AS r (name, team, priority, categories, channels, languages, min_customer_value,
                                        segment, keywords, sort_order, enabled)
    VALUES (btrim(save_routing_rule.name), save_routing_rule.team,
            ecrm._enum_label(save_routing_rule.priority, 'ecrm.ticket_priority', 'priority')::ecrm.ticket_priority,
            save_routing_rule.categories, save_routing_rule.channels::ecrm.channel[],
            (SELECT array_agg(lower(l)) FROM unnest(save_routing_rule.languages) l),
            save_routing_rule.min_customer_value, save_routing_rule.segment, save_routing_rule.keywords,
            coalesce(save_routing_rule.sort_order, 100), coalesce(save_routing_rule.enabled, true))
    ON CONFLICT ON CONSTRAINT routing_rule_name_key DO UPDATE
        SET team = EXCLUDED.team, priority = EXCLUDED.priority, categories = EXCLUDED.categories,
            channels = EXCLUDED.channels, languages = EXCLUDED.languages, min_customer_value = EXCLUDED.min_customer_value,
            segment = EXCLUDED.segment, keywords = EXCLUDED.keywords, sort_order = EXCLUDED.sort_order, enabled = EXCLUDED.enabled
    RETURNING r.routing_rule_id INTO id;
    RETURN id;
END
$$;
COMMENT ON FUNCTION ecrm.save_routing_rule(text, text, text, text[], text[], text[], numeric, text, text, integer, boolean) IS
    'Create or replace a ticket routing rule by name: conditions (categories, channels, languages, min_customer_value, segment, keywords; NULL means any) and the team and minimum priority it assigns. Rules are tried by sort_order; the first that matches wins. Returns the rule id';

-- The routing rule that matches a ticket's fields, or NULL.
CREATE FUNCTION ecrm._route(customer_id bigint, category text, channel ecrm.channel, language text,
                            subject text, body text) RETURNS ecrm.routing_rule
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    rr    ecrm.routing_rule;
    lang  text;
    value numeric;
    ok    boolean;
    doc   tsvector;
BEGIN
    lang := lower(split_part(coalesce(language, (SELECT c.language FROM ecrm.customer_profile c WHERE c.customer_id = _route.customer_id)), '-', 1));
    FOR rr IN SELECT r.* FROM ecrm.routing_rule r WHERE r.enabled ORDER BY r.sort_order, r.routing_rule_id LOOP
        CONTINUE WHEN rr.categories IS NOT NULL AND NOT coalesce(category = ANY (rr.categories), false);
        CONTINUE WHEN rr.channels IS NOT NULL AND NOT coalesce(channel = ANY (rr.channels), false);
        CONTINUE WHEN rr.languages IS NOT NULL AND NOT coalesce(lang = ANY (rr.languages), false);
        IF rr.min_customer_value IS NOT NULL THEN
            IF value IS NULL THEN
                SELECT coalesce(sum(o.total) FILTER (WHERE o.status <> 'cancelled'), 0) INTO value
                  FROM ecrm.orders o WHERE o.customer_id = _route.customer_id;
            END IF;
            CONTINUE WHEN value < rr.min_customer_value;
        END IF;
        IF rr.keywords IS NOT NULL THEN
            doc := to_tsvector(ecrm._ts_config(lang), coalesce(subject, '') || ' ' || coalesce(left(body, 100000), ''));
            CONTINUE WHEN NOT doc @@ websearch_to_tsquery(ecrm._ts_config(lang), rr.keywords);
        END IF;
        IF rr.segment IS NOT NULL THEN
            IF to_regprocedure('ecrm.in_segment(bigint,text)') IS NULL THEN
                CONTINUE;
            END IF;
            EXECUTE 'SELECT coalesce(ecrm.in_segment($1, $2), false)' INTO ok USING customer_id, rr.segment;
            CONTINUE WHEN NOT ok;
        END IF;
        RETURN rr;
    END LOOP;
    RETURN NULL;
END
$$;

-- Route a ticket that opens without a team: team and (raised) priority from the first matching rule, due times to match.
CREATE FUNCTION ecrm._ticket_route() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS
$$
-- SECURITY DEFINER: an agent opening a ticket need not read the routing rules or every order of the customer
DECLARE
    rr ecrm.routing_rule;
BEGIN
    -- a restored ticket keeps the team it had (none), whatever the restored rules say (ecrm._restoring())
    IF ecrm._restoring() OR NOT EXISTS (SELECT FROM ecrm.routing_rule r WHERE r.enabled) THEN
        RETURN NEW;
    END IF;
    rr := ecrm._route(NEW.customer_id, NEW.category, NEW.channel, NEW.language, NEW.subject, NEW.body);
    IF rr.routing_rule_id IS NULL THEN
        RETURN NEW;
    END IF;
    NEW.team := rr.team;
    IF rr.priority > NEW.priority THEN
        NEW.priority := rr.priority;
        NEW.first_response_due_at := NEW.opened_at + (ecrm.sla_target(NEW.priority)).first_response;
        NEW.sla_due_at := NEW.opened_at + (ecrm.sla_target(NEW.priority)).resolution;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER ticket_route BEFORE INSERT ON ecrm.ticket
    FOR EACH ROW WHEN (NEW.team IS NULL) EXECUTE FUNCTION ecrm._ticket_route();

CREATE FUNCTION ecrm.route_ticket(ticket_id bigint, apply boolean DEFAULT false)
    RETURNS TABLE (routing_rule text, team text, priority ecrm.ticket_priority)
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    t  ecrm.ticket;
    rr ecrm.routing_rule;
    pr ecrm.ticket_priority;
BEGIN
    SELECT * INTO t FROM ecrm.ticket x WHERE x.ticket_id = route_ticket.ticket_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'ticket % does not exist', coalesce(route_ticket.ticket_id::text, 'NULL') USING ERRCODE = 'no_data_found';
    END IF;
    rr := ecrm._route(t.customer_id, t.category, t.channel, t.language, t.subject, t.body);
    IF rr.routing_rule_id IS NULL THEN
        RETURN;
    END IF;
    pr := greatest(t.priority, coalesce(rr.priority, t.priority));
    IF coalesce(apply, false) AND (rr.team IS DISTINCT FROM t.team OR pr <> t.priority) THEN
        PERFORM ecrm.update_ticket(ticket_id => t.ticket_id, team => rr.team, priority => pr::text,
                                   author => 'routing rule ' || rr.name);
    END IF;
    routing_rule := rr.name;
    team := rr.team;
    priority := pr;
    RETURN NEXT;
END
$$;
COMMENT ON FUNCTION ecrm.route_ticket(bigint, boolean) IS
    'The routing rule, team and priority that the current routing rules give a ticket (why it went where it went); with apply => true, re-route it (recorded in the ticket''s history)';

-- SLA targets: validated so a policy always makes sense.
CREATE FUNCTION ecrm._sla_policy_check() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    bad record;
BEGIN
    SELECT hi.priority AS higher, lo.priority AS lower, hi.first_response AS hf, lo.first_response AS lf,
           hi.resolution AS hr, lo.resolution AS lr
      INTO bad
      FROM (SELECT p.priority, (ecrm.sla_target(p.priority)).* FROM unnest(enum_range(NULL::ecrm.ticket_priority)) p(priority)) hi
      JOIN (SELECT p.priority, (ecrm.sla_target(p.priority)).* FROM unnest(enum_range(NULL::ecrm.ticket_priority)) p(priority)) lo
        ON hi.priority > lo.priority AND (hi.first_response > lo.first_response OR hi.resolution > lo.resolution)
     ORDER BY hi.priority DESC, lo.priority DESC LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'SLA targets of % tickets (% / %) would be longer than those of % tickets (% / %)',
                        bad.higher, bad.hf, bad.hr, bad.lower, bad.lf, bad.lr
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'A higher priority must not get a longer first-response or resolution target than a lower one.';
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER sla_policy_check AFTER INSERT OR UPDATE OR DELETE ON ecrm.sla_policy
    FOR EACH STATEMENT EXECUTE FUNCTION ecrm._sla_policy_check();

CREATE FUNCTION ecrm.set_sla_target(priority text, first_response interval, resolution interval) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    pr ecrm.ticket_priority;
BEGIN
    IF priority IS NULL OR first_response IS NULL OR resolution IS NULL THEN
        RAISE EXCEPTION 'priority, first_response and resolution must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    pr := ecrm._enum_label(priority, 'ecrm.ticket_priority', 'priority');
    IF first_response <= interval '0' OR resolution <= interval '0' THEN
        RAISE EXCEPTION 'SLA targets must be positive, not % / %', first_response, resolution USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF first_response > interval '90 days' OR resolution > interval '365 days' THEN
        RAISE EXCEPTION 'SLA targets of at most 90 days to first response and 365 days to resolution, not % / %', first_response, resolution
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF resolution < first_response THEN
        RAISE EXCEPTION 'resolution target (%) is shorter than the first-response target (%)', resolution, first_response
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO ecrm.sla_policy AS s (priority, first_response, resolution)
    VALUES (pr, set_sla_target.first_response, set_sla_target.resolution)
    ON CONFLICT ON CONSTRAINT sla_policy_pkey DO UPDATE SET first_response = EXCLUDED.first_response, resolution = EXCLUDED.resolution;
END
$$;
COMMENT ON FUNCTION ecrm.set_sla_target(text, interval, interval) IS
    'Set the SLA targets of a ticket priority (time to first response and to resolution). Targets must be positive, resolution at least first response, and a higher priority never slower than a lower one; tickets opened afterwards get due times from them';

-- The ticket queue with the breach forecast (columns appended to the foundation's view).
CREATE OR REPLACE VIEW ecrm.ticket_queue AS
SELECT t.ticket_id, t.customer_id, t.subject, t.category, t.channel, t.priority, t.status, t.team, t.assignee,
       t.language, t.opened_at, now() - t.opened_at AS age,
       t.first_response_at, t.first_response_due_at, t.sla_due_at,
       (t.first_response_at IS NULL AND now() > t.first_response_due_at) AS first_response_breached,
       (now() > t.sla_due_at) AS sla_breached,
       t.sla_due_at - now() AS time_to_breach,
       CASE WHEN t.first_response_at IS NULL THEN t.first_response_due_at - now() END AS time_to_first_response_breach,
       CASE WHEN now() > t.sla_due_at THEN 'breached'
            WHEN t.first_response_at IS NULL AND now() > t.first_response_due_at THEN 'first_response_breached'
            WHEN now() >= t.sla_due_at - (t.sla_due_at - t.opened_at) / 4
              OR (t.first_response_at IS NULL
                  AND now() >= t.first_response_due_at - (t.first_response_due_at - t.opened_at) / 4) THEN 'at_risk'
            ELSE 'on_track' END AS sla_state,
       CASE WHEN t.first_response_at IS NULL AND now() <= t.first_response_due_at
            THEN least(t.first_response_due_at, t.sla_due_at)
            WHEN now() <= t.sla_due_at THEN t.sla_due_at END AS next_breach_at
  FROM ecrm.ticket t
 WHERE t.status IN ('open', 'pending')
 ORDER BY t.priority DESC, t.sla_due_at NULLS LAST, t.ticket_id;
COMMENT ON COLUMN ecrm.ticket_queue.time_to_first_response_breach IS 'Time left until the first response is due (negative when breached; NULL once answered)';
COMMENT ON COLUMN ecrm.ticket_queue.sla_state IS 'breached, first_response_breached, at_risk (less than a quarter of a target''s time left) or on_track';
COMMENT ON COLUMN ecrm.ticket_queue.next_breach_at IS 'When the ticket breaches next if nothing happens (NULL when every target is already breached)';

-- Knowledge-base articles for a ticket.  Every word of the subject and the most frequent words of the
-- body are weighed by how rare they are in the knowledge base (idf = ln(1 + articles / articles with the
-- word)); subject words count double, words found in an article's title count double, a matching category
-- adds a little.  Articles share few words with a ticket, so rare shared words are what tells them apart.
CREATE FUNCTION ecrm.kb_suggest(subject text, body text DEFAULT NULL, max_results integer DEFAULT 5,
                                language text DEFAULT 'en', category text DEFAULT NULL)
    RETURNS TABLE (article_id bigint, slug text, title text, rank real, snippet text)
    LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    cfg   regconfig := ecrm._ts_config(coalesce(language, 'en'));
    terms jsonb;
    q_any tsquery;
BEGIN
    IF max_results IS NULL OR max_results < 1 OR max_results > 100 THEN
        RAISE EXCEPTION 'max_results must be between 1 and 100, not %', coalesce(max_results::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF length(subject) > 10000 OR length(body) > 1000000 THEN
        RAISE EXCEPTION 'subject or body is too long (at most 10000 and 1000000 characters)' USING ERRCODE = 'program_limit_exceeded';
    END IF;
    -- every word of the subject (weight 2); the 64 most frequent words of the body's first 20000 characters (weight 1)
    SELECT jsonb_object_agg(t.lexeme, t.w), string_agg(quote_literal(t.lexeme), ' | ')::tsquery INTO terms, q_any
      FROM (SELECT x.lexeme, max(x.w) AS w
              FROM (SELECT u.lexeme, 2 AS w FROM unnest(to_tsvector(cfg, left(coalesce(subject, ''), 10000))) u
                    UNION ALL
                    (SELECT u.lexeme, 1 FROM unnest(to_tsvector(cfg, left(coalesce(body, ''), 20000))) u
                      ORDER BY cardinality(u.positions) DESC, u.lexeme LIMIT 64)) x
             GROUP BY x.lexeme) t;
    IF q_any IS NULL OR numnode(q_any) = 0 THEN
        RETURN;
    END IF;
    RETURN QUERY
    WITH cand AS (
        SELECT a.article_id, a.slug, a.title, a.body, a.category, tsvector_to_array(a.search) AS lex,
               tsvector_to_array(ts_filter(a.search, '{a}')) AS title_lex
          FROM ecrm.kb_article a
         WHERE a.published AND a.search @@ q_any),
    hits AS (
        SELECT c.article_id, l AS lexeme, (terms ->> l)::int AS w, l = ANY (c.title_lex) AS in_title
          FROM cand c, unnest(c.lex) l
         WHERE terms ? l),
    df AS (
        SELECT h.lexeme, count(*) AS n FROM hits h GROUP BY h.lexeme),
    total AS (
        SELECT count(*) AS n FROM ecrm.kb_article a WHERE a.published),
    score AS (
        SELECT h.article_id,
               sum(h.w * ln(1 + total.n::numeric / df.n) * CASE WHEN h.in_title THEN 2 ELSE 1 END) AS s
          FROM hits h JOIN df ON df.lexeme = h.lexeme CROSS JOIN total
         GROUP BY h.article_id)
    SELECT c.article_id, c.slug, c.title,
           (sc.s + CASE WHEN c.category = kb_suggest.category THEN 0.5 ELSE 0 END)::real AS rank,
           ts_headline(cfg, c.body, q_any, 'StartSel=**, StopSel=**, MaxWords=30, MinWords=10, MaxFragments=2')
      FROM cand c JOIN score sc ON sc.article_id = c.article_id
     ORDER BY rank DESC, c.article_id
     LIMIT max_results;
END
$$;
COMMENT ON FUNCTION ecrm.kb_suggest(text, text, integer, text, text) IS
    'Knowledge-base articles that may answer a new ticket, from its subject and body in the ticket''s language: shared words weighed by their rarity in the knowledge base (subject and title words count double); ranked, with highlighted snippets';

CREATE FUNCTION ecrm.kb_suggest(ticket_id bigint, max_results integer DEFAULT 5)
    RETURNS TABLE (article_id bigint, slug text, title text, rank real, snippet text)
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    t ecrm.ticket;
BEGIN
    SELECT * INTO t FROM ecrm.ticket x WHERE x.ticket_id = kb_suggest.ticket_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'ticket % does not exist', coalesce(kb_suggest.ticket_id::text, 'NULL') USING ERRCODE = 'no_data_found';
    END IF;
    RETURN QUERY SELECT * FROM ecrm.kb_suggest(t.subject, t.body, max_results,
                                               coalesce(t.language, (SELECT c.language FROM ecrm.customer_profile c WHERE c.customer_id = t.customer_id), 'en'),
                                               t.category);
END
$$;
COMMENT ON FUNCTION ecrm.kb_suggest(bigint, integer) IS
    'Knowledge-base articles that may answer a ticket, from its subject, body, language and category';

------------------------------------------------------------------------------
-- Registry, dump, privileges of automation and support
------------------------------------------------------------------------------
INSERT INTO ecrm.customer_table (relid, on_merge, on_erase, pii_columns, note, builtin) VALUES
    ('ecrm.automation_run', 'repoint', 'delete', '{context}', 'automation ledger; its context holds trigger fields', true),
    ('ecrm.outbox', 'repoint', 'delete', '{recipient,subject,body,payload}', 'rendered messages and tasks', true),
    ('ecrm.campaign_member', 'repoint', 'delete', '{}', NULL, true);

DO $dump$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['ecrm.message_template', 'ecrm.campaign_member', 'ecrm.automation_rule', 'ecrm.automation_run',
                             'ecrm.outbox', 'ecrm.routing_rule'] LOOP
        PERFORM pg_catalog.pg_extension_config_dump(t::regclass, '');
        PERFORM pg_catalog.pg_extension_config_dump(s.seq, '')
           FROM (SELECT pg_catalog.pg_get_serial_sequence(t, a.attname)::regclass AS seq
                   FROM pg_catalog.pg_attribute a
                  WHERE a.attrelid = t::regclass AND a.attidentity <> '' LIMIT 1) s;
    END LOOP;
END
$dump$;

-- Agents read rules and the ledger, consume the outbox, route tickets and get article suggestions.
GRANT SELECT ON ecrm.message_template, ecrm.automation_rule, ecrm.automation_run, ecrm.campaign_member,
                ecrm.routing_rule, ecrm.outbox_stats
   TO ecrm_agent;
GRANT SELECT, UPDATE (status, attempts, available_at, claimed_by, claimed_at, lease_until, done_at, last_error)
   ON ecrm.outbox TO ecrm_agent;
GRANT INSERT ON ecrm.outbox TO ecrm_agent;
GRANT EXECUTE ON FUNCTION
    ecrm.template_fields(text), ecrm.render_template(text, jsonb), ecrm.template_vocabulary(),
    ecrm.enqueue(text, bigint, jsonb, text, text, text, text, text, text, timestamptz, integer),
    ecrm.outbox_claim(text, integer, text[], interval), ecrm.outbox_done(bigint, text), ecrm.outbox_done(bigint[], text),
    ecrm.outbox_failed(bigint, text, text, boolean, interval), ecrm._outbox_claimed(bigint, text),
    ecrm.route_ticket(bigint, boolean), ecrm.kb_suggest(text, text, integer, text, text), ecrm.kb_suggest(bigint, integer),
    ecrm._ts_config(text), ecrm._route(bigint, text, ecrm.channel, text, text, text), ecrm._outbox_notify(),
    ecrm._automation_on_interaction(), ecrm._automation_on_order(), ecrm._automation_on_stage(),
    ecrm._automation_on_score(), ecrm._automation_on_segment(), ecrm._ticket_route()
   TO ecrm_agent;
-- Analysts: outbox health only (no messages).
GRANT SELECT ON ecrm.outbox_stats TO ecrm_analyst;
GRANT EXECUTE ON FUNCTION ecrm.template_fields(text), ecrm.render_template(text, jsonb), ecrm.template_vocabulary()
   TO ecrm_analyst;

-- Score and segment triggers, when those capabilities were installed before this part.
SELECT ecrm._automation_attach();
