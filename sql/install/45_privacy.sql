
------------------------------------------------------------------------------
-- Privacy: masking and pseudonymisation kernel (src/mask.c, generalize.c,
-- pseudonym.c, pii.c, lineage.c), consent, masking policies and masked views,
-- static masking, PII discovery, and the GDPR rights of access and erasure.
--
-- Masking functions never echo a value they cannot parse ("***"), never
-- quote a value in an error, and take any length: they run inside masked
-- views, where an error on one row would break the whole view.  Functions
-- with options are not STRICT, so that a bad option is an error even for a
-- NULL value (which gives NULL).
------------------------------------------------------------------------------
CREATE FUNCTION ecrm.mask_partial(value text, prefix integer, padding text, suffix integer) RETURNS text
    AS 'MODULE_PATHNAME', 'ecrm_mask_partial'
    LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.mask_partial(text, integer, text, integer) IS
    'The first prefix and last suffix characters of a value with padding in between (mask_partial(''Jonathan'', 2, ''***'', 1) = ''Jo***n''); only the padding when they would show it all';

CREATE FUNCTION ecrm.mask_keep(value text, keep_first integer, keep_last integer) RETURNS text
    AS 'MODULE_PATHNAME', 'ecrm_mask_keep'
    LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.mask_keep(text, integer, integer) IS
    'Every letter and digit replaced by * except the first keep_first and last keep_last of them, separators kept (''123-45-6789'', 0, 4 -> ''***-**-6789''); all masked when they would show it all';

CREATE FUNCTION ecrm.mask_email(email text, keep text DEFAULT 'provider') RETURNS text
    AS 'MODULE_PATHNAME', 'ecrm_mask_email'
    LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.mask_email(text, text) IS
    'Masked email: first character and *** for the person; keep provider (default: a public mail provider''s domain is kept, any other is cut to its public suffix: j***@gmail.com, j***@***.co.uk), domain, tld or none; *** when it is not an email address';

CREATE FUNCTION ecrm.mask_phone(phone text, keep_last integer DEFAULT 2) RETURNS text
    AS 'MODULE_PATHNAME', 'ecrm_mask_phone'
    LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.mask_phone(text, integer) IS
    'Masked phone number: + and the calling code of an international number, then * for every digit but the last keep_last (0 to 4, at most half of them): +44********83; *** when it is not a phone number';

CREATE FUNCTION ecrm.mask_name(name text, keep text DEFAULT 'initials') RETURNS text
    AS 'MODULE_PATHNAME', 'ecrm_mask_name'
    LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.mask_name(text, text) IS
    'Masked person name: keep initials (''J. P.''), first (''Jean P.'') or none (''***'')';

CREATE FUNCTION ecrm.mask_address(address text) RETURNS text
    AS 'MODULE_PATHNAME', 'ecrm_mask_address'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.mask_address(text) IS
    'Masked street address: the street of the part with the house number, every word with a digit replaced by *** (''221B Baker Street, London'' -> ''*** Baker Street''); *** when there is none';

CREATE FUNCTION ecrm.mask_postal_code(code text) RETURNS text
    AS 'MODULE_PATHNAME', 'ecrm_mask_postal_code'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.mask_postal_code(text) IS
    'Postal code cut to its area: ''SW1A 1AA'' -> ''SW1A ***'', ''90210'' -> ''902**'', ''1012AB'' -> ''1012**''; *** when it is not a postal code';

CREATE FUNCTION ecrm.mask_card(number text) RETURNS text
    AS 'MODULE_PATHNAME', 'ecrm_mask_card'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.mask_card(text) IS
    'Masked payment card number: * for all digits but the last four of a valid number (12 to 19 digits, Luhn check); *** for anything else';

CREATE FUNCTION ecrm.mask_iban(iban text) RETURNS text
    AS 'MODULE_PATHNAME', 'ecrm_mask_iban'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.mask_iban(text) IS
    'Masked IBAN: country code, * and the last four characters of a valid IBAN (its country''s length, mod-97 check); *** for anything else';

CREATE FUNCTION ecrm.mask_date(value date, unit text DEFAULT 'month') RETURNS date
    AS 'MODULE_PATHNAME', 'ecrm_mask_date'
    LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.mask_date(date, text) IS
    'A date (of birth) generalised to the first day of its month, quarter, year or decade';

CREATE FUNCTION ecrm.mask_time(value timestamp, unit text DEFAULT 'day') RETURNS timestamp
    AS 'MODULE_PATHNAME', 'ecrm_mask_timestamp'
    LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.mask_time(timestamp, text) IS
    'A timestamp generalised to its hour, day, month, quarter, year or decade';

-- stable: truncation happens in the session's TimeZone
CREATE FUNCTION ecrm.mask_time(value timestamptz, unit text DEFAULT 'day') RETURNS timestamptz
    AS 'MODULE_PATHNAME', 'ecrm_mask_timestamptz'
    LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.mask_time(timestamptz, text) IS
    'A timestamp with time zone generalised to its hour, day, month, quarter, year or decade (in the session''s time zone)';

CREATE FUNCTION ecrm.mask_range(value integer, step integer) RETURNS int4range
    AS 'MODULE_PATHNAME', 'ecrm_mask_range_int4'
    LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION ecrm.mask_range(value bigint, step bigint) RETURNS int8range
    AS 'MODULE_PATHNAME', 'ecrm_mask_range_int8'
    LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION ecrm.mask_range(value numeric, step numeric) RETURNS numrange
    AS 'MODULE_PATHNAME', 'ecrm_mask_range_numeric'
    LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.mask_range(integer, integer) IS 'The range [k*step, (k+1)*step) a number falls in (mask_range(37, 10) = [30,40))';
COMMENT ON FUNCTION ecrm.mask_range(bigint, bigint) IS 'The range [k*step, (k+1)*step) a number falls in';
COMMENT ON FUNCTION ecrm.mask_range(numeric, numeric) IS 'The range [k*step, (k+1)*step) a number falls in; NULL for NaN and infinities';

-- volatile: fresh noise on every call (see the averaging caveat in the comment)
CREATE FUNCTION ecrm.mask_noise(value double precision, ratio double precision) RETURNS double precision
    AS 'MODULE_PATHNAME', 'ecrm_mask_noise'
    LANGUAGE C VOLATILE PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.mask_noise(double precision, double precision) IS
    'value * (1 + ratio * u), u uniform in [-1, 1), drawn afresh on every call (hence volatile): whoever can read the value many times can average the noise away; use the keyed form for values shown repeatedly';

-- stable: keyed by the ecrm.pseudonym_key setting
CREATE FUNCTION ecrm.mask_noise(value double precision, ratio double precision, seed text, context text DEFAULT NULL)
    RETURNS double precision
    AS 'MODULE_PATHNAME', 'ecrm_mask_noise_keyed'
    LANGUAGE C STABLE PARALLEL SAFE;
CREATE FUNCTION ecrm.mask_noise(value numeric, ratio double precision, seed text, context text DEFAULT NULL)
    RETURNS numeric
    AS 'MODULE_PATHNAME', 'ecrm_mask_noise_keyed_numeric'
    LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.mask_noise(double precision, double precision, text, text) IS
    'Keyed bounded noise: value * (1 + ratio * u) with u in [-1, 1) drawn from HMAC(ecrm.pseudonym_key, context, seed): the same seed always gets the same noise, so repeated reads cannot average it away (averages over many rows still converge: small groups leak)';
COMMENT ON FUNCTION ecrm.mask_noise(numeric, double precision, text, text) IS
    'Keyed bounded noise for numeric values, rounded to the value''s scale (see the double precision form)';

CREATE FUNCTION ecrm.mask_ip(ip inet, v4_prefix integer DEFAULT 24, v6_prefix integer DEFAULT 48) RETURNS inet
    AS 'MODULE_PATHNAME', 'ecrm_mask_ip'
    LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION ecrm.mask_ip(ip text, v4_prefix integer DEFAULT 24, v6_prefix integer DEFAULT 48) RETURNS text
    AS 'MODULE_PATHNAME', 'ecrm_mask_ip_text'
    LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.mask_ip(inet, integer, integer) IS
    'An IP address with its host part zeroed: IPv4 to v4_prefix bits (24), IPv6 to v6_prefix bits (48)';
COMMENT ON FUNCTION ecrm.mask_ip(text, integer, integer) IS
    'An IP address written as text with its host part zeroed (192.0.2.77 -> 192.0.2.0); *** when it is not an IP address';

------------------------------------------------------------------------------
-- Keyed pseudonyms.  Key: the superuser-only setting ecrm.pseudonym_key (set in
-- postgresql.conf or with ALTER SYSTEM; ALTER DATABASE/ROLE SET is refused
-- because pg_db_role_setting is readable by every role).  Stable, because
-- they read that setting.
------------------------------------------------------------------------------
CREATE FUNCTION ecrm.pseudonym(value text, context text DEFAULT NULL) RETURNS text
    AS 'MODULE_PATHNAME', 'ecrm_pseudonym'
    LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.pseudonym(text, text) IS
    'Deterministic 64-bit token (16 hex digits) of a value: HMAC-SHA256 under ecrm.pseudonym_key and context; the same value always gets the same token, so joins and counts keep working';

CREATE FUNCTION ecrm.pseudonym_id(value bigint, context text DEFAULT NULL) RETURNS bigint
    AS 'MODULE_PATHNAME', 'ecrm_pseudonym_id'
    LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.pseudonym_id(bigint, text) IS
    'Deterministic positive bigint pseudonym of an id (HMAC-SHA256 under ecrm.pseudonym_key and context)';

CREATE FUNCTION ecrm.pseudonym_email(email text, context text DEFAULT NULL) RETURNS text
    AS 'MODULE_PATHNAME', 'ecrm_pseudonym_email'
    LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.pseudonym_email(text, text) IS
    'A valid but fake email address (given.surname123456@example.org, reserved domains that never deliver) for an email address, the same for every spelling of it (case, Gmail dots, +tags)';

CREATE FUNCTION ecrm.pseudonym_phone(phone text, context text DEFAULT NULL) RETURNS text
    AS 'MODULE_PATHNAME', 'ecrm_pseudonym_phone'
    LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.pseudonym_phone(text, text) IS
    'A valid-looking fake phone number with the same calling code, length and first national digit; numbers without a country code are read in ecrm.default_country; *** when it is not a phone number';

CREATE FUNCTION ecrm.pseudonym_name(name text, part text DEFAULT 'full', context text DEFAULT NULL) RETURNS text
    AS 'MODULE_PATHNAME', 'ecrm_pseudonym_name'
    LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.pseudonym_name(text, text, text) IS
    'A plausible fake name for a name (part full: ''Given Surname'', first or last), the same for the same name ignoring case and spacing';

------------------------------------------------------------------------------
-- Recognising personal data (PII discovery, free-text redaction)
------------------------------------------------------------------------------
CREATE FUNCTION ecrm.pii_kind(value text) RETURNS text
    AS 'MODULE_PATHNAME', 'ecrm_pii_kind'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.pii_kind(text) IS
    'The kind of personal data a whole value is: email, ip, iban (mod-97), card (Luhn), date, phone or name; NULL when none';

CREATE FUNCTION ecrm.pii_find(value text) RETURNS text[]
    AS 'MODULE_PATHNAME', 'ecrm_pii_find'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.pii_find(text) IS
    'The kinds of personal data found inside free text (email, phone, card, iban, ip); empty when none';

CREATE FUNCTION ecrm.redact_text(value text) RETURNS text
    AS 'MODULE_PATHNAME', 'ecrm_redact_text'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.redact_text(text) IS
    'Free text with every email address, phone number, card number, IBAN and IP address replaced by [email], [phone], [card], [iban] or [ip] (names in prose are not recognised)';

CREATE FUNCTION ecrm.is_valid_card(number text) RETURNS boolean
    AS 'MODULE_PATHNAME', 'ecrm_is_valid_card'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.is_valid_card(text) IS 'Whether a text is a payment card number (12 to 19 digits, single spaces or hyphens between them) with a valid Luhn check digit';

CREATE FUNCTION ecrm.is_valid_iban(iban text) RETURNS boolean
    AS 'MODULE_PATHNAME', 'ecrm_is_valid_iban'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.is_valid_iban(text) IS 'Whether a text is an IBAN with its country''s length and a valid ISO 7064 mod 97-10 check';

CREATE FUNCTION ecrm.check_digits_valid(value text, algorithm text) RETURNS boolean
    AS 'MODULE_PATHNAME', 'ecrm_check_digits_valid'
    LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.check_digits_valid(text, text) IS
    'Check digits of an identifier: luhn (Canadian SIN, Swedish personnummer), mod97 (French NIR, Belgian national number), mod11 (Dutch BSN), dni (Spanish DNI/NIE letter)';

CREATE FUNCTION ecrm.view_column_sources(view regclass)
    RETURNS TABLE (column_name name, source_table regclass, source_column name, direct boolean)
    AS 'MODULE_PATHNAME', 'ecrm_view_column_sources'
    LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.view_column_sources(regclass) IS
    'Column lineage of a view: for each output column, every table column its values are computed from (through views, subqueries, joins, set operations, CTEs and sub-selects); direct when the column is a plain copy of that one column; NULL source for a column computed from no table column';

------------------------------------------------------------------------------
-- National identifiers, as configured: a format per kind of id
------------------------------------------------------------------------------
CREATE TABLE ecrm.national_id_format (
    kind         text PRIMARY KEY CHECK (kind ~ '^[a-z][a-z0-9_]{0,62}$'),
    description  text NOT NULL,
    pattern      text NOT NULL,
    check_digits text CHECK (check_digits IN ('luhn', 'mod97', 'mod11', 'dni')),
    keep_first   integer NOT NULL DEFAULT 0 CHECK (keep_first BETWEEN 0 AND 4),
    keep_last    integer NOT NULL DEFAULT 0 CHECK (keep_last BETWEEN 0 AND 4),
    builtin      boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE ecrm.national_id_format IS
    'Formats of national identifiers for ecrm.mask_national_id: a regular expression over the id without spaces, dots, hyphens and slashes (upper case), an optional check-digit algorithm, and how many characters a masked id keeps';
INSERT INTO ecrm.national_id_format (kind, description, pattern, check_digits, keep_first, keep_last, builtin) VALUES
    ('us_ssn', 'United States Social Security number', '^(?!000|666|9)[0-9]{3}(?!00)[0-9]{2}(?!0000)[0-9]{4}$', NULL, 0, 4, true),
    ('uk_nino', 'United Kingdom National Insurance number', '^[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z][0-9]{6}[A-D]$', NULL, 2, 0, true),
    ('fr_nir', 'French social security number (NIR, with its key)', '^[12][0-9]{14}$', 'mod97', 1, 0, true),
    ('be_rrn', 'Belgian national register number', '^[0-9]{11}$', 'mod97', 0, 0, true),
    ('nl_bsn', 'Dutch citizen service number (BSN)', '^[0-9]{9}$', 'mod11', 0, 0, true),
    ('es_dni', 'Spanish DNI or NIE', '^[XYZ]?[0-9]{7,8}[A-Z]$', 'dni', 0, 0, true),
    ('ca_sin', 'Canadian Social Insurance Number', '^[0-9]{9}$', 'luhn', 0, 3, true),
    ('se_pnr', 'Swedish personal identity number (10 digits)', '^[0-9]{10}$', 'luhn', 0, 0, true);

-- Upsert on INSERT so that a restored dump overwrites the rows CREATE EXTENSION wrote.
CREATE FUNCTION ecrm._upsert_national_id_format() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    UPDATE ecrm.national_id_format f
       SET description = NEW.description, pattern = NEW.pattern, check_digits = NEW.check_digits,
           keep_first = NEW.keep_first, keep_last = NEW.keep_last, builtin = NEW.builtin
     WHERE f.kind = NEW.kind;
    IF FOUND THEN
        RETURN NULL;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER national_id_format_upsert BEFORE INSERT ON ecrm.national_id_format
    FOR EACH ROW EXECUTE FUNCTION ecrm._upsert_national_id_format();

CREATE FUNCTION ecrm._national_id_format(kind text) RETURNS ecrm.national_id_format
    LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    f ecrm.national_id_format;
BEGIN
    IF kind IS NULL THEN
        RAISE EXCEPTION 'kind of national id must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT * INTO f FROM ecrm.national_id_format n WHERE n.kind = _national_id_format.kind;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown kind of national id "%"', left(kind, 40)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = format('Use one of: %s, or add a format to ecrm.national_id_format.',
                                (SELECT string_agg(n.kind, ', ' ORDER BY n.kind) FROM ecrm.national_id_format n));
    END IF;
    RETURN f;
END
$$;

CREATE FUNCTION ecrm.is_valid_national_id(value text, kind text) RETURNS boolean
    LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    f ecrm.national_id_format := ecrm._national_id_format(kind);
    c text;
BEGIN
    IF value IS NULL THEN
        RETURN NULL;
    END IF;
    IF length(value) > 100 THEN
        RETURN false;
    END IF;
    c := upper(regexp_replace(value, '[[:space:]./-]', '', 'g'));
    RETURN c ~ f.pattern AND (f.check_digits IS NULL OR ecrm.check_digits_valid(c, f.check_digits));
END
$$;
COMMENT ON FUNCTION ecrm.is_valid_national_id(text, text) IS
    'Whether a value is a national id of a kind configured in ecrm.national_id_format (its pattern and check digits)';

CREATE FUNCTION ecrm.mask_national_id(value text, kind text) RETURNS text
    LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    f ecrm.national_id_format := ecrm._national_id_format(kind);
BEGIN
    IF value IS NULL THEN
        RETURN NULL;
    END IF;
    IF btrim(value) = '' THEN
        RETURN '';
    END IF;
    IF NOT ecrm.is_valid_national_id(value, kind) THEN
        RETURN '***';
    END IF;
    RETURN ecrm.mask_keep(btrim(value), f.keep_first, f.keep_last);
END
$$;
COMMENT ON FUNCTION ecrm.mask_national_id(text, text) IS
    'Masked national id of a configured kind (us_ssn: ***-**-6789): letters and digits replaced by * except those the format keeps; *** when the value does not match the format or its check digits';

------------------------------------------------------------------------------
-- Consent in force per live customer and purpose.  The latest record of each
-- profile wins; across the profiles merged into a customer the least
-- permissive answer wins (one refusal is a refusal), until the customer
-- answers again after the merge (recorded after the merged profile's last
-- change, its merge): a person who refused under an old address can consent
-- again.  Kept up to date by triggers, so has_consent() and the masked views
-- read one index entry.
------------------------------------------------------------------------------
CREATE TABLE ecrm.consent_state (
    customer_id bigint NOT NULL REFERENCES ecrm.customer_profile (customer_id),
    purpose     text NOT NULL REFERENCES ecrm.consent_purpose ON DELETE CASCADE,
    granted     boolean NOT NULL,
    recorded_at timestamptz NOT NULL,
    profiles    integer NOT NULL CHECK (profiles > 0),
    PRIMARY KEY (customer_id, purpose)
);
CREATE INDEX consent_state_refused_idx ON ecrm.consent_state (purpose, customer_id) WHERE NOT granted;
COMMENT ON TABLE ecrm.consent_state IS
    'Consent in force per live customer and purpose: the latest record of each of its profiles (itself and those merged into it), least permissive across them until the customer answers again after a merge; maintained by triggers on ecrm.consent_event and ecrm.customer_profile';
COMMENT ON COLUMN ecrm.consent_state.granted IS 'true: every profile that answered consents; false: at least one refused or withdrew';
COMMENT ON COLUMN ecrm.consent_state.recorded_at IS 'Latest answer among the profiles';
COMMENT ON COLUMN ecrm.consent_state.profiles IS 'How many of the customer''s profiles have answered for this purpose';

-- Recompute the consent state of the live customers that the given profile ids stand for.
-- SECURITY DEFINER: whoever may record a consent keeps the state current, without being
-- able to write ecrm.consent_state directly.
CREATE FUNCTION ecrm._refresh_consent_state(ids bigint[]) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    roots bigint[];
BEGIN
    -- (only merged profiles need resolving: bulk inserts bring many ids)
    SELECT array_agg(DISTINCT r.id ORDER BY r.id) INTO roots
      FROM (SELECT CASE WHEN p.status = 'merged' THEN ecrm.resolve_customer(p.customer_id) ELSE p.customer_id END AS id
              FROM ecrm.customer_profile p WHERE p.customer_id = ANY (ids)) r
     WHERE r.id IS NOT NULL;
    -- One writer per customer at a time, so that concurrent consents do not overwrite each
    -- other's state; NO KEY UPDATE does not block inserts that only reference the profile.
    PERFORM FROM ecrm.customer_profile p WHERE p.customer_id = ANY (roots)
      ORDER BY p.customer_id FOR NO KEY UPDATE;
    DELETE FROM ecrm.consent_state s WHERE s.customer_id = ANY (ids) OR s.customer_id = ANY (roots);
    INSERT INTO ecrm.consent_state (customer_id, purpose, granted, recorded_at, profiles)
    WITH RECURSIVE fam (root, pid, merged_at) AS (
        SELECT p.customer_id, p.customer_id, NULL::timestamptz FROM ecrm.customer_profile p
         WHERE p.customer_id = ANY (roots) AND p.status = 'active'
        UNION ALL
        SELECT f.root, p.customer_id, p.updated_at
          FROM fam f JOIN ecrm.customer_profile p ON p.merged_into = f.pid AND p.status = 'merged'
    ) CYCLE pid SET is_cycle USING path,
    latest AS (
        SELECT DISTINCT ON (f.root, e.customer_id, e.purpose) f.root, f.pid, f.merged_at, e.purpose, e.granted, e.recorded_at
          FROM fam f JOIN ecrm.consent_event e ON e.customer_id = f.pid
         WHERE NOT f.is_cycle
         ORDER BY f.root, e.customer_id, e.purpose, e.recorded_at DESC, e.consent_event_id DESC)
    SELECT l.root, l.purpose, bool_and(l.granted), max(l.recorded_at), count(*)
      FROM latest l
      LEFT JOIN latest s ON s.root = l.root AND s.pid = l.root AND s.purpose = l.purpose
     -- a merged profile's answer counts until the customer answers again after the merge
     WHERE l.pid = l.root OR s.recorded_at IS NULL OR s.recorded_at <= l.merged_at
     GROUP BY l.root, l.purpose;
END
$$;

CREATE FUNCTION ecrm.refresh_consent_state() RETURNS bigint
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    n bigint;
BEGIN
    DELETE FROM ecrm.consent_state;
    PERFORM ecrm._refresh_consent_state(ARRAY(SELECT DISTINCT e.customer_id FROM ecrm.consent_event e));
    SELECT count(*) INTO n FROM ecrm.consent_state;
    RETURN n;
END
$$;
COMMENT ON FUNCTION ecrm.refresh_consent_state() IS
    'Rebuild ecrm.consent_state from the consent history (triggers keep it current; use after changing ecrm.consent_event with triggers disabled). Returns the number of rows';

CREATE FUNCTION ecrm._consent_event_changed() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM ecrm._refresh_consent_state(ARRAY(SELECT DISTINCT n.customer_id FROM new_rows n));
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM ecrm._refresh_consent_state(ARRAY(SELECT DISTINCT o.customer_id FROM old_rows o));
    ELSE
        PERFORM ecrm._refresh_consent_state(ARRAY(SELECT n.customer_id FROM new_rows n
                                                  UNION SELECT o.customer_id FROM old_rows o));
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER consent_event_state_ins AFTER INSERT ON ecrm.consent_event
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION ecrm._consent_event_changed();
CREATE TRIGGER consent_event_state_upd AFTER UPDATE ON ecrm.consent_event
    REFERENCING NEW TABLE AS new_rows OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION ecrm._consent_event_changed();
CREATE TRIGGER consent_event_state_del AFTER DELETE ON ecrm.consent_event
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION ecrm._consent_event_changed();

-- A merge, unmerge or erasure changes whose answers count for whom.
CREATE FUNCTION ecrm._profile_identity_changed() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    PERFORM ecrm._refresh_consent_state(ARRAY[NEW.customer_id, OLD.merged_into, NEW.merged_into]);
    RETURN NULL;
END
$$;
CREATE TRIGGER customer_profile_consent_state AFTER UPDATE OF status, merged_into ON ecrm.customer_profile
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.merged_into IS DISTINCT FROM NEW.merged_into)
    EXECUTE FUNCTION ecrm._profile_identity_changed();

-- Upsert on INSERT: a restored dump brings rows the restored consent history already rebuilt.
CREATE FUNCTION ecrm._upsert_consent_state() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    UPDATE ecrm.consent_state s SET granted = NEW.granted, recorded_at = NEW.recorded_at, profiles = NEW.profiles
     WHERE s.customer_id = NEW.customer_id AND s.purpose = NEW.purpose;
    IF FOUND THEN
        RETURN NULL;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER consent_state_upsert BEFORE INSERT ON ecrm.consent_state
    FOR EACH ROW EXECUTE FUNCTION ecrm._upsert_consent_state();

-- An unknown purpose is an error (a typo must not silently mean "no consent").
CREATE FUNCTION ecrm._check_purpose(purpose text) RETURNS text
    LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    IF purpose IS NOT NULL AND NOT EXISTS (SELECT FROM ecrm.consent_purpose p WHERE p.purpose = _check_purpose.purpose) THEN
        RAISE EXCEPTION 'unknown consent purpose "%"', left(purpose, 100)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = format('Use one of: %s.', (SELECT string_agg(p.purpose, ', ' ORDER BY p.purpose) FROM ecrm.consent_purpose p));
    END IF;
    RETURN purpose;
END
$$;

CREATE OR REPLACE FUNCTION ecrm.has_consent(customer_id bigint, purpose text) RETURNS boolean
    LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    IF customer_id IS NULL OR ecrm._check_purpose(purpose) IS NULL THEN
        RETURN false;
    END IF;
    RETURN coalesce((SELECT s.granted FROM ecrm.consent_state s
                      WHERE s.customer_id = ecrm.resolve_customer(has_consent.customer_id)
                        AND s.purpose = has_consent.purpose), false);
END
$$;
COMMENT ON FUNCTION ecrm.has_consent(bigint, text) IS
    'Whether a customer''s consent for a purpose is in force: the latest answer of each of its profiles (itself and those merged into it), a refusal by any of them winning until the customer answers again after the merge; no answer means no consent; an unknown purpose is an error. Call it before contacting someone';

CREATE FUNCTION ecrm.has_consent(customer_id bigint, purpose text, at timestamptz) RETURNS boolean
    LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    IF customer_id IS NULL OR ecrm._check_purpose(purpose) IS NULL OR at IS NULL THEN
        RETURN false;
    END IF;
    RETURN coalesce((
        WITH RECURSIVE fam (pid, merged_at) AS (
            SELECT ecrm.resolve_customer(has_consent.customer_id), NULL::timestamptz
            UNION
            SELECT p.customer_id, p.updated_at FROM fam f JOIN ecrm.customer_profile p ON p.merged_into = f.pid AND p.status = 'merged'),
        latest AS (
            SELECT f.pid, f.merged_at, l.granted, l.recorded_at
              FROM fam f CROSS JOIN LATERAL (
                    SELECT e.granted, e.recorded_at FROM ecrm.consent_event e
                     WHERE e.customer_id = f.pid AND e.purpose = has_consent.purpose AND e.recorded_at <= has_consent.at
                     ORDER BY e.recorded_at DESC, e.consent_event_id DESC LIMIT 1) l)
        SELECT bool_and(l.granted) FROM latest l
         WHERE l.merged_at IS NULL
            OR NOT EXISTS (SELECT FROM latest s WHERE s.merged_at IS NULL AND s.recorded_at > l.merged_at)), false);
END
$$;
COMMENT ON FUNCTION ecrm.has_consent(bigint, text, timestamptz) IS
    'Whether a customer''s consent for a purpose was in force at a past time (the answers recorded until then; the customer''s profiles as they are now)';

CREATE FUNCTION ecrm.effective_consents(customer_id bigint)
    RETURNS TABLE (purpose text, granted boolean, recorded_at timestamptz, profiles integer)
    LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    id bigint := ecrm.resolve_customer(effective_consents.customer_id);
BEGIN
    IF effective_consents.customer_id IS NULL THEN
        RAISE EXCEPTION 'customer_id must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF id IS NULL THEN
        RAISE EXCEPTION 'customer % does not exist', effective_consents.customer_id USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN QUERY
    SELECT p.purpose, s.granted, s.recorded_at, coalesce(s.profiles, 0)
      FROM ecrm.consent_purpose p
      LEFT JOIN ecrm.consent_state s ON s.customer_id = id AND s.purpose = p.purpose
     ORDER BY p.purpose;
END
$$;
COMMENT ON FUNCTION ecrm.effective_consents(bigint) IS
    'Every consent purpose with the customer''s answer in force (granted NULL: never asked), across the profiles merged into it';

-- Who a campaign may contact: live customers whose consent for its purpose is in force, with the
-- address for its channel.  Campaign tools and automation send to this, never to a raw list.
CREATE FUNCTION ecrm.campaign_audience(campaign_id bigint, customer_ids bigint[] DEFAULT NULL)
    RETURNS TABLE (customer_id bigint, address text)
    LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    c ecrm.campaign;
BEGIN
    SELECT * INTO c FROM ecrm.campaign k WHERE k.campaign_id = campaign_audience.campaign_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'campaign % does not exist', coalesce(campaign_audience.campaign_id::text, 'NULL')
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF cardinality(customer_ids) > 10000000 THEN
        RAISE EXCEPTION 'at most 10000000 candidates in one call, not %', cardinality(customer_ids)
            USING ERRCODE = 'program_limit_exceeded';
    END IF;
    RETURN QUERY
    SELECT p.customer_id,
           CASE c.channel WHEN 'email' THEN p.email WHEN 'phone' THEN p.phone END
      FROM ecrm.consent_state s
      JOIN ecrm.customer_profile p ON p.customer_id = s.customer_id AND p.status = 'active'
     WHERE s.purpose = c.purpose AND s.granted
       AND (customer_ids IS NULL
            OR s.customer_id IN (SELECT ecrm.resolve_customer(u.id) FROM unnest(customer_ids) u(id)))
       AND (c.channel NOT IN ('email', 'phone') OR CASE c.channel WHEN 'email' THEN p.email ELSE p.phone END IS NOT NULL)
     ORDER BY p.customer_id;
END
$$;
COMMENT ON FUNCTION ecrm.campaign_audience(bigint, bigint[]) IS
    'The customers a campaign may contact now (of the candidates given, or all): consent for the campaign''s purpose in force, merged ids resolved, and an email address or phone number for email and phone campaigns';

CREATE VIEW ecrm.consent_violations AS
SELECT e.event_id, e.campaign_id, c.name AS campaign, c.purpose, e.customer_id, e.occurred_at AS sent_at
  FROM ecrm.campaign_event e
  JOIN ecrm.campaign c ON c.campaign_id = e.campaign_id
 WHERE e.kind = 'sent' AND NOT ecrm.has_consent(e.customer_id, c.purpose, e.occurred_at);
COMMENT ON VIEW ecrm.consent_violations IS
    'Campaign messages recorded as sent to a customer whose consent for the campaign''s purpose was not in force at that time (an audit; ecrm.campaign_audience avoids them)';
COMMENT ON COLUMN ecrm.consent_violations.event_id IS 'The sent event in ecrm.campaign_event';
COMMENT ON COLUMN ecrm.consent_violations.campaign IS 'Campaign name';
COMMENT ON COLUMN ecrm.consent_violations.sent_at IS 'When it was sent';

------------------------------------------------------------------------------
-- Masking of structured values (SQL: they compose the kernel)
------------------------------------------------------------------------------
CREATE FUNCTION ecrm.mask_jsonb(doc jsonb, keep_keys text[]) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'ecrm_mask_jsonb'
    LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.mask_jsonb(jsonb, text[]) IS
    'A JSON object with only the listed top-level keys (an allow-list: keys added later stay hidden); NULL for anything but an object';

CREATE FUNCTION ecrm.mask_jsonb(doc jsonb, keep_keys text[], vocabularies jsonb) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'ecrm_mask_jsonb_checked'
    LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.mask_jsonb(jsonb, text[], jsonb) IS
    'A JSON object with only the listed top-level keys, each value checked: against the key''s vocabulary ({"key": ["a", "b"]} or {"key": "pattern:<regex>"}) or, without one, by PII detection (pii_kind, pii_find); "***" for a value that fails, and for nested objects and arrays; NULL for anything but an object';

CREATE FUNCTION ecrm.mask_identities(identities jsonb) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'ecrm_mask_identities'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.mask_identities(jsonb) IS
    'A JSON array of identities ({kind, namespace, value}, as in ecrm.customer_360) with emails and phones masked and every other identifier replaced by ***';

-- stable: pseudonyms read ecrm.pseudonym_key
CREATE FUNCTION ecrm.mask_identity(kind text, value text, context text DEFAULT NULL) RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN CASE kind WHEN 'email' THEN ecrm.pseudonym_email(value, context)
                     WHEN 'phone' THEN ecrm.pseudonym_phone(value, context)
                     ELSE ecrm.pseudonym(value, context) END;
COMMENT ON FUNCTION ecrm.mask_identity(text, text, text) IS
    'Pseudonym of an identity value by its kind: a fake email for an email, a fake phone for a phone, a token for anything else (distinct values stay distinct, so unique identities stay unique)';

------------------------------------------------------------------------------
-- Masking policies and the masked twins of the data model's views
------------------------------------------------------------------------------
CREATE SCHEMA ecrm_masked;
COMMENT ON SCHEMA ecrm_masked IS
    'Masked twins of the views of schema ecrm, with the same names and columns, generated from the masking policies by ecrm.refresh_masked_views(); what ecrm_analyst and other masked roles read. Do not put objects of your own here';
GRANT USAGE ON SCHEMA ecrm_masked TO ecrm_analyst, ecrm_admin;

-- The context masked views give pseudonyms and keyed noise: readable only by the views'
-- owner and ecrm_admin, so a masked role cannot recompute a pseudonym for a guessed value.
CREATE TABLE ecrm.mask_secret (
    id      boolean PRIMARY KEY DEFAULT true CHECK (id),
    context text NOT NULL CHECK (length(context) >= 32)
);
COMMENT ON TABLE ecrm.mask_secret IS
    'Secret pseudonym context of the masked views (one row, readable by ecrm_admin only): with ecrm.pseudonym_key it decides every pseudonym a masked role sees';
INSERT INTO ecrm.mask_secret (context)
VALUES (replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''));

CREATE FUNCTION ecrm._upsert_mask_secret() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    -- a restored dump brings back the original secret, so pseudonyms survive dump and restore
    UPDATE ecrm.mask_secret s SET context = NEW.context WHERE s.id = NEW.id;
    IF FOUND THEN
        RETURN NULL;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER mask_secret_upsert BEFORE INSERT ON ecrm.mask_secret
    FOR EACH ROW EXECUTE FUNCTION ecrm._upsert_mask_secret();

CREATE FUNCTION ecrm.rotate_mask_secret() RETURNS void
    LANGUAGE sql SET search_path = pg_catalog, pg_temp
    BEGIN ATOMIC
        UPDATE ecrm.mask_secret SET context = replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '');
    END;
COMMENT ON FUNCTION ecrm.rotate_mask_secret() IS
    'Draw a new secret context for the masked views: every pseudonym and keyed noise value analysts see changes (old extracts no longer join with new ones)';

CREATE VIEW ecrm.mask_strategies AS
SELECT s.strategy, s.applies_to, s.options, s.needs_key, s.description
  FROM (VALUES
    ('default', 'any', NULL, false, 'No policy of its own: a column computed from personal data becomes NULL, any other is shown'),
    ('raw', 'any', NULL, false, 'Shown as it is (the column holds no personal data)'),
    ('null', 'any', NULL, false, 'Always NULL'),
    ('redact', 'text, jsonb', NULL, false, '''[redacted]'' (text) or {} (jsonb) when there is a value'),
    ('partial', 'text', '{"prefix": 1, "padding": "***", "suffix": 0}', false, 'ecrm.mask_partial'),
    ('keep', 'text', '{"first": 0, "last": 4}', false, 'ecrm.mask_keep: letters and digits become * but the first and last ones'),
    ('email', 'text', '{"keep": "provider|domain|tld|none"}', false, 'ecrm.mask_email'),
    ('phone', 'text', '{"keep_last": 2}', false, 'ecrm.mask_phone'),
    ('name', 'text', '{"keep": "initials|first|none"}', false, 'ecrm.mask_name'),
    ('address', 'text', NULL, false, 'ecrm.mask_address'),
    ('postal_code', 'text', NULL, false, 'ecrm.mask_postal_code'),
    ('card', 'text', NULL, false, 'ecrm.mask_card'),
    ('iban', 'text', NULL, false, 'ecrm.mask_iban'),
    ('national_id', 'text', '{"kind": "us_ssn"}', false, 'ecrm.mask_national_id'),
    ('ip', 'inet, text', '{"v4_prefix": 24, "v6_prefix": 48}', false, 'ecrm.mask_ip'),
    ('date', 'date, timestamp, timestamptz', '{"unit": "year"}', false, 'ecrm.mask_date, ecrm.mask_time (units month, quarter, year, decade; hour and day for times)'),
    ('range', 'integer, bigint, numeric, real, double precision', '{"step": 10}', false, 'ecrm.mask_range: the range the number falls in (the column becomes a range type)'),
    ('noise', 'integer, bigint, numeric, real, double precision', '{"ratio": 0.1, "seed_column": null}', true, 'ecrm.mask_noise, keyed: the same value (or seed column) always gets the same noise'),
    ('pseudonym', 'text, integer, bigint', NULL, true, 'ecrm.pseudonym (text) or ecrm.pseudonym_id (integers: the column becomes bigint)'),
    ('pseudonym_email', 'text', NULL, true, 'ecrm.pseudonym_email'),
    ('pseudonym_phone', 'text', NULL, true, 'ecrm.pseudonym_phone'),
    ('pseudonym_name', 'text', '{"part": "full|first|last"}', true, 'ecrm.pseudonym_name'),
    ('identity', 'text', '{"kind_column": "kind"}', true, 'ecrm.mask_identity: pseudonym by the kind in another column of the row'),
    ('redact_text', 'text', NULL, false, 'ecrm.redact_text: emails, phones, cards, IBANs and IPs in free text replaced'),
    ('vocabulary', 'text', '{"values": ["a", "b"] | "enum:t" | "column:tab.col" | "common:5:tab.col" | "pattern:re"}', false, 'Shown when the value is in the vocabulary (a list, an enum''s labels, a column of a configuration table, a value at least k rows share, a pattern), *** otherwise: for categories kept in free-text columns'),
    ('jsonb_keep', 'jsonb, json', '{"keys": ["a", "b"], "values": {"a": ["x", "y"], "b": "enum:t|column:tab.col|pattern:re"}}', false, 'ecrm.mask_jsonb: only the listed keys, each value checked against its vocabulary, or by PII detection when it has none ("***" when it fails)'),
    ('identities', 'jsonb', NULL, false, 'ecrm.mask_identities (the identities column of customer_360)'),
    ('function', 'any', '{"function": "myschema.my_mask"}', false, 'A function of yours taking the column''s type')
  ) s(strategy, applies_to, options, needs_key, description);
COMMENT ON VIEW ecrm.mask_strategies IS 'The masking strategies a policy can use, with their options';
COMMENT ON COLUMN ecrm.mask_strategies.strategy IS 'Name to give ecrm.add_mask_policy';
COMMENT ON COLUMN ecrm.mask_strategies.applies_to IS 'Column types it applies to';
COMMENT ON COLUMN ecrm.mask_strategies.options IS 'Its options (a JSON object) with their defaults';
COMMENT ON COLUMN ecrm.mask_strategies.needs_key IS 'Whether it needs the ecrm.pseudonym_key setting';
COMMENT ON COLUMN ecrm.mask_strategies.description IS 'What it does';

CREATE TABLE ecrm.mask_policy (
    relid       regclass NOT NULL,
    column_name name NOT NULL,
    strategy    text NOT NULL,
    options     jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(options) = 'object'),
    raw_roles   name[] NOT NULL DEFAULT '{}',
    note        text,
    builtin     boolean NOT NULL DEFAULT false,
    installed   boolean NOT NULL DEFAULT false,
    PRIMARY KEY (relid, column_name)
);
COMMENT ON TABLE ecrm.mask_policy IS
    'Masking policies: how a column of a table or view is masked for masked roles (strategy and options) and which roles see it raw; change it with ecrm.add_mask_policy, ecrm.alter_mask_policy and ecrm.drop_mask_policy';
COMMENT ON COLUMN ecrm.mask_policy.relid IS 'Table or view; a policy on a table column applies to every view column that is a plain copy of it';
COMMENT ON COLUMN ecrm.mask_policy.strategy IS 'One of ecrm.mask_strategies';
COMMENT ON COLUMN ecrm.mask_policy.raw_roles IS 'Roles whose members see the raw value in the masked views';
COMMENT ON COLUMN ecrm.mask_policy.builtin IS 'Installed by ecrm and unchanged (pg_dump keeps only your own and changed ones)';
COMMENT ON COLUMN ecrm.mask_policy.installed IS 'Installed by ecrm (dropping it leaves a row with strategy default, so that a restore does not bring it back)';

CREATE TABLE ecrm.masked_view_rule (
    view_name       regclass PRIMARY KEY,
    twin            boolean NOT NULL DEFAULT true,
    customer_column name NOT NULL DEFAULT 'customer_id',
    consent_purpose text REFERENCES ecrm.consent_purpose ON UPDATE CASCADE,
    consent_action  text NOT NULL DEFAULT 'exclude' CHECK (consent_action IN ('exclude', 'mask', 'none')),
    consent_when    text NOT NULL DEFAULT 'withdrawn' CHECK (consent_when IN ('withdrawn', 'not_granted')),
    note            text,
    builtin         boolean NOT NULL DEFAULT false,
    CHECK (consent_action = 'none' OR consent_purpose IS NOT NULL)
);
COMMENT ON TABLE ecrm.masked_view_rule IS
    'Per view of schema ecrm: whether it has a masked twin, and how the twin treats customers without consent (exclude their rows, mask them, or none). A view with a customer_id column and no rule excludes customers who withdrew consent for profiling';
COMMENT ON COLUMN ecrm.masked_view_rule.consent_when IS 'withdrawn: only customers who refused or withdrew; not_granted: also those never asked';
COMMENT ON COLUMN ecrm.masked_view_rule.consent_action IS 'exclude: leave their rows out; mask: keep the rows (counts stay right) with every value derived from customer data NULL; none';

CREATE TABLE ecrm._masking_state (
    id          boolean PRIMARY KEY DEFAULT true CHECK (id),
    initialized boolean NOT NULL DEFAULT false
);
INSERT INTO ecrm._masking_state DEFAULT VALUES;
COMMENT ON TABLE ecrm._masking_state IS 'Whether the masked twins exist yet (set at the end of CREATE EXTENSION); until then policy changes do not regenerate them';

CREATE FUNCTION ecrm._upsert_mask_policy() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    -- a restored dump overwrites the builtin policy CREATE EXTENSION wrote
    UPDATE ecrm.mask_policy p SET strategy = NEW.strategy, options = NEW.options, raw_roles = NEW.raw_roles,
                                  note = NEW.note, builtin = NEW.builtin
     WHERE p.relid = NEW.relid AND p.column_name = NEW.column_name;
    IF FOUND THEN
        RETURN NULL;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER mask_policy_upsert BEFORE INSERT ON ecrm.mask_policy
    FOR EACH ROW EXECUTE FUNCTION ecrm._upsert_mask_policy();

CREATE FUNCTION ecrm._upsert_masked_view_rule() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    UPDATE ecrm.masked_view_rule r SET twin = NEW.twin, customer_column = NEW.customer_column,
                                       consent_purpose = NEW.consent_purpose, consent_action = NEW.consent_action,
                                       consent_when = NEW.consent_when, note = NEW.note, builtin = NEW.builtin
     WHERE r.view_name = NEW.view_name;
    IF FOUND THEN
        RETURN NULL;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER masked_view_rule_upsert BEFORE INSERT ON ecrm.masked_view_rule
    FOR EACH ROW EXECUTE FUNCTION ecrm._upsert_masked_view_rule();

-- The class of a column type that decides which strategies apply (domains by their base type).
CREATE FUNCTION ecrm._type_class(t regtype) RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN (SELECT CASE WHEN b.typname IN ('text', 'varchar', 'bpchar', 'name', 'citext') THEN 'text'
                        WHEN b.typname IN ('int2', 'int4') THEN 'int'
                        WHEN b.typname = 'int8' THEN 'bigint'
                        WHEN b.typname = 'numeric' THEN 'numeric'
                        WHEN b.typname IN ('float4', 'float8') THEN 'float'
                        WHEN b.typname IN ('date', 'timestamp', 'timestamptz', 'inet', 'jsonb', 'json') THEN b.typname::text
                        ELSE 'other' END
              FROM pg_catalog.pg_type t0
              JOIN pg_catalog.pg_type b ON b.oid = CASE WHEN t0.typtype = 'd' THEN t0.typbasetype ELSE t0.oid END
             WHERE t0.oid = t);

CREATE FUNCTION ecrm._opt_int(options jsonb, key text, dflt integer, lo integer, hi integer, strategy text) RETURNS integer
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    v jsonb := options -> key;
BEGIN
    IF v IS NULL OR jsonb_typeof(v) = 'null' THEN
        RETURN dflt;
    END IF;
    IF jsonb_typeof(v) <> 'number' OR (v #>> '{}') !~ '^-?[0-9]{1,9}$' OR (v #>> '{}')::integer NOT BETWEEN lo AND hi THEN
        RAISE EXCEPTION 'option "%" of masking strategy % must be an integer from % to %, not %', key, strategy, lo, hi, left(v::text, 40)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN (v #>> '{}')::integer;
END
$$;

CREATE FUNCTION ecrm._opt_text(options jsonb, key text, dflt text, allowed text[], strategy text) RETURNS text
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    v jsonb := options -> key;
BEGIN
    IF v IS NULL OR jsonb_typeof(v) = 'null' THEN
        IF dflt IS NULL THEN
            RAISE EXCEPTION 'masking strategy % needs option "%"', strategy, key USING ERRCODE = 'invalid_parameter_value';
        END IF;
        RETURN dflt;
    END IF;
    IF jsonb_typeof(v) <> 'string' OR length(v #>> '{}') > 200 OR (allowed IS NOT NULL AND NOT (v #>> '{}') = ANY (allowed)) THEN
        RAISE EXCEPTION 'option "%" of masking strategy % must be %, not %', key, strategy,
                        coalesce('one of ' || array_to_string(allowed, ', '), 'a string of at most 200 characters'), left(v::text, 40)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN v #>> '{}';
END
$$;

/*
 * Values under the kept keys of a jsonb_keep policy.  Keeping a key is not enough: the same key
 * carries a lifecycle stage in one row and an email address in another ("from" of a lifecycle
 * change and of an email received), and whoever writes a payload chooses both.  So every kept
 * value is checked, and shown only when it passes:
 *   - a key with a vocabulary (option "values": {"key": vocabulary}) keeps a string only when it
 *     is in that vocabulary: a JSON array of strings, "enum:<type>" (the labels of an enum),
 *     "column:<table>.<column>" (a value of a configuration table, read when the twin is read;
 *     never a customer table) or "pattern:<regex>" (a code such as a currency);
 *   - a key without one keeps strings and numbers (of at most 1,000 characters) in which PII
 *     detection (ecrm.pii_kind, ecrm.pii_find) finds no email, phone, card, IBAN, IP, date or
 *     common name;
 *   - booleans and nulls are kept, objects and arrays never (their insides are unchecked).
 * Anything else becomes "***", so the key stays visible and its value does not.  The residual
 * risk (a rare name under a key without vocabulary) is why every builtin kept key that can carry
 * text has a vocabulary.
 */
-- The SQL condition that a text expression val is in a vocabulary (see ecrm._jsonb_keep_expr);
-- what names the vocabulary's owner in errors.
CREATE FUNCTION ecrm._vocabulary_cond(what text, vocab jsonb, val text) RETURNS text
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    k    integer;
    spec text;
    rel  regclass;
    att  name;
    typ  regtype;
BEGIN
    IF jsonb_typeof(vocab) = 'array' THEN
        IF EXISTS (SELECT FROM jsonb_array_elements(vocab) x WHERE jsonb_typeof(x) <> 'string') THEN
            RAISE EXCEPTION 'vocabulary of % must be an array of strings', what USING ERRCODE = 'invalid_parameter_value';
        END IF;
        RETURN format('(%s) = ANY (%L::text[])', val, ARRAY(SELECT jsonb_array_elements_text(vocab)));
    ELSIF jsonb_typeof(vocab) IS DISTINCT FROM 'string' THEN
        RAISE EXCEPTION 'vocabulary of % must be an array of strings or a string', what
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Give ["a", "b"], "enum:<type>", "column:<table>.<column>" or "pattern:<regex>".';
    END IF;
    spec := vocab #>> '{}';
    IF spec LIKE 'enum:%' THEN
        typ := to_regtype(substr(spec, 6));
        IF typ IS NULL OR (SELECT t.typtype <> 'e' FROM pg_type t WHERE t.oid = typ) THEN
            RAISE EXCEPTION 'vocabulary of %: % is not an enum type', what, left(substr(spec, 6), 100)
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        RETURN format('(%s) = ANY (enum_range(NULL::%s)::text[])', val, typ);
    ELSIF spec LIKE 'column:%' THEN
        rel := to_regclass(substring(spec FROM '^column:(.*)\.[^.]+$'));
        att := substring(spec FROM '\.([^.]+)$');
        IF rel IS NULL OR NOT EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = rel AND a.attname = att AND a.attnum > 0 AND NOT a.attisdropped) THEN
            RAISE EXCEPTION 'vocabulary of %: % is not a column of a table or view', what, left(substr(spec, 8), 100)
                USING ERRCODE = 'undefined_column';
        END IF;
        IF ecrm._is_customer_table(rel) THEN
            RAISE EXCEPTION 'vocabulary of %: % holds customer data', what, rel
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = 'A vocabulary must come from configuration, or every value a customer gave would pass.';
        END IF;
        -- uncorrelated, so that a whole-view read hashes the vocabulary once
        RETURN format('(%s) IN (SELECT t.%I::text FROM %s t)', val, att, rel);
    ELSIF spec LIKE 'common:%' THEN
        -- common:<k>:<table>.<column>: a value at least k rows of that column hold (a city where at
        -- least k customers live): no value of a single person, whatever it is.  One hashed
        -- aggregate per query that reads the twin.
        k := substring(spec FROM '^common:([0-9]{1,6}):')::integer;
        rel := to_regclass(substring(spec FROM '^common:[0-9]+:(.*)\.[^.]+$'));
        att := substring(spec FROM '\.([^.]+)$');
        IF k IS NULL OR k < 2 THEN
            RAISE EXCEPTION 'vocabulary of %: common needs a threshold of at least 2 (common:<k>:<table>.<column>)', what
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF rel IS NULL OR NOT EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = rel AND a.attname = att AND a.attnum > 0 AND NOT a.attisdropped) THEN
            RAISE EXCEPTION 'vocabulary of %: % is not a column of a table or view', what, left(substring(spec FROM '^common:[0-9]+:(.*)$'), 100)
                USING ERRCODE = 'undefined_column';
        END IF;
        RETURN format('(%s) IN (SELECT t.%I::text FROM %s t WHERE t.%I IS NOT NULL GROUP BY 1 HAVING count(*) >= %s)', val, att, rel, att, k);
    ELSIF spec LIKE 'pattern:%' THEN
        BEGIN
            PERFORM '' ~ substr(spec, 9);
        EXCEPTION WHEN invalid_regular_expression THEN
            RAISE EXCEPTION 'vocabulary of %: invalid regular expression', what USING ERRCODE = 'invalid_parameter_value';
        END;
        RETURN format('length(%s) <= 200 AND (%s) ~ %L', val, val, substr(spec, 9));
    END IF;
    RAISE EXCEPTION 'vocabulary of % must be an array or start with enum:, column:, common: or pattern:', what
        USING ERRCODE = 'invalid_parameter_value';
END
$$;

CREATE FUNCTION ecrm._jsonb_keep_expr(doc text, keys text[], vocab jsonb) RETURNS text
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    k        record;
    cond     text;
    c_vocab  jsonb := '{}';
    deferred text[] := '{}';
BEGIN
    vocab := coalesce(vocab, '{}');
    IF jsonb_typeof(vocab) <> 'object' THEN
        RAISE EXCEPTION 'option "values" of masking strategy jsonb_keep must be a JSON object, not %', jsonb_typeof(vocab)
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'It maps a kept key to its vocabulary.';
    END IF;
    FOR k IN SELECT e.key, e.value FROM jsonb_each(vocab) e ORDER BY e.key LOOP
        IF k.key <> ALL (keys) THEN
            RAISE EXCEPTION 'option "values" of masking strategy jsonb_keep names key "%", which "keys" does not keep', left(k.key, 40)
                USING ERRCODE = 'invalid_parameter_value', DETAIL = 'A vocabulary applies to a kept key.';
        END IF;
        cond := ecrm._vocabulary_cond(format('key "%s"', left(k.key, 40)), k.value, format('%s ->> %L', doc, k.key));
        -- lists and patterns are checked in C (ecrm.mask_jsonb), an enum as the list of its labels now
        -- (a label added later shows *** until the twins are regenerated); tables' vocabularies here
        IF jsonb_typeof(k.value) = 'array' OR (k.value #>> '{}') LIKE 'pattern:%' THEN
            c_vocab := c_vocab || jsonb_build_object(k.key, k.value);
        ELSIF (k.value #>> '{}') LIKE 'enum:%' THEN
            c_vocab := c_vocab || jsonb_build_object(k.key, (SELECT jsonb_agg(e.enumlabel ORDER BY e.enumsortorder) FROM pg_enum e
                                                              WHERE e.enumtypid = to_regtype(substr(k.value #>> '{}', 6))));
        ELSE
            c_vocab := c_vocab || jsonb_build_object(k.key, 'defer');
            deferred := deferred || format('%L, CASE WHEN jsonb_typeof(%s -> %L) = ''string'' AND NOT coalesce(%s, false) THEN ''"***"''::jsonb END',
                                           k.key, doc, k.key, cond);
        END IF;
    END LOOP;
    IF cardinality(deferred) = 0 THEN
        RETURN format('ecrm.mask_jsonb(%s, %L::text[], %L::jsonb)', doc, keys, c_vocab);
    END IF;
    -- a deferred key's kept value is the document's own (the kernel keeps its strings): check that
    RETURN format(E'ecrm.mask_jsonb(%s, %L::text[], %L::jsonb)\n        || jsonb_strip_nulls(jsonb_build_object(%s))',
                  doc, keys, c_vocab, array_to_string(deferred, E',\n        '));
END
$$;

/*
 * The SQL expression that masks one column: strategy and options applied to col (an
 * expression of type typ), in a relation aliased alias (for options naming another column
 * of the row), with ctx the expression of the pseudonym context.  Validates everything, so
 * adding a policy fails early rather than the view generation later.
 */
CREATE FUNCTION ecrm._mask_expr(strategy text, options jsonb, col text, typ regtype, typmod integer,
                                rel regclass, alias text, ctx text) RETURNS text
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    cls   text := ecrm._type_class(typ);
    tname text := format_type(typ, nullif(typmod, -1));
    known text[] := ARRAY['default', 'raw', 'null', 'redact', 'partial', 'keep', 'email', 'phone', 'name', 'address',
                          'postal_code', 'card', 'iban', 'national_id', 'ip', 'date', 'range', 'noise', 'pseudonym',
                          'pseudonym_email', 'pseudonym_phone', 'pseudonym_name', 'identity', 'redact_text',
                          'jsonb_keep', 'identities', 'function', 'vocabulary'];
    txt   text := CASE WHEN typ = 'text'::regtype THEN col ELSE col || '::text' END;
    back  text := CASE WHEN typ = 'text'::regtype THEN '' ELSE '::' || format_type(typ, nullif(typmod, -1)) END;
    opt   text;
    n     numeric;
    fn    regprocedure;
    other name;
BEGIN
    IF strategy IS NULL OR NOT strategy = ANY (known) THEN
        RAISE EXCEPTION 'unknown masking strategy "%"', left(coalesce(strategy, 'NULL'), 40)
            USING ERRCODE = 'invalid_parameter_value', HINT = 'See SELECT * FROM ecrm.mask_strategies.';
    END IF;
    options := coalesce(options, '{}');
    IF jsonb_typeof(options) <> 'object' THEN
        RAISE EXCEPTION 'options of a masking policy must be a JSON object, not %', jsonb_typeof(options)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF strategy IN ('raw', 'default') THEN
        RETURN col;
    ELSIF strategy = 'null' THEN
        RETURN format('NULL::%s', tname);
    ELSIF strategy = 'redact' AND cls IN ('text', 'jsonb', 'json') THEN
        RETURN format('CASE WHEN %s IS NULL THEN NULL ELSE %L::%s END', col,
                      CASE WHEN cls = 'text' THEN '[redacted]' ELSE '{}' END, tname);
    ELSIF strategy = 'partial' AND cls = 'text' THEN
        RETURN format('ecrm.mask_partial(%s, %s, %L, %s)%s', txt, ecrm._opt_int(options, 'prefix', 1, 0, 1000, strategy),
                      ecrm._opt_text(options, 'padding', '***', NULL, strategy), ecrm._opt_int(options, 'suffix', 0, 0, 1000, strategy), back);
    ELSIF strategy = 'keep' AND cls = 'text' THEN
        RETURN format('ecrm.mask_keep(%s, %s, %s)%s', txt, ecrm._opt_int(options, 'first', 0, 0, 1000, strategy),
                      ecrm._opt_int(options, 'last', 0, 0, 1000, strategy), back);
    ELSIF strategy = 'email' AND cls = 'text' THEN
        RETURN format('ecrm.mask_email(%s, %L)%s', txt,
                      ecrm._opt_text(options, 'keep', 'provider', '{provider,domain,tld,none}', strategy), back);
    ELSIF strategy = 'phone' AND cls = 'text' THEN
        RETURN format('ecrm.mask_phone(%s, %s)%s', txt, ecrm._opt_int(options, 'keep_last', 2, 0, 4, strategy), back);
    ELSIF strategy = 'name' AND cls = 'text' THEN
        RETURN format('ecrm.mask_name(%s, %L)%s', txt,
                      ecrm._opt_text(options, 'keep', 'initials', '{initials,first,none}', strategy), back);
    ELSIF strategy IN ('address', 'postal_code', 'card', 'iban') AND cls = 'text' THEN
        RETURN format('ecrm.mask_%s(%s)%s', strategy, txt, back);
    ELSIF strategy = 'national_id' AND cls = 'text' THEN
        opt := ecrm._opt_text(options, 'kind', NULL, NULL, strategy);
        PERFORM ecrm._national_id_format(opt);
        RETURN format('ecrm.mask_national_id(%s, %L)%s', txt, opt, back);
    ELSIF strategy = 'ip' AND cls IN ('inet', 'text') THEN
        RETURN format('ecrm.mask_ip(%s, %s, %s)%s', CASE WHEN cls = 'inet' THEN col ELSE txt END,
                      ecrm._opt_int(options, 'v4_prefix', 24, 0, 32, strategy),
                      ecrm._opt_int(options, 'v6_prefix', 48, 0, 128, strategy), CASE WHEN cls = 'inet' THEN '' ELSE back END);
    ELSIF strategy = 'date' AND cls = 'date' THEN
        RETURN format('ecrm.mask_date(%s, %L)', col, ecrm._opt_text(options, 'unit', 'year', '{month,quarter,year,decade}', strategy));
    ELSIF strategy = 'date' AND cls IN ('timestamp', 'timestamptz') THEN
        RETURN format('ecrm.mask_time(%s, %L)', col,
                      ecrm._opt_text(options, 'unit', 'day', '{hour,day,month,quarter,year,decade}', strategy));
    ELSIF strategy = 'range' AND cls IN ('int', 'bigint', 'numeric', 'float') THEN
        IF jsonb_typeof(options -> 'step') IS DISTINCT FROM 'number' THEN
            RAISE EXCEPTION 'masking strategy range needs a positive number as option "step"' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        n := (options ->> 'step')::numeric;
        IF n <= 0 OR (cls IN ('int', 'bigint') AND (n <> trunc(n) OR n > 2147483647)) THEN
            RAISE EXCEPTION 'option "step" of masking strategy range must be positive (and whole for integers), not %', n
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        RETURN CASE cls WHEN 'int' THEN format('ecrm.mask_range(%s::integer, %s::integer)', col, n)
                        WHEN 'bigint' THEN format('ecrm.mask_range(%s, %s::bigint)', col, n)
                        ELSE format('ecrm.mask_range(%s::numeric, %s::numeric)', col, n) END;
    ELSIF strategy = 'noise' AND cls IN ('int', 'bigint', 'numeric', 'float') THEN
        IF jsonb_typeof(options -> 'ratio') IS DISTINCT FROM 'number' OR (options ->> 'ratio')::numeric NOT BETWEEN 0 AND 1 THEN
            RAISE EXCEPTION 'masking strategy noise needs option "ratio", a number from 0 to 1' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        other := ecrm._opt_text(options, 'seed_column', '', NULL, strategy);
        IF other <> '' AND NOT EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = rel AND a.attname = other AND a.attnum > 0 AND NOT a.attisdropped) THEN
            RAISE EXCEPTION 'seed column "%" of masking strategy noise is not a column of %', other, rel USING ERRCODE = 'undefined_column';
        END IF;
        opt := CASE WHEN other = '' THEN col ELSE format('%s.%I', alias, other) END;
        RETURN CASE cls WHEN 'numeric' THEN format('ecrm.mask_noise(%s, %s, %s::text, %s)%s', col, options ->> 'ratio', opt, ctx, back)
                        WHEN 'float' THEN format('ecrm.mask_noise(%s::double precision, %s, %s::text, %s)%s', col, options ->> 'ratio', opt, ctx, back)
                        ELSE format('round(ecrm.mask_noise(%s::numeric, %s, %s::text, %s))%s', col, options ->> 'ratio', opt, ctx, back) END;
    ELSIF strategy = 'pseudonym' AND cls = 'text' THEN
        RETURN format('ecrm.pseudonym(%s, %s)%s', txt, ctx, back);
    ELSIF strategy = 'pseudonym' AND cls IN ('int', 'bigint') THEN
        RETURN format('ecrm.pseudonym_id(%s::bigint, %s)', col, ctx);
    ELSIF strategy IN ('pseudonym_email', 'pseudonym_phone') AND cls = 'text' THEN
        RETURN format('ecrm.%s(%s, %s)%s', strategy, txt, ctx, back);
    ELSIF strategy = 'pseudonym_name' AND cls = 'text' THEN
        RETURN format('ecrm.pseudonym_name(%s, %L, %s)%s', txt, ecrm._opt_text(options, 'part', 'full', '{full,first,last}', strategy), ctx, back);
    ELSIF strategy = 'identity' AND cls = 'text' THEN
        other := ecrm._opt_text(options, 'kind_column', 'kind', NULL, strategy);
        IF NOT EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = rel AND a.attname = other AND a.attnum > 0 AND NOT a.attisdropped) THEN
            RAISE EXCEPTION 'kind column "%" of masking strategy identity is not a column of %', other, rel USING ERRCODE = 'undefined_column';
        END IF;
        RETURN format('ecrm.mask_identity(%s.%I::text, %s, %s)%s', alias, other, txt, ctx, back);
    ELSIF strategy = 'vocabulary' AND cls = 'text' THEN
        IF options -> 'values' IS NULL THEN
            RAISE EXCEPTION 'masking strategy vocabulary needs option "values"' USING ERRCODE = 'invalid_parameter_value',
                HINT = 'Give ["a", "b"], "enum:<type>", "column:<table>.<column>" or "pattern:<regex>".';
        END IF;
        RETURN format('CASE WHEN %s IS NULL THEN NULL WHEN %s THEN %s ELSE ''***''%s END', col,
                      ecrm._vocabulary_cond('masking strategy vocabulary', options -> 'values', txt), col, back);
    ELSIF strategy = 'redact_text' AND cls = 'text' THEN
        RETURN format('ecrm.redact_text(left(%s, 1000000))%s', txt, back);
    ELSIF strategy = 'jsonb_keep' AND cls IN ('jsonb', 'json') THEN
        IF jsonb_typeof(options -> 'keys') IS DISTINCT FROM 'array'
           OR EXISTS (SELECT FROM jsonb_array_elements(options -> 'keys') k WHERE jsonb_typeof(k) <> 'string') THEN
            RAISE EXCEPTION 'masking strategy jsonb_keep needs option "keys", an array of strings' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        RETURN format('(%s)%s', ecrm._jsonb_keep_expr(format('%s::jsonb', col), ARRAY(SELECT jsonb_array_elements_text(options -> 'keys')),
                                                       options -> 'values'),
                      CASE WHEN cls = 'json' THEN '::json' ELSE '' END);
    ELSIF strategy = 'identities' AND cls = 'jsonb' THEN
        RETURN format('ecrm.mask_identities(%s)', col);
    ELSIF strategy = 'function' THEN
        opt := ecrm._opt_text(options, 'function', NULL, NULL, strategy);
        fn := to_regprocedure(format('%s(%s)', opt, format_type(typ, NULL)));
        IF fn IS NULL THEN
            RAISE EXCEPTION 'function %(%) does not exist', left(opt, 100), format_type(typ, NULL)
                USING ERRCODE = 'undefined_function', HINT = 'A masking function takes one argument of the column''s type; give its schema.';
        END IF;
        IF (SELECT p.prokind <> 'f' OR p.proretset FROM pg_proc p WHERE p.oid = fn) THEN
            RAISE EXCEPTION '% is not a plain function returning one value', fn USING ERRCODE = 'wrong_object_type';
        END IF;
        RETURN format('%s(%s)', fn::oid::regproc, col);
    END IF;
    RAISE EXCEPTION 'masking strategy % does not apply to a column of type %', strategy, tname
        USING ERRCODE = 'datatype_mismatch',
              HINT = format('It applies to: %s.', (SELECT s.applies_to FROM ecrm.mask_strategies s WHERE s.strategy = _mask_expr.strategy));
END
$$;

-- Column names that announce personal data, whatever table they are in.
CREATE FUNCTION ecrm._personal_name(attname name) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN attname::text ~* '(^|_)(e_?mail|phone|mobile|fax|(first|last|given|family|full|middle|maiden|sur|nick|user)_?name|surname|birth|dob|born|street|address|postal|postcode|zip|ip|ip_?addr|iban|bic|card|pan|cvv|ssn|soc_?sec|social_?security|sin|nino|nin|passport|national_id|tax_id|vat_id|licen[cs]e|password|passwd|secret|geo|lat|lon|latitude|longitude)(_|$)';

/*
 * Whether a source column holds personal data: its policy says so (anything but raw), it is
 * a registered PII column, its name announces it, it is a whole-row reference to a table with
 * personal columns, or it is a text, JSON or array column of a customer-keyed table, registered
 * or not.  The last rule is the safe default: a free-text column of a customer's row (a consent's
 * source, a merge's reason, a payload) can hold anything the person or an agent typed, so it is
 * personal until a policy says "raw" (a column whose values come from a fixed vocabulary:
 * a CHECK list or code pattern, a foreign key to a configuration table) or "vocabulary".
 * Strings, JSON, other user types and arrays of them count; enums, numbers, booleans and times
 * do not (an enum is a vocabulary by its type).
 */
CREATE FUNCTION ecrm._is_personal(rel regclass, attname name) RETURNS boolean
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    pol text;
BEGIN
    IF rel IS NULL THEN
        RETURN false;
    END IF;
    IF attname IS NULL THEN
        RETURN EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = rel AND a.attnum > 0 AND NOT a.attisdropped
                          AND ecrm._is_personal(rel, a.attname));
    END IF;
    SELECT p.strategy INTO pol FROM ecrm.mask_policy p WHERE p.relid = rel AND p.column_name = attname;
    IF pol IS NOT NULL AND pol <> 'default' THEN
        RETURN pol <> 'raw';
    END IF;
    IF EXISTS (SELECT FROM ecrm.customer_table t WHERE t.relid = rel AND attname = ANY (t.pii_columns)) THEN
        RETURN true;
    END IF;
    IF ecrm._personal_name(attname) THEN
        RETURN true;
    END IF;
    RETURN ecrm._is_customer_table(rel)
       AND attname <> 'customer_id'
       AND coalesce((SELECT t.typcategory IN ('S', 'U') OR (t.typcategory = 'A' AND e.typcategory IN ('S', 'U'))
              FROM pg_attribute a
              JOIN pg_type t ON t.oid = CASE WHEN (SELECT d.typtype FROM pg_type d WHERE d.oid = a.atttypid) = 'd'
                                             THEN (SELECT d.typbasetype FROM pg_type d WHERE d.oid = a.atttypid) ELSE a.atttypid END
              LEFT JOIN pg_type e ON e.oid = t.typelem
             WHERE a.attrelid = rel AND a.attname = _is_personal.attname AND NOT a.attisdropped), false);
END
$$;

-- Whether a relation holds customer data (for the consent action "mask").
CREATE FUNCTION ecrm._is_customer_table(rel regclass) RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN EXISTS (SELECT FROM ecrm.customer_table t WHERE t.relid = rel)
        OR EXISTS (SELECT FROM pg_catalog.pg_attribute a WHERE a.attrelid = rel AND a.attname = 'customer_id' AND NOT a.attisdropped);

-- The roles of a policy that the current user belongs to (missing roles ignored).
CREATE FUNCTION ecrm._sees_raw(roles name[]) RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN EXISTS (SELECT FROM pg_catalog.pg_roles r
                    WHERE r.rolname = ANY (roles) AND pg_catalog.pg_has_role(r.oid, 'MEMBER'));

CREATE FUNCTION ecrm._view_rule(v regclass) RETURNS ecrm.masked_view_rule
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    r ecrm.masked_view_rule;
BEGIN
    SELECT * INTO r FROM ecrm.masked_view_rule m WHERE m.view_name = v;
    IF NOT FOUND THEN
        r.view_name := v;
        r.twin := true;
        r.customer_column := 'customer_id';
        IF EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = v AND a.attname = 'customer_id' AND NOT a.attisdropped)
           AND EXISTS (SELECT FROM ecrm.consent_purpose p WHERE p.purpose = 'profiling') THEN
            r.consent_purpose := 'profiling';
            r.consent_action := 'exclude';
        ELSE
            r.consent_action := 'none';
        END IF;
        r.consent_when := 'withdrawn';
    END IF;
    IF r.consent_action <> 'none'
       AND NOT EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = v AND a.attname = r.customer_column AND NOT a.attisdropped) THEN
        r.consent_action := 'none';
    END IF;
    RETURN r;
END
$$;

/*
 * How the masked twin of a view shows each column: the policy on the view column, else the
 * policy on the table column it is a plain copy of, else NULL when it is computed from
 * personal data and the value itself when it is not.
 */
CREATE FUNCTION ecrm.masked_view_plan(view regclass)
    RETURNS TABLE (column_name name, column_type text, strategy text, options jsonb, raw_roles name[],
                   decided_by text, consent_masked boolean, expression text)
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    rule  ecrm.masked_view_rule := ecrm._view_rule(view);
    a     record;
    pol   ecrm.mask_policy;
    srcs  record;
    ctx   text := '(SELECT s.context FROM ecrm.mask_secret s)';
    col   text;
    expr  text;
    lineage jsonb;
BEGIN
    IF (SELECT c.relkind FROM pg_class c WHERE c.oid = view) NOT IN ('v', 'm') THEN
        RAISE EXCEPTION '% is not a view', view USING ERRCODE = 'wrong_object_type';
    END IF;
    -- the lineage of every column, with what each source is, computed once
    SELECT coalesce(jsonb_agg(jsonb_build_object('col', s.column_name, 'rel', s.source_table::oid, 'att', s.source_column,
                                                 'direct', s.direct, 'personal', p.personal, 'customer', p.customer,
                                                 'name', CASE WHEN s.source_column IS NULL THEN s.source_table || '.*'
                                                             ELSE format('%s.%I', s.source_table, s.source_column) END)), '[]')
      INTO lineage
      FROM ecrm.view_column_sources(view) s
      LEFT JOIN LATERAL (SELECT ecrm._is_personal(s.source_table, s.source_column) AS personal,
                                ecrm._is_customer_table(s.source_table) AS customer) p ON true;
    FOR a IN SELECT t.attname, t.atttypid::regtype AS typ, t.atttypmod FROM pg_attribute t
              WHERE t.attrelid = view AND t.attnum > 0 AND NOT t.attisdropped ORDER BY t.attnum LOOP
        column_name := a.attname;
        column_type := format_type(a.typ, nullif(a.atttypmod, -1));
        col := format('v.%I', a.attname);
        SELECT array_agg(l ->> 'name' ORDER BY l ->> 'name') FILTER (WHERE (l ->> 'personal')::boolean) AS personal,
               count(*) FILTER (WHERE (l ->> 'direct')::boolean) = 1 AND count(*) = 1 AS direct,
               min((l ->> 'rel')::oid)::regclass AS rel, min(l ->> 'att')::name AS att,
               coalesce(bool_or((l ->> 'customer')::boolean), false) AS customer
          INTO srcs
          FROM jsonb_array_elements(lineage) l WHERE l ->> 'col' = a.attname;
        pol := NULL;
        SELECT * INTO pol FROM ecrm.mask_policy p WHERE p.relid = view AND p.column_name = a.attname AND p.strategy <> 'default';
        IF pol.strategy IS NOT NULL THEN
            decided_by := format('policy on %s.%I', view, a.attname);
        ELSE
            IF srcs.direct THEN
                SELECT * INTO pol FROM ecrm.mask_policy p
                 WHERE p.relid = srcs.rel AND p.column_name = srcs.att AND p.strategy <> 'default';
            END IF;
            IF pol.strategy IS NOT NULL THEN
                decided_by := format('policy on %s.%I', pol.relid, pol.column_name);
            ELSIF srcs.personal IS NOT NULL THEN
                pol.strategy := 'null';
                decided_by := 'default: computed from ' || array_to_string(srcs.personal, ', ');
            ELSE
                pol.strategy := 'raw';
                decided_by := 'default: no personal source';
            END IF;
        END IF;
        strategy := pol.strategy;
        options := coalesce(pol.options, '{}');
        raw_roles := coalesce(pol.raw_roles, '{}');
        expr := ecrm._mask_expr(pol.strategy, pol.options, col, a.typ, a.atttypmod, view, 'v', ctx);
        IF cardinality(raw_roles) > 0 AND expr <> col THEN
            expr := format('CASE WHEN (SELECT ecrm._sees_raw(%L::name[])) THEN %s ELSE %s END', raw_roles, col, expr);
        END IF;
        consent_masked := rule.consent_action = 'mask' AND (a.attname = rule.customer_column OR srcs.customer);
        IF consent_masked THEN
            expr := format('CASE WHEN r.refused THEN NULL ELSE %s END', expr);
        END IF;
        expression := expr;
        RETURN NEXT;
    END LOOP;
END
$$;
COMMENT ON FUNCTION ecrm.masked_view_plan(regclass) IS
    'How the masked twin of a view shows each of its columns: strategy, options, roles that see it raw, what decided it (a policy on the view column, on the table column it copies, or the default), whether consent masking applies, and the SQL expression';

-- Functions a view calls, through the views it reads.
CREATE FUNCTION ecrm._view_functions(view regclass) RETURNS TABLE (fn regprocedure)
    LANGUAGE sql STABLE PARALLEL SAFE
    BEGIN ATOMIC
        WITH RECURSIVE v (relid) AS (
            SELECT view::oid
            UNION
            SELECT d.refobjid FROM v
              JOIN pg_catalog.pg_rewrite r ON r.ev_class = v.relid
              JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::regclass AND d.objid = r.oid
                                         AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjid <> v.relid
              JOIN pg_catalog.pg_class c ON c.oid = d.refobjid AND c.relkind IN ('v', 'm'))
        SELECT DISTINCT d.refobjid::regprocedure FROM v
          JOIN pg_catalog.pg_rewrite r ON r.ev_class = v.relid
          JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::regclass AND d.objid = r.oid
                                     AND d.refclassid = 'pg_catalog.pg_proc'::regclass;
    END;

-- The SQL of the masked twin of a view.
CREATE FUNCTION ecrm._masked_view_sql(view regclass) RETURNS text
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    rule    ecrm.masked_view_rule := ecrm._view_rule(view);
    cols    text;
    refused text;
    sql     text;
BEGIN
    SELECT string_agg(format('%s AS %I', p.expression, p.column_name), E',\n       ')
      INTO cols FROM ecrm.masked_view_plan(view) p;
    IF rule.consent_action <> 'none' THEN
        refused := CASE rule.consent_when
            WHEN 'withdrawn' THEN format('SELECT FROM ecrm.consent_state s WHERE s.customer_id = v.%I AND s.purpose = %L AND NOT s.granted',
                                         rule.customer_column, rule.consent_purpose)
            ELSE format('SELECT FROM ecrm.consent_state s WHERE s.customer_id = v.%I AND s.purpose = %L AND s.granted',
                        rule.customer_column, rule.consent_purpose) END;
    END IF;
    sql := format(E'SELECT %s\n  FROM %s v', cols, view);
    -- joins rather than per-row sub-selects, so that the planner can hash them for whole-view reads
    IF rule.consent_action = 'exclude' THEN
        sql := sql || format(E'\n WHERE %s (%s)', CASE rule.consent_when WHEN 'withdrawn' THEN 'NOT EXISTS' ELSE 'EXISTS' END, refused);
    ELSIF rule.consent_action = 'mask' THEN
        sql := sql || format(E'\n LEFT JOIN (SELECT s.customer_id FROM ecrm.consent_state s WHERE s.purpose = %L AND %s s.granted) c\n'
                             '        ON c.customer_id = v.%I\n CROSS JOIN LATERAL (SELECT c.customer_id IS %s NULL AS refused) r',
                             rule.consent_purpose, CASE rule.consent_when WHEN 'withdrawn' THEN 'NOT' ELSE '' END,
                             rule.customer_column, CASE rule.consent_when WHEN 'withdrawn' THEN 'NOT' ELSE '' END);
    END IF;
    RETURN sql;
END
$$;

CREATE FUNCTION ecrm._is_extension_member(rel regclass) RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN EXISTS (SELECT FROM pg_catalog.pg_depend d
                    WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = rel
                      AND d.refclassid = 'pg_catalog.pg_extension'::regclass AND d.deptype = 'e');

/*
 * (Re)generate the masked twin of every view of schema ecrm in schema ecrm_masked, and drop
 * twins whose view is gone or has no twin any more.  SECURITY DEFINER: the twins must be
 * owned by the extension's owner, who can read what they mask; only ecrm_admin may call it.
 * Twins made by CREATE EXTENSION belong to the extension; twins of views added later do not
 * (so that their views can still be dropped, with CASCADE), and pg_dump keeps them.
 */
CREATE FUNCTION ecrm.refresh_masked_views() RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    v      record;
    twin   text;
    sql    text;
    n      integer := 0;
    colrec record;
    member boolean;
BEGIN
    FOR v IN SELECT k.oid::regclass AS view, k.relname FROM pg_class k
              WHERE k.relnamespace = 'ecrm'::regnamespace AND k.relkind IN ('v', 'm') ORDER BY k.relname LOOP
        IF NOT (ecrm._view_rule(v.view)).twin THEN
            CONTINUE;
        END IF;
        twin := format('ecrm_masked.%I', v.relname);
        sql := ecrm._masked_view_sql(v.view);
        BEGIN
            EXECUTE format('CREATE OR REPLACE VIEW %s WITH (security_barrier = true) AS %s', twin, sql);
        EXCEPTION WHEN invalid_table_definition OR datatype_mismatch OR feature_not_supported THEN
            -- A column changed type or name: recreate the twin (this fails if you built views on it).
            -- Twins made by CREATE EXTENSION belong to the extension and keep belonging to it.
            member := ecrm._is_extension_member(twin::regclass);
            IF member THEN
                EXECUTE format('ALTER EXTENSION ecrm DROP VIEW %s', twin);
            END IF;
            EXECUTE format('DROP VIEW %s', twin);
            EXECUTE format('CREATE VIEW %s WITH (security_barrier = true) AS %s', twin, sql);
            IF member THEN
                EXECUTE format('ALTER EXTENSION ecrm ADD VIEW %s', twin);
            END IF;
        END;
        EXECUTE format('COMMENT ON VIEW %s IS %L', twin,
                       coalesce(obj_description(v.view, 'pg_class') || ' ', '') || '(masked twin of ' || v.view::text || ')');
        FOR colrec IN SELECT p.column_name, p.strategy, p.consent_masked, col_description(v.view, a.attnum) AS comment
                   FROM ecrm.masked_view_plan(v.view) p
                   JOIN pg_attribute a ON a.attrelid = v.view AND a.attname = p.column_name LOOP
            EXECUTE format('COMMENT ON COLUMN %s.%I IS %L', twin, colrec.column_name,
                           concat_ws(' ', colrec.comment,
                                     CASE WHEN colrec.strategy <> 'raw' THEN format('(masked: %s)', colrec.strategy) END,
                                     CASE WHEN colrec.consent_masked THEN '(NULL for customers without consent)' END));
        END LOOP;
        EXECUTE format('GRANT SELECT ON %s TO ecrm_analyst, ecrm_admin', twin);
        -- functions in a view run with the reader's privileges, even in a twin
        FOR colrec IN SELECT f.fn FROM ecrm._view_functions(v.view) f
                       WHERE NOT has_function_privilege('ecrm_analyst', f.fn, 'EXECUTE') LOOP
            RAISE WARNING 'ecrm_masked.% calls %, which ecrm_analyst may not execute', v.relname, colrec.fn
                USING HINT = 'Grant it to ecrm_analyst if it reveals no personal data, or give the view no twin.';
        END LOOP;
        n := n + 1;
    END LOOP;
    -- twins of views that are gone or no longer twinned
    FOR v IN SELECT k.oid::regclass AS twin, k.relname FROM pg_class k
              WHERE k.relnamespace = 'ecrm_masked'::regnamespace AND k.relkind = 'v'
                AND (to_regclass(format('ecrm.%I', k.relname)) IS NULL
                     OR NOT (ecrm._view_rule(to_regclass(format('ecrm.%I', k.relname)))).twin) LOOP
        IF ecrm._is_extension_member(v.twin) THEN
            EXECUTE format('ALTER EXTENSION ecrm DROP VIEW %s', v.twin);
        END IF;
        EXECUTE format('DROP VIEW %s', v.twin);
    END LOOP;
    UPDATE ecrm._masking_state SET initialized = true;
    RETURN n;
END
$$;
COMMENT ON FUNCTION ecrm.refresh_masked_views() IS
    'Regenerate the masked twin (schema ecrm_masked, same name, security_barrier) of every view of schema ecrm from the masking policies; runs by itself when policies or view rules change. Returns the number of twins';

CREATE FUNCTION ecrm._masking_changed() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    IF (SELECT s.initialized FROM ecrm._masking_state s) THEN
        PERFORM ecrm.refresh_masked_views();
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER mask_policy_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON ecrm.mask_policy
    FOR EACH STATEMENT EXECUTE FUNCTION ecrm._masking_changed();
CREATE TRIGGER masked_view_rule_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON ecrm.masked_view_rule
    FOR EACH STATEMENT EXECUTE FUNCTION ecrm._masking_changed();
CREATE TRIGGER customer_table_masking_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON ecrm.customer_table
    FOR EACH STATEMENT EXECUTE FUNCTION ecrm._masking_changed();

-- Policies and view rules of dropped tables, views and columns go with them, so that a
-- stale row can never apply to a later object that happens to get the same OID.
-- SECURITY DEFINER: whoever drops a view of theirs cleans up rows only ecrm_admin may write.
CREATE FUNCTION ecrm._masking_sql_drop() RETURNS event_trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    IF to_regclass('ecrm.mask_policy') IS NULL OR to_regclass('ecrm.masked_view_rule') IS NULL THEN
        RETURN;     -- the extension itself is being dropped
    END IF;
    IF EXISTS (SELECT FROM pg_event_trigger_dropped_objects() d
                WHERE d.classid = 'pg_class'::regclass
                  AND (d.objid IN (SELECT p.relid FROM ecrm.mask_policy p) OR d.objid IN (SELECT r.view_name FROM ecrm.masked_view_rule r))) THEN
        DELETE FROM ecrm.mask_policy p USING pg_event_trigger_dropped_objects() d
         WHERE d.classid = 'pg_class'::regclass AND d.objid = p.relid
           AND (d.objsubid = 0 OR d.address_names[3] = p.column_name);
        DELETE FROM ecrm.masked_view_rule r USING pg_event_trigger_dropped_objects() d
         WHERE d.classid = 'pg_class'::regclass AND d.objid = r.view_name AND d.objsubid = 0;
    END IF;
END
$$;
CREATE EVENT TRIGGER ecrm_masking_sql_drop ON sql_drop EXECUTE FUNCTION ecrm._masking_sql_drop();

-- Check a policy's target and raw roles, and that its strategy applies to the column.
CREATE FUNCTION ecrm._check_mask_policy(rel regclass, col name, strategy text, options jsonb, raw_roles name[]) RETURNS void
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    a   record;
    bad name;
    e   text;
BEGIN
    IF rel IS NULL OR col IS NULL THEN
        RAISE EXCEPTION 'table and column of a masking policy must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF (SELECT c.relkind FROM pg_class c WHERE c.oid = rel) NOT IN ('r', 'p', 'v', 'm', 'f') THEN
        RAISE EXCEPTION '% is not a table or view', rel USING ERRCODE = 'wrong_object_type';
    END IF;
    SELECT t.atttypid::regtype AS typ, t.atttypmod INTO a FROM pg_attribute t
     WHERE t.attrelid = rel AND t.attname = col AND t.attnum > 0 AND NOT t.attisdropped;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'column "%" of % does not exist', col, rel USING ERRCODE = 'undefined_column';
    END IF;
    SELECT r INTO bad FROM unnest(coalesce(raw_roles, '{}')) r WHERE r IS NULL OR NOT EXISTS (SELECT FROM pg_roles p WHERE p.rolname = r) LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'role "%" does not exist', coalesce(bad, 'NULL') USING ERRCODE = 'undefined_object';
    END IF;
    IF 'ecrm_analyst' = ANY (raw_roles) THEN
        RAISE EXCEPTION 'ecrm_analyst cannot see raw values' USING ERRCODE = 'invalid_parameter_value',
            DETAIL = 'ecrm_analyst is the masked role; name the roles that may see this column raw.';
    END IF;
    e := ecrm._mask_expr(strategy, options, 'x', a.typ, a.atttypmod, rel, 't', 'NULL');
    IF cardinality(raw_roles) > 0 AND strategy IN ('range', 'pseudonym') AND ecrm._type_class(a.typ) NOT IN ('text', 'bigint') THEN
        RAISE EXCEPTION 'masking strategy % changes the column''s type, so it cannot have raw roles', strategy
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
END
$$;

CREATE FUNCTION ecrm.add_mask_policy(rel regclass, column_name name, strategy text, options jsonb DEFAULT '{}',
                                     raw_roles name[] DEFAULT '{}', note text DEFAULT NULL) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    PERFORM ecrm._check_mask_policy(rel, column_name, strategy, options, raw_roles);
    IF EXISTS (SELECT FROM ecrm.mask_policy p WHERE p.relid = rel AND p.column_name = add_mask_policy.column_name
                                                AND p.strategy <> 'default') THEN
        RAISE EXCEPTION '%.% already has a masking policy', rel, column_name
            USING ERRCODE = 'unique_violation', HINT = 'Change it with ecrm.alter_mask_policy.';
    END IF;
    INSERT INTO ecrm.mask_policy AS p (relid, column_name, strategy, options, raw_roles, note)
    VALUES (rel, add_mask_policy.column_name, strategy, coalesce(options, '{}'), coalesce(raw_roles, '{}'), note)
    ON CONFLICT ON CONSTRAINT mask_policy_pkey DO UPDATE
       SET strategy = EXCLUDED.strategy, options = EXCLUDED.options, raw_roles = EXCLUDED.raw_roles,
           note = EXCLUDED.note, builtin = false;
END
$$;
COMMENT ON FUNCTION ecrm.add_mask_policy(regclass, name, text, jsonb, name[], text) IS
    'Declare how a column of a table or view is masked (a strategy of ecrm.mask_strategies with its options) and which roles see it raw; the masked views are regenerated';

CREATE FUNCTION ecrm.alter_mask_policy(rel regclass, column_name name, strategy text DEFAULT NULL, options jsonb DEFAULT NULL,
                                       raw_roles name[] DEFAULT NULL, note text DEFAULT NULL) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    p ecrm.mask_policy;
BEGIN
    SELECT * INTO p FROM ecrm.mask_policy m WHERE m.relid = rel AND m.column_name = alter_mask_policy.column_name;
    IF NOT FOUND OR p.strategy = 'default' THEN
        RAISE EXCEPTION '%.% has no masking policy', rel, column_name
            USING ERRCODE = 'no_data_found', HINT = 'Add one with ecrm.add_mask_policy.';
    END IF;
    p.strategy := coalesce(strategy, p.strategy);
    -- a new strategy starts from its own defaults unless options are given
    p.options := coalesce(options, CASE WHEN strategy IS NULL THEN p.options ELSE '{}' END);
    p.raw_roles := coalesce(raw_roles, p.raw_roles);
    p.note := coalesce(note, p.note);
    PERFORM ecrm._check_mask_policy(rel, p.column_name, p.strategy, p.options, p.raw_roles);
    UPDATE ecrm.mask_policy m SET strategy = p.strategy, options = p.options, raw_roles = p.raw_roles, note = p.note, builtin = false
     WHERE m.relid = rel AND m.column_name = p.column_name;
END
$$;
COMMENT ON FUNCTION ecrm.alter_mask_policy(regclass, name, text, jsonb, name[], text) IS
    'Change a masking policy (only the arguments given change; a new strategy without options takes its defaults); the masked views are regenerated';

CREATE FUNCTION ecrm.drop_mask_policy(rel regclass, column_name name) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    p ecrm.mask_policy;
BEGIN
    SELECT * INTO p FROM ecrm.mask_policy m WHERE m.relid = rel AND m.column_name = drop_mask_policy.column_name;
    IF NOT FOUND OR p.strategy = 'default' THEN
        RAISE EXCEPTION '%.% has no masking policy', rel, column_name USING ERRCODE = 'no_data_found';
    END IF;
    IF p.installed THEN
        -- keep a row, so that a dump and restore does not bring the installed policy back
        UPDATE ecrm.mask_policy m SET strategy = 'default', options = '{}', raw_roles = '{}', builtin = false,
                                      note = 'installed policy dropped'
         WHERE m.relid = rel AND m.column_name = p.column_name;
    ELSE
        DELETE FROM ecrm.mask_policy m WHERE m.relid = rel AND m.column_name = p.column_name;
    END IF;
END
$$;
COMMENT ON FUNCTION ecrm.drop_mask_policy(regclass, name) IS
    'Drop a masking policy: the column falls back to the default (NULL when computed from personal data); the masked views are regenerated';

CREATE FUNCTION ecrm.set_masked_view_rule(view regclass, twin boolean DEFAULT true, consent_purpose text DEFAULT 'profiling',
                                          consent_action text DEFAULT 'exclude', consent_when text DEFAULT 'withdrawn',
                                          customer_column name DEFAULT 'customer_id') RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    IF view IS NULL OR (SELECT c.relnamespace <> 'ecrm'::regnamespace OR c.relkind NOT IN ('v', 'm') FROM pg_class c WHERE c.oid = view) THEN
        RAISE EXCEPTION '% is not a view of schema ecrm', coalesce(view::text, 'NULL') USING ERRCODE = 'wrong_object_type';
    END IF;
    IF consent_action IS NULL OR consent_action NOT IN ('exclude', 'mask', 'none') THEN
        RAISE EXCEPTION 'invalid consent action "%"', left(coalesce(consent_action, 'NULL'), 40)
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Use one of: exclude, mask, none.';
    END IF;
    IF consent_when IS NULL OR consent_when NOT IN ('withdrawn', 'not_granted') THEN
        RAISE EXCEPTION 'invalid consent condition "%"', left(coalesce(consent_when, 'NULL'), 40)
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Use one of: withdrawn, not_granted.';
    END IF;
    IF consent_action <> 'none' THEN
        IF consent_purpose IS NULL THEN
            RAISE EXCEPTION 'consent purpose must not be null' USING ERRCODE = 'null_value_not_allowed';
        END IF;
        PERFORM ecrm._check_purpose(consent_purpose);
        IF NOT EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = view AND a.attname = customer_column AND NOT a.attisdropped) THEN
            RAISE EXCEPTION 'column "%" of % does not exist', customer_column, view USING ERRCODE = 'undefined_column';
        END IF;
    END IF;
    INSERT INTO ecrm.masked_view_rule AS r (view_name, twin, customer_column, consent_purpose, consent_action, consent_when)
    VALUES (view, coalesce(twin, true), coalesce(customer_column, 'customer_id'),
            CASE WHEN consent_action <> 'none' THEN consent_purpose END, consent_action, consent_when)
    ON CONFLICT ON CONSTRAINT masked_view_rule_pkey DO UPDATE
       SET twin = EXCLUDED.twin, customer_column = EXCLUDED.customer_column, consent_purpose = EXCLUDED.consent_purpose,
           consent_action = EXCLUDED.consent_action, consent_when = EXCLUDED.consent_when, builtin = false;
END
$$;
COMMENT ON FUNCTION ecrm.set_masked_view_rule(regclass, boolean, text, text, text, name) IS
    'Set whether a view has a masked twin and how the twin treats customers without consent for a purpose: exclude their rows, mask them (rows kept, customer data NULL) or none; withdrawn counts refusals only, not_granted also those never asked';

CREATE VIEW ecrm.masked_columns AS
SELECT c.oid::regclass AS view_name, p.column_name, p.column_type, p.strategy, p.options, p.raw_roles,
       p.decided_by, p.consent_masked
  FROM pg_catalog.pg_class c
 CROSS JOIN LATERAL ecrm.masked_view_plan(c.oid::regclass) p
 WHERE c.relnamespace = 'ecrm'::regnamespace AND c.relkind IN ('v', 'm')
   AND (ecrm._view_rule(c.oid::regclass)).twin;
COMMENT ON VIEW ecrm.masked_columns IS 'Every column of every masked twin and how it is masked (see ecrm.masked_view_plan)';
COMMENT ON COLUMN ecrm.masked_columns.view_name IS 'View of schema ecrm whose twin in ecrm_masked this is';
COMMENT ON COLUMN ecrm.masked_columns.column_name IS 'Column';
COMMENT ON COLUMN ecrm.masked_columns.column_type IS 'Type of the view column';
COMMENT ON COLUMN ecrm.masked_columns.strategy IS 'Masking strategy (raw: shown as it is)';
COMMENT ON COLUMN ecrm.masked_columns.options IS 'Options of the strategy';
COMMENT ON COLUMN ecrm.masked_columns.raw_roles IS 'Roles that see the raw value';
COMMENT ON COLUMN ecrm.masked_columns.decided_by IS 'The policy that decided, or why the default applies';
COMMENT ON COLUMN ecrm.masked_columns.consent_masked IS 'NULL for customers without consent (consent action mask)';

------------------------------------------------------------------------------
-- k-anonymity: masked rows are pseudonymous, not anonymous.  Initials, a masked email, a birth
-- year and a postal area together still single out most people; this measures by how much.
------------------------------------------------------------------------------
CREATE FUNCTION ecrm.k_anonymity(relation regclass, quasi_identifiers text[], k integer DEFAULT 5)
    RETURNS TABLE (row_count bigint, classes bigint, smallest_class bigint, unique_rows bigint,
                   rows_below_k bigint, share_below_k numeric)
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    bad  text;
    cols text;
BEGIN
    IF relation IS NULL THEN
        RAISE EXCEPTION 'relation must not be null' USING ERRCODE = 'null_value_not_allowed',
            DETAIL = 'Give the table or view whose rows you are about to share, such as ''ecrm_masked.customers''.';
    END IF;
    IF quasi_identifiers IS NULL OR cardinality(quasi_identifiers) = 0 THEN
        RAISE EXCEPTION 'quasi_identifiers must name at least one column' USING ERRCODE = 'invalid_parameter_value',
            DETAIL = 'Equivalence classes are the rows that agree on every quasi-identifier column.';
    END IF;
    IF array_ndims(quasi_identifiers) > 1 OR cardinality(quasi_identifiers) > 32 THEN
        RAISE EXCEPTION 'quasi_identifiers must be a one-dimensional array of at most 32 column names'
            USING ERRCODE = 'invalid_parameter_value', DETAIL = format('It has %s dimensions and %s elements.',
                                                                    array_ndims(quasi_identifiers), cardinality(quasi_identifiers));
    END IF;
    IF k IS NULL OR k < 2 THEN
        RAISE EXCEPTION 'k must be at least 2, not %', coalesce(k::text, 'NULL') USING ERRCODE = 'invalid_parameter_value',
            DETAIL = 'A class of one row is a unique row; k = 2 already asks that nobody be alone.';
    END IF;
    IF NOT EXISTS (SELECT FROM pg_class c WHERE c.oid = relation AND c.relkind IN ('r', 'p', 'v', 'm', 'f')) THEN
        RAISE EXCEPTION '% is not a table or view', relation USING ERRCODE = 'wrong_object_type',
            DETAIL = 'k-anonymity is measured over the rows of a table or view.';
    END IF;
    SELECT q INTO bad FROM unnest(quasi_identifiers) q
     WHERE q IS NULL OR NOT EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = relation AND a.attname = q
                                                                AND a.attnum > 0 AND NOT a.attisdropped)
     LIMIT 1;
    IF FOUND THEN
        IF bad IS NULL THEN
            RAISE EXCEPTION 'quasi_identifiers must not contain NULL' USING ERRCODE = 'invalid_parameter_value',
                DETAIL = 'Every element names a column of the relation.';
        END IF;
        RAISE EXCEPTION 'column "%" of % does not exist', left(bad, 63), relation USING ERRCODE = 'undefined_column',
            DETAIL = 'Quasi-identifiers are columns of the relation.';
    END IF;
    SELECT string_agg(DISTINCT format('x.%I', q), ', ') INTO cols FROM unnest(quasi_identifiers) q;
    RETURN QUERY EXECUTE format(
        'SELECT coalesce(sum(g.n), 0)::bigint, count(*), min(g.n), count(*) FILTER (WHERE g.n = 1),'
        '       coalesce(sum(g.n) FILTER (WHERE g.n < $1), 0)::bigint,'
        '       round(coalesce(sum(g.n) FILTER (WHERE g.n < $1), 0) / nullif(sum(g.n), 0), 4)'
        '  FROM (SELECT count(*) AS n FROM %s x GROUP BY %s) g', relation, cols) USING k;
END
$$;
COMMENT ON FUNCTION ecrm.k_anonymity(regclass, text[], integer) IS
    'How identifying a relation''s rows are on the given quasi-identifier columns: rows, equivalence classes (rows agreeing on all of them, NULL counting as a value), the smallest class, rows alone in their class, and rows (and their share) in classes smaller than k. Read with the caller''s rights';
GRANT EXECUTE ON FUNCTION ecrm.k_anonymity(regclass, text[], integer) TO ecrm_agent, ecrm_analyst;

------------------------------------------------------------------------------
-- Masked roles: ecrm_analyst and every role marked masked (a member of it)
------------------------------------------------------------------------------
CREATE VIEW ecrm.masked_roles AS
SELECT r.rolname AS role_name,
       pg_catalog.has_table_privilege(r.oid, 'ecrm.customer_profile', 'SELECT') AS reads_raw_tables,
       (SELECT s.setconfig FROM pg_catalog.pg_db_role_setting s
         WHERE s.setrole = r.oid AND s.setdatabase = (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database())) AS settings
  FROM pg_catalog.pg_roles r
 WHERE pg_catalog.pg_has_role(r.oid, 'ecrm_analyst', 'MEMBER') AND NOT r.rolsuper;
COMMENT ON VIEW ecrm.masked_roles IS 'Roles that read the CRM through the masked views (ecrm_analyst and its members); none should read the raw tables';
COMMENT ON COLUMN ecrm.masked_roles.role_name IS 'Role';
COMMENT ON COLUMN ecrm.masked_roles.reads_raw_tables IS 'Whether it can read ecrm.customer_profile directly (it should not)';
COMMENT ON COLUMN ecrm.masked_roles.settings IS 'Its settings in this database (search_path = ecrm_masked, ...)';

/*
 * Mark a role as masked: a member of ecrm_analyst whose search_path in this database starts
 * with ecrm_masked, so "SELECT * FROM customers" reads the masked twin.  SECURITY DEFINER to
 * grant the membership; only ecrm_admin may call it, and it refuses roles that can read the
 * raw tables (masking them would be cosmetic).
 */
CREATE FUNCTION ecrm.mask_role(role regrole) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    IF role IS NULL THEN
        RAISE EXCEPTION 'role must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF role::oid IN ('ecrm_admin'::regrole, 'ecrm_agent'::regrole, 'ecrm_analyst'::regrole)
       OR (SELECT r.rolsuper OR r.rolbypassrls FROM pg_roles r WHERE r.oid = role) THEN
        RAISE EXCEPTION 'role % cannot be masked', role USING ERRCODE = 'invalid_parameter_value',
            DETAIL = 'Superusers and the ecrm roles themselves are never masked.';
    END IF;
    IF has_table_privilege(role, 'ecrm.customer_profile', 'SELECT') OR has_table_privilege(role, 'ecrm.identity', 'SELECT') THEN
        RAISE EXCEPTION 'role % can read the raw customer tables', role USING ERRCODE = 'insufficient_privilege',
            DETAIL = 'Masking a role that can read ecrm.customer_profile would hide nothing.',
            HINT = 'Revoke its privileges on the ecrm tables (and membership in ecrm_agent or ecrm_admin) first.';
    END IF;
    EXECUTE format('GRANT ecrm_analyst TO %s', role);
    EXECUTE format('ALTER ROLE %s IN DATABASE %I SET search_path = ecrm_masked, "$user", public', role, current_database());
END
$$;
COMMENT ON FUNCTION ecrm.mask_role(regrole) IS
    'Mark a role as masked: it joins ecrm_analyst (masked views only) and its search_path in this database starts with ecrm_masked; refused for roles that can read the raw tables';

CREATE FUNCTION ecrm.unmask_role(role regrole) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    IF role IS NULL THEN
        RAISE EXCEPTION 'role must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT EXISTS (SELECT FROM pg_auth_members m WHERE m.roleid = 'ecrm_analyst'::regrole AND m.member = role) THEN
        RAISE EXCEPTION 'role % is not masked', role USING ERRCODE = 'invalid_parameter_value';
    END IF;
    EXECUTE format('REVOKE ecrm_analyst FROM %s', role);
    EXECUTE format('ALTER ROLE %s IN DATABASE %I RESET search_path', role, current_database());
END
$$;
COMMENT ON FUNCTION ecrm.unmask_role(regrole) IS 'Undo ecrm.mask_role: the role leaves ecrm_analyst and its search_path in this database is reset';

-- Policies ecrm installs for the store's tables (views get theirs in 97_masked_views.sql).
INSERT INTO ecrm.mask_policy (relid, column_name, strategy, options, note, builtin, installed) VALUES
    ('ecrm.customer_profile', 'first_name', 'name', '{"keep": "initials"}', NULL, true, true),
    ('ecrm.customer_profile', 'last_name', 'name', '{"keep": "initials"}', NULL, true, true),
    ('ecrm.customer_profile', 'email', 'email', '{"keep": "provider"}', 'the mail provider class stays visible', true, true),
    ('ecrm.customer_profile', 'phone', 'phone', '{"keep_last": 2}', NULL, true, true),
    ('ecrm.customer_profile', 'birth_date', 'date', '{"unit": "year"}', 'age stays usable, the birthday does not', true, true),
    ('ecrm.customer_profile', 'street', 'null', '{}', 'a street name narrows a person down to a few houses (and can be anything typed); city, region and postal area remain', true, true),
    ('ecrm.customer_profile', 'postal_code', 'postal_code', '{}', NULL, true, true),
    ('ecrm.customer_profile', 'city', 'vocabulary', '{"values": "common:5:ecrm.customer_profile.city"}', 'a city at least 5 profiles share (a small town, or anything typed there, is ***)', true, true),
    ('ecrm.customer_profile', 'region', 'vocabulary', '{"values": "common:5:ecrm.customer_profile.region"}', 'a region at least 5 profiles share', true, true),
    ('ecrm.customer_profile', 'attributes', 'jsonb_keep',
     '{"keys": ["company_size", "industry", "plan"], "values": {"company_size": "pattern:^[0-9]{1,7}(-[0-9]{1,7}|\\+)?$", "industry": "pattern:^[a-z][a-z &/_-]*$", "plan": "pattern:^[a-z][a-z &/_-]*$"}}',
     'an allow-list: other attributes stay hidden; values must look like a category (lower case, no digits) or a size band', true, true),
    ('ecrm.identity', 'value', 'identity', '{"kind_column": "kind"}', 'pseudonyms keep identities unique in a masked copy', true, true),
    ('ecrm.identity', 'raw_value', 'null', '{}', NULL, true, true),
    ('ecrm.ticket', 'subject', 'redact', '{}', 'free text: redact_text would leave names in prose', true, true),
    -- Text columns of customer tables are personal unless a policy says otherwise (ecrm._is_personal):
    -- raw where a constraint fixes the vocabulary, a vocabulary where people type categories.
    ('ecrm.customer_profile', 'country', 'raw', '{}', 'CHECK: an ISO 3166-1 code', true, true),
    ('ecrm.customer_profile', 'language', 'raw', '{}', 'CHECK: a BCP 47 tag', true, true),
    ('ecrm.customer_profile', 'owner', 'vocabulary', '{"values": "pattern:^[a-z][a-z .&/_-]*$"}', 'a user name or team (lower case, no digits); anything else is ***', true, true),
    ('ecrm.customer_profile', 'source', 'vocabulary', '{"values": "pattern:^[a-z][a-z &/_-]*$"}', 'a category such as web or store (lower case, no digits); anything else is ***', true, true),
    ('ecrm.identity', 'namespace', 'vocabulary', '{"values": "pattern:^([a-z][a-z0-9_.-]*)?$"}', 'the system an identifier comes from (a lower-case token, as ecrm.mask_identities keeps it)', true, true),
    ('ecrm.interaction', 'kind', 'raw', '{}', 'CHECK: an event name (lower case token)', true, true),
    ('ecrm.orders', 'status', 'raw', '{}', 'CHECK: a fixed list', true, true),
    ('ecrm.orders', 'currency', 'raw', '{}', 'CHECK: an ISO 4217 code', true, true),
    ('ecrm.ticket', 'category', 'vocabulary', '{"values": "pattern:^[a-z][a-z &/_-]*$"}', 'a category (lower case, no digits); anything else is ***', true, true),
    ('ecrm.ticket', 'team', 'vocabulary', '{"values": "pattern:^[a-z][a-z &/_-]*$"}', 'a team (lower case, no digits); anything else is ***', true, true),
    ('ecrm.ticket', 'assignee', 'vocabulary', '{"values": "pattern:^[a-z][a-z .&/_-]*$"}', 'a user name (lower case, no digits); anything else is ***', true, true),
    ('ecrm.ticket', 'language', 'vocabulary', '{"values": "pattern:^[a-z]{2,3}(-[A-Z]{2})?$"}', 'a language code', true, true),
    ('ecrm.ticket_event', 'kind', 'raw', '{}', 'CHECK: a fixed list', true, true),
    ('ecrm.consent_event', 'purpose', 'raw', '{}', 'a consent purpose (foreign key to ecrm.consent_purpose)', true, true),
    ('ecrm.consent_event', 'source', 'vocabulary', '{"values": "pattern:^[a-z][a-z &/_-]*$"}', 'where consent was given (signup form, preference centre); free text with anything else, such as a caller''s name or address, is ***', true, true),
    ('ecrm.consent_state', 'purpose', 'raw', '{}', 'a consent purpose (foreign key to ecrm.consent_purpose)', true, true),
    ('ecrm.lifecycle_change', 'changed_by', 'vocabulary', '{"values": "column:pg_catalog.pg_roles.rolname"}', 'a database role; *** once the role is gone or when it is not one', true, true);

------------------------------------------------------------------------------
-- GDPR: right of access and portability, right to erasure
------------------------------------------------------------------------------
-- A customer and every profile merged into it (directly or through a chain), smallest first.
CREATE FUNCTION ecrm._customer_family(customer_id bigint) RETURNS bigint[]
    LANGUAGE sql STABLE PARALLEL SAFE
    BEGIN ATOMIC
        WITH RECURSIVE fam (pid) AS (
            SELECT customer_id
            UNION
            SELECT p.customer_id FROM fam f JOIN ecrm.customer_profile p ON p.merged_into = f.pid AND p.status = 'merged')
        SELECT array_agg(f.pid ORDER BY f.pid) FROM fam f;
    END;

-- Name of a registered table in an export: its name in schema ecrm, schema.name elsewhere.
CREATE FUNCTION ecrm._table_key(rel regclass) RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN (SELECT CASE WHEN c.relnamespace = 'ecrm'::regnamespace THEN c.relname::text
                        ELSE n.nspname || '.' || c.relname END
              FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = rel);

-- ORDER BY list of a table's primary key columns (prefixed with alias), or the row text.
CREATE FUNCTION ecrm._pk_order(rel regclass, alias text) RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN coalesce((SELECT string_agg(pg_catalog.format('%s.%I', alias, a.attname), ', ' ORDER BY k.n)
                       FROM pg_catalog.pg_index i
                      CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY k(attnum, n)
                       JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                      WHERE i.indrelid = rel AND i.indisprimary), alias || '::text');

-- A customer id given to a GDPR function: not null, known; returns the live (or erased) customer.
CREATE FUNCTION ecrm._gdpr_customer(customer_id bigint) RETURNS bigint
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    id bigint;
BEGIN
    IF customer_id IS NULL THEN
        RAISE EXCEPTION 'customer_id must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    id := ecrm.resolve_customer(customer_id);
    IF id IS NULL THEN
        RAISE EXCEPTION 'customer % does not exist', customer_id
            USING ERRCODE = 'foreign_key_violation', DETAIL = format('No profile has customer_id = %s.', customer_id);
    END IF;
    RETURN id;
END
$$;

/*
 * Everything ecrm holds on a customer, as one JSON document: the profile, the profiles
 * merged into it, the consent in force, and the rows of every registered customer table
 * (identities, interactions, orders, tickets, consents, scores, segments, ... of every
 * capability).  SECURITY DEFINER: it reads every registered table whoever asks; only
 * ecrm_admin and ecrm_agent may call it.
 */
CREATE FUNCTION ecrm.export_customer(customer_id bigint) RETURNS jsonb
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    id     bigint := ecrm._gdpr_customer(customer_id);
    ids    bigint[] := ecrm._customer_family(id);
    t      record;
    rows   jsonb;
    data   jsonb := '{}';
BEGIN
    FOR t IN SELECT c.relid, c.key_column, ecrm._table_key(c.relid) AS key
               FROM ecrm.customer_table c ORDER BY 3 LOOP
        -- The merge ledger stays with the survivor after an unmerge, but what another profile brought to a
        -- merge is that person's data, not this one's: only images of the customer's own profiles, and
        -- the golden record of merges still in force (an undone one mixed in the other person's fields).
        EXECUTE format('SELECT coalesce(jsonb_agg(%s ORDER BY %s), ''[]'') FROM %s x WHERE x.%I = ANY ($1) %s',
                       CASE WHEN t.relid = 'ecrm.merge_event'::regclass
                            THEN 'CASE WHEN x.unmerged_at IS NULL THEN to_jsonb(x) ELSE to_jsonb(x) - ''golden'' - ''reason'' END'
                            ELSE 'to_jsonb(x)' END,
                       ecrm._pk_order(t.relid, 'x'), t.relid, t.key_column,
                       CASE WHEN t.relid = 'ecrm.merge_image'::regclass THEN 'AND x.from_customer = ANY ($1)' ELSE '' END)
           INTO rows USING ids;
        data := data || jsonb_build_object(t.key, rows);
    END LOOP;
    RETURN jsonb_build_object(
        'format', 'ecrm.export/1',
        'customer_id', id,
        'requested_id', customer_id,
        'exported_at', now(),
        'status', (SELECT p.status FROM ecrm.customer_profile p WHERE p.customer_id = id),
        'profile_ids', to_jsonb(ids),
        'profile', (SELECT to_jsonb(p) FROM ecrm.customer_profile p WHERE p.customer_id = id),
        'consents', (SELECT coalesce(jsonb_object_agg(e.purpose, e.granted), '{}') FROM ecrm.effective_consents(id) e
                      WHERE e.granted IS NOT NULL),
        'data', data);
END
$$;
COMMENT ON FUNCTION ecrm.export_customer(bigint) IS
    'GDPR access and portability: everything ecrm holds on a customer (and the profiles merged into it) as one JSON document: profile, consents in force, and the rows of every table registered in ecrm.customer_table, by table name';

CREATE TABLE ecrm.erasure_log (
    erasure_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES ecrm.customer_profile (customer_id),
    profile_ids bigint[] NOT NULL,
    erased_at   timestamptz NOT NULL DEFAULT now(),
    erased_by   name NOT NULL DEFAULT session_user,
    request_ref text CHECK (request_ref ~ '^[A-Za-z0-9._:/#-]{1,100}$'),
    summary     jsonb NOT NULL
);
CREATE INDEX erasure_log_customer_idx ON ecrm.erasure_log (customer_id);
COMMENT ON TABLE ecrm.erasure_log IS
    'Erasures done (GDPR art. 17): which profile ids, when, by whom, the request reference and per table how many rows were deleted or anonymized; no personal data';
COMMENT ON COLUMN ecrm.erasure_log.profile_ids IS 'The customer and the profiles merged into it, all erased';
COMMENT ON COLUMN ecrm.erasure_log.erased_by IS 'Who ran the erasure (the session user)';
COMMENT ON COLUMN ecrm.erasure_log.request_ref IS 'Reference of the erasure request (letters, digits and . _ : / # - only, so that it cannot hold an email address or a name with spaces)';
COMMENT ON COLUMN ecrm.erasure_log.summary IS 'Per table: rows deleted, anonymized or kept';

-- The SQL value that erases a column: NULL, its default, or a placeholder when it must hold something.
CREATE FUNCTION ecrm._erased_value(rel regclass, col name) RETURNS text
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    a record;
BEGIN
    SELECT t.attnotnull, t.atthasdef, t.attgenerated, t.attidentity, ecrm._type_class(t.atttypid) AS cls,
           format_type(t.atttypid, t.atttypmod) AS typ
      INTO a FROM pg_attribute t WHERE t.attrelid = rel AND t.attname = col AND t.attnum > 0 AND NOT t.attisdropped;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'column "%" of % does not exist', col, rel
            USING ERRCODE = 'undefined_column', HINT = 'Fix pii_columns of this table in ecrm.customer_table.';
    END IF;
    IF a.attgenerated <> '' OR a.attidentity <> '' THEN
        RETURN NULL;            -- computed or an id: leave it
    ELSIF NOT a.attnotnull THEN
        RETURN 'NULL';
    ELSIF a.atthasdef THEN
        RETURN 'DEFAULT';
    ELSIF a.cls = 'text' THEN
        RETURN format('%L::%s', '[erased]', a.typ);
    ELSIF a.cls IN ('jsonb', 'json') THEN
        RETURN format('''{}''::%s', a.typ);
    END IF;
    RAISE EXCEPTION 'cannot erase column %.% (%, NOT NULL without a default)', rel, col, a.typ
        USING ERRCODE = 'object_not_in_prerequisite_state',
              HINT = 'Give the column a default or allow NULL, or register the table with on_erase = ''delete''.';
END
$$;

-- Registered tables, those that reference others first (so deletes never break a foreign key).
CREATE FUNCTION ecrm._erasure_order() RETURNS TABLE (relid regclass, key_column name, on_erase text, pii_columns name[])
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    left_ regclass[] := ARRAY(SELECT c.relid FROM ecrm.customer_table c ORDER BY c.relid::text);
    pick  regclass[];
BEGIN
    WHILE cardinality(left_) > 0 LOOP
        -- tables no other remaining table references
        pick := ARRAY(SELECT r FROM unnest(left_) r
                       WHERE NOT EXISTS (SELECT FROM pg_constraint k
                                          WHERE k.contype = 'f' AND k.confrelid = r AND k.conrelid <> r
                                            AND k.conrelid = ANY (left_)));
        IF cardinality(pick) = 0 THEN
            pick := left_;      -- a cycle: take them all
        END IF;
        RETURN QUERY SELECT c.relid, c.key_column, c.on_erase, c.pii_columns
                       FROM ecrm.customer_table c WHERE c.relid = ANY (pick) ORDER BY c.relid::text;
        left_ := ARRAY(SELECT r FROM unnest(left_) r WHERE r <> ALL (pick));
    END LOOP;
END
$$;

/*
 * Erase a customer everywhere: the customer and every profile merged into it, in every table
 * registered in ecrm.customer_table (delete the rows, or anonymize their PII columns and keep
 * them, as each table says), staged imports that mention the person, and planner statistics
 * that hold their identifiers.  One transaction (one call); a second call is a no-op that
 * says so.  SECURITY DEFINER: it must reach every capability's tables; ecrm_admin only.
 */
CREATE FUNCTION ecrm.erase_customer(customer_id bigint, request_ref text DEFAULT NULL) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    id      bigint;
    ids     bigint[];
    idents  text[];
    names   text[];
    t       record;
    sets    text;
    n       bigint;
    summary jsonb := '{}';
    hist    jsonb;
    prev    ecrm.erasure_log;
    rel     record;
BEGIN
    IF request_ref IS NOT NULL AND request_ref !~ '^[A-Za-z0-9._:/#-]{1,100}$' THEN
        RAISE EXCEPTION 'request_ref must be 1 to 100 letters, digits or . _ : / # -'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'It is kept in the erasure log, which must not hold personal data.';
    END IF;
    id := ecrm._gdpr_customer(customer_id);
    -- Lock the profiles: concurrent ingestion for this customer waits, then sees it erased.
    PERFORM FROM ecrm.customer_profile p WHERE p.customer_id = ANY (ecrm._customer_family(id))
      ORDER BY p.customer_id FOR UPDATE;
    IF (SELECT p.status FROM ecrm.customer_profile p WHERE p.customer_id = id) = 'erased' THEN
        SELECT * INTO prev FROM ecrm.erasure_log l WHERE l.customer_id = id ORDER BY l.erasure_id DESC LIMIT 1;
        RAISE NOTICE 'customer % was already erased%', id, coalesce(' on ' || prev.erased_at::text, '');
        RETURN jsonb_build_object('customer_id', id, 'status', 'already_erased', 'erasure_id', prev.erasure_id,
                                  'erased_at', prev.erased_at);
    END IF;
    ids := ecrm._customer_family(id);

    -- The person's identifiers, to find them where no customer_id points to them.
    idents := ARRAY(SELECT DISTINCT lower(v) FROM (
                        SELECT unnest(ARRAY[p.email, p.phone]) FROM ecrm.customer_profile p WHERE p.customer_id = ANY (ids)
                        UNION ALL
                        SELECT unnest(ARRAY[i.value, i.raw_value]) FROM ecrm.identity i WHERE i.customer_id = ANY (ids)) x(v)
                     WHERE length(v) >= 5);
    -- names too, but only to find statistics to refresh (never to delete rows by)
    names := ARRAY(SELECT DISTINCT lower(v) FROM ecrm.customer_profile p
                    CROSS JOIN LATERAL unnest(ARRAY[p.first_name, p.last_name,
                                                    nullif(concat_ws(' ', p.first_name, p.last_name), '')]) v
                    WHERE p.customer_id = ANY (ids) AND length(v) >= 3);

    FOR t IN SELECT * FROM ecrm._erasure_order() LOOP
        CONTINUE WHEN t.relid = 'ecrm.customer_profile'::regclass;     -- last, below
        IF t.on_erase = 'delete' THEN
            EXECUTE format('DELETE FROM %s x WHERE x.%I = ANY ($1)', t.relid, t.key_column) USING ids;
            GET DIAGNOSTICS n = ROW_COUNT;
            summary := summary || jsonb_build_object(ecrm._table_key(t.relid), jsonb_build_object('deleted', n));
        ELSE
            SELECT string_agg(format('%I = %s', c, ecrm._erased_value(t.relid, c)), ', ')
              INTO sets FROM unnest(t.pii_columns) c WHERE ecrm._erased_value(t.relid, c) IS NOT NULL;
            IF sets IS NOT NULL THEN
                EXECUTE format('UPDATE %s x SET %s WHERE x.%I = ANY ($1)', t.relid, sets, t.key_column) USING ids;
                GET DIAGNOSTICS n = ROW_COUNT;
                summary := summary || jsonb_build_object(ecrm._table_key(t.relid), jsonb_build_object('anonymized', n));
            ELSE
                EXECUTE format('SELECT count(*) FROM %s x WHERE x.%I = ANY ($1)', t.relid, t.key_column) INTO n USING ids;
                summary := summary || jsonb_build_object(ecrm._table_key(t.relid), jsonb_build_object('kept', n));
            END IF;
        END IF;
    END LOOP;

    -- Merge history names the person where no customer_id of theirs points: a merge that was undone
    -- keeps its ledger with the other customer, so the before-images this person brought to it, the
    -- golden record and the free-text reason written then, and review pairs with them on the other side
    -- would outlive the erasure.  (A merge still in force is in their family and went with it above.)
    DELETE FROM ecrm.merge_image m WHERE m.from_customer = ANY (ids);
    GET DIAGNOSTICS n = ROW_COUNT;
    hist := jsonb_build_object('images_deleted', n);
    UPDATE ecrm.merge_event e SET golden = NULL, reason = NULL
     WHERE e.unmerged_at IS NOT NULL AND (e.survivor_id = ANY (ids) OR e.merged_ids && ids)
       AND (e.golden IS NOT NULL OR e.reason IS NOT NULL);
    GET DIAGNOSTICS n = ROW_COUNT;
    hist := hist || jsonb_build_object('events_anonymized', n);
    DELETE FROM ecrm.match_candidate c WHERE c.other_id = ANY (ids);
    GET DIAGNOSTICS n = ROW_COUNT;
    summary := summary || jsonb_build_object('merge_history', hist || jsonb_build_object('review_pairs_deleted', n));

    -- The profiles become erased shells: no personal data, not merged any more.
    SELECT string_agg(format('%I = %s', c, ecrm._erased_value('ecrm.customer_profile', c)), ', ')
      INTO sets FROM ecrm.customer_table ct, unnest(ct.pii_columns) c
     WHERE ct.relid = 'ecrm.customer_profile'::regclass AND ecrm._erased_value('ecrm.customer_profile', c) IS NOT NULL;
    EXECUTE format('UPDATE ecrm.customer_profile x SET %s status = ''erased'', merged_into = NULL WHERE x.customer_id = ANY ($1)',
                   coalesce(sets || ',', '')) USING ids;
    GET DIAGNOSTICS n = ROW_COUNT;
    summary := summary || jsonb_build_object('customer_profile', jsonb_build_object('anonymized', n));

    -- Staged imports that were never loaded or were rejected may name the person.
    FOR rel IN SELECT r::regclass AS r FROM unnest(ARRAY['ecrm.stage_customer', 'ecrm.stage_order_line',
                                                         'ecrm.stage_interaction', 'ecrm.stage_reject']) r
                WHERE to_regclass(r) IS NOT NULL LOOP
        EXECUTE format('DELETE FROM %s x WHERE EXISTS (SELECT FROM unnest($1) v WHERE strpos(lower(x::text), v) > 0)', rel.r)
          USING idents;
        GET DIAGNOSTICS n = ROW_COUNT;
        IF n > 0 THEN
            summary := summary || jsonb_build_object(ecrm._table_key(rel.r), jsonb_build_object('deleted', n));
        END IF;
    END LOOP;

    -- Planner statistics (pg_stats) keep common values and histogram bounds: re-analyze the
    -- tables whose statistics hold one of the person's identifiers.
    -- (statistics of an expression index are listed under the index's name: analyse its table)
    FOR rel IN SELECT DISTINCT coalesce(x.indrelid, c.oid)::regclass::text AS r FROM pg_stats s
                 JOIN pg_catalog.pg_class c ON c.relname = s.tablename AND c.relnamespace = s.schemaname::regnamespace
                 LEFT JOIN pg_catalog.pg_index x ON x.indexrelid = c.oid
                WHERE s.schemaname IN ('ecrm', 'ecrm_masked')
                  AND EXISTS (SELECT FROM unnest(idents || names) v
                               WHERE strpos(lower(s.most_common_vals::text), v) > 0
                                  OR strpos(lower(s.histogram_bounds::text), v) > 0) LOOP
        EXECUTE format('ANALYZE %s', rel.r);
    END LOOP;
    -- ANALYZE keeps the old statistics of a table it finds empty: drop what still names them
    -- (the next ANALYZE rebuilds them).
    DELETE FROM pg_statistic s USING pg_class c
     WHERE c.oid = s.starelid AND c.relnamespace IN ('ecrm'::regnamespace, 'ecrm_masked'::regnamespace)
       AND EXISTS (SELECT FROM unnest(idents || names) v
                    WHERE strpos(lower(concat_ws(' ', s.stavalues1::text, s.stavalues2::text, s.stavalues3::text,
                                                 s.stavalues4::text, s.stavalues5::text)), v) > 0);

    INSERT INTO ecrm.erasure_log (customer_id, profile_ids, request_ref, summary)
    VALUES (id, ids, request_ref, summary);
    RETURN jsonb_build_object('customer_id', id, 'status', 'erased', 'profile_ids', to_jsonb(ids), 'tables', summary);
END
$$;
COMMENT ON FUNCTION ecrm.erase_customer(bigint, text) IS
    'GDPR erasure: erase a customer and every profile merged into it from every table registered in ecrm.customer_table (rows deleted, or kept with their PII columns anonymized, as registered: order totals stay for accounting), plus staged imports and planner statistics that name them; logged without personal data in ecrm.erasure_log. One transaction; a second call is a no-op (status already_erased)';

/*
 * No new data for an erased customer.  The API checks it up front, but a write that started
 * before an erasure committed waits on the profile row the erasure locked and would then land
 * after it; this statement-level check runs after the foreign-key checks, with a fresh
 * snapshot, so it sees the erasure and refuses.  A restore (ecrm._restoring(), 10_store.sql) is no new
 * data: the dump holds the erased shells and the rows kept for them (consents as proof, anonymized
 * orders), and refusing those would lose them from the backup.
 */
CREATE FUNCTION ecrm._refuse_erased() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    bad bigint;
BEGIN
    IF ecrm._restoring() THEN
        RETURN NULL;
    END IF;
    SELECT n.customer_id INTO bad FROM new_rows n
      JOIN ecrm.customer_profile p ON p.customer_id = n.customer_id
     WHERE p.status = 'erased' LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'customer % has been erased', bad
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'Erased customers cannot receive new data.';
    END IF;
    RETURN NULL;
END
$$;
DO $refuse$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['identity', 'interaction', 'orders', 'campaign_event', 'ticket', 'ticket_event',
                             'consent_event', 'lifecycle_change'] LOOP
        EXECUTE format('CREATE TRIGGER %I AFTER INSERT ON ecrm.%I REFERENCING NEW TABLE AS new_rows
                        FOR EACH STATEMENT EXECUTE FUNCTION ecrm._refuse_erased()', t || '_refuse_erased', t);
    END LOOP;
END
$refuse$;

------------------------------------------------------------------------------
-- Static masking: a masked copy for development and testing
------------------------------------------------------------------------------
-- The SQL that masks a table column in a copy: its policy, else NULL (copy) or the erased
-- value (in place) for a personal column, else NULL meaning "keep it".
CREATE FUNCTION ecrm._static_mask_expr(rel regclass, col name, in_place boolean) RETURNS text
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    a   record;
    pol ecrm.mask_policy;
    e   text;
BEGIN
    SELECT t.atttypid::regtype AS typ, t.atttypmod, t.attgenerated, t.attidentity INTO a
      FROM pg_attribute t WHERE t.attrelid = rel AND t.attname = col;
    IF in_place AND (a.attgenerated <> '' OR a.attidentity <> '') THEN
        RETURN NULL;
    END IF;
    SELECT * INTO pol FROM ecrm.mask_policy p WHERE p.relid = rel AND p.column_name = col AND p.strategy <> 'default';
    IF pol.strategy IS NOT NULL THEN
        e := ecrm._mask_expr(pol.strategy, pol.options, format('x.%I', col), a.typ, a.atttypmod, rel, 'x',
                             '(SELECT s.context FROM ecrm.mask_secret s)');
        IF in_place AND ecrm._type_class(a.typ) IN ('int', 'numeric', 'float') AND pol.strategy = 'range' THEN
            RAISE EXCEPTION 'masking strategy range changes the type of %.%, so it cannot mask it in place', rel, col
                USING ERRCODE = 'datatype_mismatch', HINT = 'Make a masked copy in another schema, or choose another strategy.';
        END IF;
        RETURN CASE WHEN e = format('x.%I', col) THEN NULL ELSE e END;
    END IF;
    IF ecrm._is_personal(rel, col) THEN
        RETURN CASE WHEN in_place THEN ecrm._erased_value(rel, col) ELSE format('NULL::%s', format_type(a.typ, nullif(a.atttypmod, -1))) END;
    END IF;
    RETURN NULL;
END
$$;

/*
 * Static masking.  Copies every table of schema ecrm (but the masking secret) into a new
 * schema with every personal column masked by its policy (NULL by default), for development
 * and tests; or, given the schema ecrm itself and allow_live => true, masks the live tables in
 * place (for a restored copy of production, never production).  Pseudonyms are consistent
 * across tables, so joins keep working.  Runs with the caller's privileges.
 */
CREATE FUNCTION ecrm.create_masked_copy(target_schema name, allow_live boolean DEFAULT false, replace boolean DEFAULT false)
    RETURNS TABLE (table_name text, row_count bigint, masked_columns name[])
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    in_place boolean := target_schema = 'ecrm';
    t        record;
    cols     text;
    masked   name[];
    n        bigint;
    pk       text;
BEGIN
    IF target_schema IS NULL OR target_schema = '' THEN
        RAISE EXCEPTION 'target_schema must not be empty' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF in_place AND NOT coalesce(allow_live, false) THEN
        RAISE EXCEPTION 'refusing to mask the live schema ecrm in place'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'Masking in place replaces every personal value of the CRM for good.',
                  HINT = 'Give another schema for a masked copy, or allow_live => true in a restored copy of the database, never in production.';
    END IF;
    IF target_schema IN ('ecrm_masked', 'pg_catalog', 'information_schema', 'pg_toast') OR target_schema LIKE 'pg\_temp%' THEN
        RAISE EXCEPTION 'cannot make a masked copy in schema %', target_schema USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT in_place THEN
        IF EXISTS (SELECT FROM pg_namespace n WHERE n.nspname = target_schema) THEN
            IF coalesce(obj_description(to_regnamespace(target_schema), 'pg_namespace'), '') NOT LIKE 'ecrm masked copy%'
               AND EXISTS (SELECT FROM pg_class c WHERE c.relnamespace = to_regnamespace(target_schema)) THEN
                RAISE EXCEPTION 'schema % exists and is not an empty ecrm masked copy', target_schema
                    USING ERRCODE = 'duplicate_schema', HINT = 'Choose a new schema name.';
            END IF;
            IF NOT coalesce(replace, false) AND EXISTS (SELECT FROM pg_class c WHERE c.relnamespace = to_regnamespace(target_schema)) THEN
                RAISE EXCEPTION 'schema % already holds a masked copy', target_schema
                    USING ERRCODE = 'duplicate_schema', HINT = 'Give replace => true to replace it.';
            END IF;
            EXECUTE format('DROP SCHEMA %I CASCADE', target_schema);
        END IF;
        EXECUTE format('CREATE SCHEMA %I', target_schema);
        EXECUTE format('COMMENT ON SCHEMA %I IS %L', target_schema,
                       'ecrm masked copy of schema ecrm, made ' || now()::text || ' by ' || session_user);
    END IF;

    FOR t IN SELECT c.oid::regclass AS rel, c.relname FROM pg_class c
              WHERE c.relnamespace = 'ecrm'::regnamespace AND c.relkind IN ('r', 'p')
                AND c.relname NOT LIKE '\_%' AND c.oid <> 'ecrm.mask_secret'::regclass
              ORDER BY c.relname LOOP
        masked := ARRAY(SELECT a.attname FROM pg_attribute a
                         WHERE a.attrelid = t.rel AND a.attnum > 0 AND NOT a.attisdropped
                           AND ecrm._static_mask_expr(t.rel, a.attname, in_place) IS NOT NULL ORDER BY a.attnum);
        IF in_place THEN
            IF cardinality(masked) > 0 THEN
                SELECT string_agg(format('%I = %s', m, ecrm._static_mask_expr(t.rel, m, true)), ', ') INTO cols
                  FROM unnest(masked) m;
                EXECUTE format('UPDATE %s x SET %s', t.rel, cols);
                GET DIAGNOSTICS n = ROW_COUNT;
                EXECUTE format('ANALYZE %s', t.rel);
            ELSE
                EXECUTE format('SELECT count(*) FROM %s', t.rel) INTO n;
            END IF;
        ELSE
            SELECT string_agg(coalesce(ecrm._static_mask_expr(t.rel, a.attname, false), format('x.%I', a.attname))
                              || format(' AS %I', a.attname), ', ' ORDER BY a.attnum) INTO cols
              FROM pg_attribute a WHERE a.attrelid = t.rel AND a.attnum > 0 AND NOT a.attisdropped;
            EXECUTE format('CREATE TABLE %I.%I AS SELECT %s FROM %s x', target_schema, t.relname, cols, t.rel);
            GET DIAGNOSTICS n = ROW_COUNT;
            -- the primary key, when none of its columns was masked
            SELECT string_agg(format('%I', a.attname), ', ' ORDER BY k.n) INTO pk
              FROM pg_index i CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY k(attnum, n)
              JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
             WHERE i.indrelid = t.rel AND i.indisprimary
            HAVING bool_and(a.attname <> ALL (masked));
            IF pk IS NOT NULL THEN
                EXECUTE format('ALTER TABLE %I.%I ADD PRIMARY KEY (%s)', target_schema, t.relname, pk);
            END IF;
            EXECUTE format('ANALYZE %I.%I', target_schema, t.relname);
        END IF;
        table_name := CASE WHEN in_place THEN t.rel::text ELSE format('%I.%I', target_schema, t.relname) END;
        row_count := n;
        masked_columns := masked;
        RETURN NEXT;
    END LOOP;
    IF in_place THEN
        -- the copy must not share the production secret of the masked views
        PERFORM ecrm.rotate_mask_secret();
    END IF;
END
$$;
COMMENT ON FUNCTION ecrm.create_masked_copy(name, boolean, boolean) IS
    'Static masking: copy every table of schema ecrm into a new schema with every personal column masked by its policy (NULL when it has none), primary keys kept; with the schema ecrm itself and allow_live => true, mask the tables in place instead (for a restored copy of production only). Returns the tables, their row counts and masked columns';

------------------------------------------------------------------------------
-- PII discovery over any table
------------------------------------------------------------------------------
-- Whether a date written as text (ISO, day first, or YYYYMMDD) could be a living adult's date of birth.
CREATE FUNCTION ecrm._birth_date_like(v text) RETURNS boolean
    LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    d date;
BEGIN
    d := CASE WHEN v ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}$' THEN v::date
              WHEN v ~ '^[0-9]{2}/[0-9]{2}/[0-9]{4}$' THEN to_date(v, 'DD/MM/YYYY')
              WHEN v ~ '^[0-9]{2}\.[0-9]{2}\.[0-9]{4}$' THEN to_date(v, 'DD.MM.YYYY')
              WHEN v ~ '^(19|20)[0-9]{6}$' THEN to_date(v, 'YYYYMMDD') END;
    RETURN d BETWEEN (now() - interval '110 years')::date AND (now() - interval '14 years')::date;
EXCEPTION WHEN datetime_field_overflow OR invalid_datetime_format THEN
    RETURN false;
END
$$;

CREATE FUNCTION ecrm.discover_pii(rel regclass, sample_size integer DEFAULT 10000, min_share double precision DEFAULT 0.5)
    RETURNS TABLE (column_name name, data_type text, kind text, sampled bigint, matched bigint, share numeric,
                   name_hint boolean, suggested_strategy text, suggested_options jsonb, suggestion text)
    LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS  -- volatile: a random sample
$$
DECLARE
    relkind  "char";
    tuples   real;
    src      text;
    r        record;
BEGIN
    IF rel IS NULL THEN
        RAISE EXCEPTION 'table must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT c.relkind, c.reltuples INTO relkind, tuples FROM pg_class c WHERE c.oid = rel;
    IF relkind NOT IN ('r', 'p', 'v', 'm', 'f') THEN
        RAISE EXCEPTION '% is not a table or view', rel USING ERRCODE = 'wrong_object_type';
    END IF;
    IF sample_size IS NULL OR sample_size NOT BETWEEN 1 AND 10000000 THEN
        RAISE EXCEPTION 'sample_size must be from 1 to 10000000, not %', coalesce(sample_size::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF min_share IS NULL OR NOT (min_share BETWEEN 0 AND 1) THEN
        RAISE EXCEPTION 'min_share must be from 0 to 1, not %', coalesce(min_share::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- a Bernoulli sample of about sample_size rows of a big table, all rows of a small one
    src := format('%s x', rel);
    IF relkind IN ('r', 'm') AND tuples > 2 * sample_size THEN
        src := format('%s x TABLESAMPLE BERNOULLI (%s)', rel, least(100, 150.0 * sample_size / tuples));
    END IF;
    FOR r IN EXECUTE format($q$
        WITH sample AS (SELECT to_jsonb(x) AS row FROM %s LIMIT %s),
        cells AS (
            SELECT e.key, left(e.value, 10000) AS v, ecrm.pii_kind(left(e.value, 1000)) AS k
              FROM sample s CROSS JOIN LATERAL jsonb_each_text(s.row) e WHERE e.value IS NOT NULL),
        typed AS (
            SELECT c.key, c.v,
                   CASE WHEN c.k = 'date' OR (c.k IS NULL AND c.v ~ '^(19|20)[0-9]{6}$')
                        THEN CASE WHEN ecrm._birth_date_like(c.v) THEN 'date_of_birth' END
                        WHEN c.k IS NULL AND length(c.v) > 30 AND cardinality(ecrm.pii_find(c.v)) > 0 THEN 'free_text'
                        ELSE c.k END AS k
              FROM cells c),
        per_kind AS (SELECT t.key, t.k, count(*) AS n FROM typed t GROUP BY t.key, t.k),
        counts AS (
            SELECT p.key, sum(p.n) AS sampled, sum(p.n) FILTER (WHERE p.k IS NOT NULL) AS n,
                   (array_agg(p.k ORDER BY p.n DESC, p.k) FILTER (WHERE p.k IS NOT NULL))[1] AS k,
                   max(p.n) FILTER (WHERE p.k IS NOT NULL) AS top
              FROM per_kind p GROUP BY p.key)
        SELECT * FROM counts$q$, src, sample_size) LOOP
        column_name := r.key;
        SELECT format_type(a.atttypid, a.atttypmod) INTO data_type FROM pg_attribute a WHERE a.attrelid = rel AND a.attname = r.key;
        name_hint := ecrm._personal_name(r.key);
        sampled := r.sampled;
        matched := coalesce(r.n, 0);
        share := round(matched::numeric / greatest(sampled, 1), 3);
        kind := r.k;
        -- free text leaks even when few rows hold personal data
        IF NOT (share >= min_share OR (kind = 'free_text' AND share >= 0.05) OR name_hint) THEN
            CONTINUE;
        END IF;
        IF NOT (share >= min_share OR kind = 'free_text') THEN
            kind := NULL;
        END IF;
        suggested_options := '{}';
        -- a column of mixed kinds (emails and phones) gets no kind-specific mask
        suggested_strategy := CASE WHEN r.top < 0.9 * r.n THEN 'null' ELSE CASE kind WHEN 'email' THEN 'email' WHEN 'phone' THEN 'phone' WHEN 'card' THEN 'card'
                                        WHEN 'iban' THEN 'iban' WHEN 'ip' THEN 'ip' WHEN 'name' THEN 'name'
                                        WHEN 'date_of_birth' THEN 'date'
                                        WHEN 'free_text' THEN CASE WHEN data_type IN ('jsonb', 'json') THEN 'null' ELSE 'redact_text' END
                                        ELSE 'null' END END;
        IF kind = 'date_of_birth' AND suggested_strategy = 'date' THEN
            suggested_options := '{"unit": "year"}';
        END IF;
        BEGIN
            PERFORM ecrm._check_mask_policy(rel, r.key, suggested_strategy, suggested_options, '{}');
        EXCEPTION WHEN datatype_mismatch THEN
            suggested_strategy := 'null';
            suggested_options := '{}';
        END;
        suggestion := format('SELECT ecrm.add_mask_policy(%L, %L, %L%s);', rel::text, r.key, suggested_strategy,
                             CASE WHEN suggested_options <> '{}' THEN format(', %L', suggested_options) ELSE '' END);
        RETURN NEXT;
    END LOOP;
END
$$;
COMMENT ON FUNCTION ecrm.discover_pii(regclass, integer, double precision) IS
    'PII discovery: sample a table or view (any, not only ecrm''s) and report the columns that hold emails, phone numbers, card numbers (Luhn), IBANs (mod-97), IP addresses, names, dates of birth or free text with such data, or whose name announces personal data: the share of sampled values that matched and a suggested masking policy (share >= min_share; 5% for free text)';

CREATE FUNCTION ecrm.discover_pii_schema(schema_name name, sample_size integer DEFAULT 10000, min_share double precision DEFAULT 0.5)
    RETURNS TABLE (table_name regclass, column_name name, data_type text, kind text, sampled bigint, matched bigint,
                   share numeric, name_hint boolean, suggested_strategy text, suggested_options jsonb, suggestion text)
    LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS  -- volatile: random samples
$$
DECLARE
    t regclass;
BEGIN
    IF schema_name IS NULL OR to_regnamespace(quote_ident(schema_name)) IS NULL THEN
        RAISE EXCEPTION 'schema "%" does not exist', coalesce(schema_name, 'NULL') USING ERRCODE = 'invalid_schema_name';
    END IF;
    FOR t IN SELECT c.oid::regclass FROM pg_class c
              WHERE c.relnamespace = to_regnamespace(quote_ident(schema_name)) AND c.relkind IN ('r', 'p', 'm')
                AND has_table_privilege(c.oid, 'SELECT') ORDER BY c.relname LOOP
        RETURN QUERY SELECT t, d.* FROM ecrm.discover_pii(t, sample_size, min_share) d;
    END LOOP;
END
$$;
COMMENT ON FUNCTION ecrm.discover_pii_schema(name, integer, double precision) IS
    'PII discovery over every table of a schema that you may read (see ecrm.discover_pii)';

------------------------------------------------------------------------------
-- Registry, pg_dump and privileges of this part
------------------------------------------------------------------------------
INSERT INTO ecrm.customer_table (relid, on_merge, on_erase, pii_columns, note, builtin) VALUES
    ('ecrm.consent_state', 'keep', 'delete', '{}', 'derived from ecrm.consent_event by triggers (merges included)', true),
    ('ecrm.erasure_log', 'keep', 'keep', '{}', 'the erasure log holds no personal data', true);

DO $dump$
BEGIN
    PERFORM pg_catalog.pg_extension_config_dump('ecrm.consent_state', '');
    PERFORM pg_catalog.pg_extension_config_dump('ecrm.erasure_log', '');
    PERFORM pg_catalog.pg_extension_config_dump('ecrm.erasure_log_erasure_id_seq', '');
    PERFORM pg_catalog.pg_extension_config_dump('ecrm.mask_secret', '');
    PERFORM pg_catalog.pg_extension_config_dump('ecrm.mask_policy', 'WHERE NOT builtin');
    PERFORM pg_catalog.pg_extension_config_dump('ecrm.masked_view_rule', 'WHERE NOT builtin');
    PERFORM pg_catalog.pg_extension_config_dump('ecrm.national_id_format', 'WHERE NOT builtin');
    PERFORM pg_catalog.pg_extension_config_dump('ecrm._masking_state', 'WHERE false');
END
$dump$;

-- The kernel is safe for everyone who may use ecrm; analysts get it for their own data too.
GRANT EXECUTE ON FUNCTION
    ecrm.mask_partial(text, integer, text, integer), ecrm.mask_keep(text, integer, integer),
    ecrm.mask_email(text, text), ecrm.mask_phone(text, integer), ecrm.mask_name(text, text),
    ecrm.mask_address(text), ecrm.mask_postal_code(text), ecrm.mask_card(text), ecrm.mask_iban(text),
    ecrm.mask_date(date, text), ecrm.mask_time(timestamp, text), ecrm.mask_time(timestamptz, text),
    ecrm.mask_range(integer, integer), ecrm.mask_range(bigint, bigint), ecrm.mask_range(numeric, numeric),
    ecrm.mask_noise(double precision, double precision),
    ecrm.mask_noise(double precision, double precision, text, text), ecrm.mask_noise(numeric, double precision, text, text),
    ecrm.mask_ip(inet, integer, integer), ecrm.mask_ip(text, integer, integer),
    ecrm.pseudonym(text, text), ecrm.pseudonym_id(bigint, text), ecrm.pseudonym_email(text, text),
    ecrm.pseudonym_phone(text, text), ecrm.pseudonym_name(text, text, text),
    ecrm.pii_kind(text), ecrm.pii_find(text), ecrm.redact_text(text), ecrm.is_valid_card(text),
    ecrm.is_valid_iban(text), ecrm.check_digits_valid(text, text),
    ecrm.is_valid_national_id(text, text), ecrm.mask_national_id(text, text), ecrm._national_id_format(text),
    ecrm.mask_jsonb(jsonb, text[]), ecrm.mask_jsonb(jsonb, text[], jsonb), ecrm.mask_identities(jsonb), ecrm.mask_identity(text, text, text),
    ecrm._sees_raw(name[])
   TO ecrm_analyst, ecrm_agent;
GRANT SELECT ON ecrm.national_id_format, ecrm.mask_strategies TO ecrm_analyst, ecrm_agent;
-- Agents contact customers and answer access requests; they read consent and export.
GRANT SELECT ON ecrm.consent_state, ecrm.consent_violations TO ecrm_agent;
GRANT EXECUTE ON FUNCTION
    ecrm.has_consent(bigint, text, timestamptz), ecrm.effective_consents(bigint),
    ecrm.campaign_audience(bigint, bigint[]), ecrm.export_customer(bigint),
    ecrm._check_purpose(text), ecrm._refresh_consent_state(bigint[]), ecrm._consent_event_changed(),
    ecrm._profile_identity_changed(), ecrm._upsert_consent_state(), ecrm._refuse_erased()
   TO ecrm_agent;
