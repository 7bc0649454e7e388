
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
    'value * (1 + ratio * u), u uniform in [-1, 1), drawn afresh on every call: whoever can read the value many times can average the noise away; use the keyed form for values shown repeatedly';

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
