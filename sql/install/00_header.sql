-- ecrm install script, built by the Makefile from the parts in sql/install/ (joined in name order).
\echo Use "CREATE EXTENSION ecrm" to load this file. \quit

-- Every function body below is schema-qualified or runs with SET search_path,
-- so a caller's search_path never changes what runs.

------------------------------------------------------------------------------
-- The argument check of SQL and PL/pgSQL functions taking a number where NaN
-- and infinities mean nothing (src/finite.c); C functions check the same way.
------------------------------------------------------------------------------
CREATE FUNCTION ecrm._finite(value double precision, what text) RETURNS double precision
    AS 'MODULE_PATHNAME', 'ecrm_finite_float8'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ecrm._finite(double precision, text) IS
    'The value, or error 22023 naming it (what) when it is NaN or infinite';
CREATE FUNCTION ecrm._finite(value numeric, what text) RETURNS numeric
    AS 'MODULE_PATHNAME', 'ecrm_finite_numeric'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ecrm._finite(numeric, text) IS
    'The value, or error 22023 naming it (what) when it is NaN or infinite';

------------------------------------------------------------------------------
-- Normalisation kernel (src/normalize.c)
------------------------------------------------------------------------------
CREATE FUNCTION ecrm.normalize_email(email text) RETURNS text
    AS 'MODULE_PATHNAME', 'ecrm_normalize_email'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.normalize_email(text) IS
    'Canonical form of an email address (trimmed, lower case, provider rules such as Gmail dots and +tags); NULL when the text is not an email address';

-- stable: reads the ecrm.default_country setting
CREATE FUNCTION ecrm.normalize_phone(phone text) RETURNS text
    AS 'MODULE_PATHNAME', 'ecrm_normalize_phone'
    LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.normalize_phone(text) IS
    'E.164 form (+441632960983) of a phone number; numbers without a country code are read in the country of the ecrm.default_country setting; NULL when it cannot be a phone number';

CREATE FUNCTION ecrm.normalize_phone(phone text, default_country text) RETURNS text
    AS 'MODULE_PATHNAME', 'ecrm_normalize_phone_in'
    LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.normalize_phone(text, text) IS
    'E.164 form of a phone number; numbers without a country code are read in default_country (ISO 3166-1 alpha-2; NULL accepts international numbers only); NULL when it cannot be a phone number';

CREATE FUNCTION ecrm.phone_country_code(phone text) RETURNS text
    AS 'MODULE_PATHNAME', 'ecrm_phone_country_code'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.phone_country_code(text) IS
    'ITU calling code (''44'') of an international phone number; NULL when the number has none';

CREATE FUNCTION ecrm.country_calling_code(country text) RETURNS text
    AS 'MODULE_PATHNAME', 'ecrm_country_calling_code'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ecrm.country_calling_code(text) IS
    'ITU calling code of an ISO 3166-1 alpha-2 country code; NULL when unknown';
