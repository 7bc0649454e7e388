-- Masking kernel: every function on ordinary, edge and malformed inputs.
\set SHOW_CONTEXT never
SET client_min_messages = warning;

-- mask_partial
SELECT ecrm.mask_partial('Jonathan', 2, '***', 1), ecrm.mask_partial('Jonathan', 0, '*', 0),
       ecrm.mask_partial('Jo', 1, '***', 1), ecrm.mask_partial('Jo', 5, '***', 5),
       ecrm.mask_partial('', 1, '***', 1), ecrm.mask_partial(NULL, 1, '***', 1),
       ecrm.mask_partial('Müllerstraße', 2, '…', 2), ecrm.mask_partial('東京都渋谷区', 1, '＊', 1);
SELECT length(ecrm.mask_partial(repeat('x', 2000000), 3, '***', 3));
SELECT ecrm.mask_partial('abc', -1, '*', 0);
SELECT ecrm.mask_partial('abc', 0, '*', -2);
SELECT ecrm.mask_partial(NULL, NULL, '*', 0);
SELECT ecrm.mask_partial('abc', 1, NULL, 0);
SELECT ecrm.mask_partial('abc', 1, repeat('*', 1001), 0);

-- mask_keep: separators stay, the kept characters never show the whole value
SELECT ecrm.mask_keep('123-45-6789', 0, 4), ecrm.mask_keep('AB 12 34 56 C', 2, 0), ecrm.mask_keep('1234', 2, 2),
       ecrm.mask_keep('', 1, 1), ecrm.mask_keep(NULL, 0, 4), ecrm.mask_keep('Zoë-Ünal', 1, 1);
SELECT ecrm.mask_keep('x', -1, 0);
SELECT ecrm.mask_keep('x', 0, NULL);

-- mask_email: the person goes, the class of domain stays
SELECT e, ecrm.mask_email(e) AS provider, ecrm.mask_email(e, 'domain') AS domain, ecrm.mask_email(e, 'tld') AS tld,
       ecrm.mask_email(e, 'none') AS none
  FROM (VALUES ('John.Smith@Gmail.com'), ('jane@acme.co.uk'), ('ops@sub.example.com.'), ('  x@hotmail.fr  '),
               ('ünal@exämple.de'), ('bob@localhost'), ('no-at-sign'), ('a@b@c.com'), ('"quoted"@x.com'),
               ('@x.com'), ('x@.com'), ('x@1.2'), ('')) v(e);
SELECT ecrm.mask_email(NULL), ecrm.mask_email(NULL, 'domain'), ecrm.mask_email(repeat('a', 64) || '@' || repeat('b', 300) || '.com');
SELECT ecrm.mask_email('x@y.com', 'everything');
SELECT ecrm.mask_email(NULL, 'everything');
SELECT ecrm.mask_email('x@y.com', NULL);
SELECT ecrm.mask_email('x@y.com', repeat('z', 500));

-- mask_phone: calling code and the last digits
SELECT p, ecrm.mask_phone(p), ecrm.mask_phone(p, 0), ecrm.mask_phone(p, 4)
  FROM (VALUES ('+44 20 7946 0958'), ('0044 20 7946 0958'), ('+1 (415) 555-2671'), ('020 7946 0958'), ('12345'),
               ('1234'), ('+44 12'), ('call me'), ('+999 123 456 789'), ('')) v(p);
SELECT ecrm.mask_phone(NULL), ecrm.mask_phone(repeat('1', 2000000)) AS huge;
SELECT ecrm.mask_phone('+44 20 7946 0958', 5);
SELECT ecrm.mask_phone('+44 20 7946 0958', -1);
SELECT ecrm.mask_phone('+44 20 7946 0958', NULL);

-- mask_name
SELECT n, ecrm.mask_name(n), ecrm.mask_name(n, 'first'), ecrm.mask_name(n, 'none')
  FROM (VALUES ('jean-paul sartre'), ('Ada Lovelace'), ('  Émile   Zola '), ('李 小龙'), ('O''Brien'), ('123 456'),
               ('a b c d e f g h i j k l'), ('')) v(n);
SELECT ecrm.mask_name(NULL), ecrm.mask_name(NULL, 'first');
SELECT ecrm.mask_name('Ada', 'last');

-- mask_address, mask_postal_code
SELECT a, ecrm.mask_address(a)
  FROM (VALUES ('221B Baker Street, London'), ('Flat 3, 12 High Street, Leeds'), ('Rose Cottage, Lower Slaughter'),
               ('Hauptstraße 5, 10115 Berlin'), ('Apt 4B, 350 Fifth Avenue'), ('12'), ('')) v(a);
SELECT c, ecrm.mask_postal_code(c)
  FROM (VALUES ('SW1A 1AA'), ('sw1a1aa'), ('90210'), ('90210-1234'), ('1012AB'), ('K1A 0B1'), ('75008'), ('2000'),
               ('AB'), ('12 34 56'), ('ABCDEFGHIJKLMN'), ('9021?'), ('')) v(c);
SELECT ecrm.mask_address(NULL), ecrm.mask_postal_code(NULL);

-- mask_card (Luhn), mask_iban (mod 97): invalid ones are never echoed
SELECT c, ecrm.is_valid_card(c), ecrm.mask_card(c)
  FROM (VALUES ('4111 1111 1111 1111'), ('4111-1111-1111-1111'), ('4111111111111112'), ('378282246310005'),
               ('4111  1111 1111 1111'), ('4111 1111 1111 1111 1111'), ('41111111111'), ('card 4111'), ('')) v(c);
SELECT i, ecrm.is_valid_iban(i), ecrm.mask_iban(i)
  FROM (VALUES ('GB82 WEST 1234 5698 7654 32'), ('gb82west12345698765432'), ('IBAN DE89 3704 0044 0532 0130 00'),
               ('GB82 WEST 1234 5698 7654 33'), ('DE89 3704 0044 0532 0130'), ('XX82 WEST 1234 5698 7654 32'),
               ('GB82-WEST-1234'), ('')) v(i);
SELECT ecrm.mask_card(NULL), ecrm.mask_iban(NULL), ecrm.is_valid_card(NULL), ecrm.is_valid_iban(NULL),
       ecrm.is_valid_card(repeat('4', 5000000)) AS huge_card;

-- national ids as configured
SELECT k, v, ecrm.is_valid_national_id(v, k), ecrm.mask_national_id(v, k)
  FROM (VALUES ('us_ssn', '123-45-6789'), ('us_ssn', '000-45-6789'), ('us_ssn', '123456789'), ('uk_nino', 'AB 12 34 56 C'),
               ('uk_nino', 'DA 12 34 56 C'), ('fr_nir', '1 85 05 78 006 084 91'), ('fr_nir', '1 85 05 78 006 084 36'),
               ('nl_bsn', '111222333'), ('nl_bsn', '111222334'), ('es_dni', '12345678Z'), ('es_dni', 'X1234567L'),
               ('es_dni', '12345678A'), ('ca_sin', '046 454 286'), ('se_pnr', '811218-9876'), ('us_ssn', '')) v(k, v);
SELECT ecrm.mask_national_id(NULL, 'us_ssn');
SELECT ecrm.mask_national_id('123', 'xx_id');
SELECT ecrm.mask_national_id('123', NULL);
SELECT ecrm.check_digits_valid('79927398713', 'luhn'), ecrm.check_digits_valid('111222333', 'mod11'),
       ecrm.check_digits_valid('', 'luhn'), ecrm.check_digits_valid(NULL, 'dni');
SELECT ecrm.check_digits_valid('1', 'crc32');
SELECT ecrm.check_digits_valid('1', NULL);

-- dates, times, numbers
SELECT ecrm.mask_date('1990-04-17'), ecrm.mask_date('1990-04-17', 'quarter'), ecrm.mask_date('1990-04-17', 'year'),
       ecrm.mask_date('1990-04-17', 'decade'), ecrm.mask_date('infinity'), ecrm.mask_date(NULL), ecrm.mask_date('0044-03-15 BC');
SELECT ecrm.mask_time('2024-05-06 07:08:09'::timestamp), ecrm.mask_time('2024-05-06 07:08:09'::timestamp, 'hour'),
       ecrm.mask_time('2024-05-06 07:08:09+02'::timestamptz, 'month'), ecrm.mask_time(NULL::timestamptz, 'year');
SELECT ecrm.mask_date('1990-04-17', 'day');
SELECT ecrm.mask_date(NULL, 'fortnight');
SELECT ecrm.mask_time(now(), NULL);
SELECT ecrm.mask_range(37, 10), ecrm.mask_range(-37, 10), ecrm.mask_range(40, 10), ecrm.mask_range(2147483647, 1000),
       ecrm.mask_range(-2147483648, 1000), ecrm.mask_range(9223372036854775807, 10::bigint),
       ecrm.mask_range(123.45, 0.5), ecrm.mask_range(-0.01, 1.0), ecrm.mask_range('NaN'::numeric, 1), ecrm.mask_range(NULL::integer, 5);
SELECT ecrm.mask_range(1, 0);
SELECT ecrm.mask_range(1::bigint, -5::bigint);
SELECT ecrm.mask_range(1.5, 'NaN');
SELECT ecrm.mask_range(1.5, NULL);
-- fresh noise stays within its bound
SELECT bool_and(ecrm.mask_noise(100, 0.1) BETWEEN 90 AND 110), count(DISTINCT ecrm.mask_noise(100, 0.1)) > 1
  FROM generate_series(1, 1000);
SELECT ecrm.mask_noise(100, 0), ecrm.mask_noise('Infinity', 0.5), ecrm.mask_noise(NULL, 0.5);
SELECT ecrm.mask_noise(100, 1.5);
SELECT ecrm.mask_noise(100, 'NaN');
SELECT ecrm.mask_noise(100, NULL);

-- IP addresses: the host part zeroed
SELECT ecrm.mask_ip('192.0.2.77'::inet), ecrm.mask_ip('192.0.2.77/32'::inet, 16, 48), ecrm.mask_ip('10.1.2.3/8'::inet),
       ecrm.mask_ip('2001:db8:1:2:3:4:5:6'::inet), ecrm.mask_ip('2001:db8:1:2::7'::inet, 24, 32), ecrm.mask_ip(NULL::inet);
SELECT ip, ecrm.mask_ip(ip)
  FROM (VALUES ('192.0.2.77'), (' 203.0.113.9 '), ('2001:DB8::1'), ('::ffff:192.0.2.1'), ('256.1.1.1'), ('1.2.3'),
               ('01.2.3.4'), ('not an ip'), ('')) v(ip);
SELECT ecrm.mask_ip('1.2.3.4', 33, 48);
SELECT ecrm.mask_ip('::1'::inet, 24, -1);
SELECT ecrm.mask_ip('1.2.3.4', NULL, 48);

-- pseudonyms need the key; without it they refuse, and no error shows a key
RESET ecrm.pseudonym_key;
SELECT ecrm.pseudonym('x');
SELECT ecrm.pseudonym_email(NULL);
SET ecrm.pseudonym_key = 'short';
SELECT ecrm.pseudonym('x');
SET ecrm.pseudonym_key = 'regression-test-key-0001';
SELECT ecrm.pseudonym('alice@example.org'), ecrm.pseudonym('alice@example.org', 'crm'), ecrm.pseudonym(''),
       ecrm.pseudonym(NULL), length(ecrm.pseudonym(repeat('é', 1000000)));
SELECT ecrm.pseudonym_id(42), ecrm.pseudonym_id(42, 'crm'), ecrm.pseudonym_id(-9223372036854775808) > 0, ecrm.pseudonym_id(NULL);
-- one pseudonym for every spelling of an address; valid and reserved-domain output
SELECT e, ecrm.pseudonym_email(e), ecrm.normalize_email(ecrm.pseudonym_email(e)) IS NOT NULL AS valid
  FROM (VALUES ('John.Smith@gmail.com'), ('johnsmith+news@GMAIL.com'), ('jane@acme.co.uk'), ('not an email'),
               ('Ünal@exämple.de'), ('')) v(e);
SELECT p, ecrm.pseudonym_phone(p), ecrm.phone_country_code(ecrm.pseudonym_phone(p)) AS cc
  FROM (VALUES ('+44 20 7946 0958'), ('+442079460958'), ('0044 20 7946 0958'), ('+1 415 555 2671'), ('020 7946 0958'),
               ('12'), ('phone'), ('')) v(p);
SET ecrm.default_country = 'GB';
SELECT ecrm.pseudonym_phone('020 7946 0958') = ecrm.pseudonym_phone('+44 20 7946 0958') AS national_read_in_gb;
RESET ecrm.default_country;
SELECT n, ecrm.pseudonym_name(n), ecrm.pseudonym_name(n, 'first'), ecrm.pseudonym_name(n, 'last')
  FROM (VALUES ('Ada Lovelace'), ('  ada   LOVELACE '), ('李小龙'), ('')) v(n);
SELECT ecrm.pseudonym_name('Ada', 'middle');
SELECT ecrm.pseudonym_name('Ada', NULL);
SELECT ecrm.pseudonym('x', repeat('c', 1001));
-- keyed noise: the same seed, the same noise
SELECT ecrm.mask_noise(100.00, 0.1, 'order 1') = ecrm.mask_noise(100.00, 0.1, 'order 1') AS repeatable,
       ecrm.mask_noise(100.00, 0.1, 'order 1') BETWEEN 90 AND 110 AS bounded,
       ecrm.mask_noise(100.00, 0.1, 'order 1', 'crm') <> ecrm.mask_noise(100.00, 0.1, 'order 1') AS context_matters,
       scale(ecrm.mask_noise(12.345, 0.2, 'x')) AS keeps_scale, ecrm.mask_noise(NULL::numeric, 0.1, 'x'),
       ecrm.mask_noise('NaN'::numeric, 0.1, 'x');
SELECT ecrm.mask_noise(100.0, 0.1, NULL);
SELECT ecrm.mask_noise(100.0, 2, 'x');
-- a pseudonym is HMAC-SHA256 of "token \0 context \0 value" under the key (checked with pgcrypto)
CREATE EXTENSION pgcrypto SCHEMA public;
SELECT ecrm.pseudonym('alice@example.org', 'crm')
       = substr(encode(public.hmac('token'::bytea || '\x00'::bytea || 'crm'::bytea || '\x00'::bytea || 'alice@example.org'::bytea,
                                   'regression-test-key-0001'::bytea, 'sha256'), 'hex'), 1, 16) AS is_hmac_sha256;
DROP EXTENSION pgcrypto;
-- a different key, different pseudonyms
SET ecrm.pseudonym_key = 'regression-test-key-0002';
SELECT ecrm.pseudonym('alice@example.org');
RESET ecrm.pseudonym_key;

-- the key setting is superuser-only and never stored where every role can read it
SELECT name, context FROM pg_settings WHERE name = 'ecrm.pseudonym_key';
ALTER DATABASE contrib_regression SET ecrm.pseudonym_key = 'leaked-in-pg_db_role_setting';
ALTER ROLE CURRENT_USER SET ecrm.pseudonym_key = 'leaked-in-pg_db_role_setting';
CREATE FUNCTION pg_temp.f() RETURNS int LANGUAGE sql SET ecrm.pseudonym_key = 'leaked-in-pg_proc' RETURN 1;
SELECT count(*) FROM pg_db_role_setting WHERE array_to_string(setconfig, ',') LIKE '%pseudonym%';

-- recognising personal data
SELECT v, ecrm.pii_kind(v)
  FROM (VALUES ('john@example.com'), ('john@'), ('192.0.2.1'), ('2001:db8::1'), ('GB82 WEST 1234 5698 7654 32'),
               ('4111 1111 1111 1111'), ('0012345678903'), ('1990-04-17'), ('17/04/1990'), ('31/02/1990'),
               ('+44 20 7946 0958'), ('(555) 123-4567'), ('Ada Lovelace'), ('müller'), ('Zebra Crossing'),
               ('hello world'), ('12345'), ('')) v(v);
SELECT ecrm.pii_kind(NULL), ecrm.pii_kind(repeat('a', 2000000)) AS huge;
SELECT t, ecrm.pii_find(t), ecrm.redact_text(t)
  FROM (VALUES ('Mail me at jo.doe@example.com or call +44 20 7946 0958.'),
               ('Card: 4111 1111 1111 1111, IBAN GB82 WEST 1234 5698 7654 32 (thanks!)'),
               ('Logged in from 203.0.113.9 and 2001:db8::7'),
               ('Order 12345 shipped on 2024-05-06'),
               ('Phone: 020 7946 0958'),
               ('<jane@example.org>; "x@y.co"'),
               ('nothing here'), ('')) v(t);
SELECT ecrm.redact_text(NULL), ecrm.pii_find(NULL);
SELECT ecrm.redact_text(repeat('a', 1048577));
SELECT ecrm.pii_find(repeat('b', 1048577));
SELECT length(ecrm.redact_text(repeat('call +44 20 7946 0958 ', 40000)));

-- JSON: an allow-list of keys, and the identities of customer_360
SELECT ecrm.mask_jsonb('{"industry": "retail", "secret": "x", "plan": {"tier": 2}}', '{industry,plan,absent}'),
       ecrm.mask_jsonb('{"a": 1}', '{}'), ecrm.mask_jsonb('{"a": 1}', NULL), ecrm.mask_jsonb('{"a": 1}', '{NULL,a}'),
       ecrm.mask_jsonb('[1, 2]', '{a}'), ecrm.mask_jsonb('"scalar"', '{a}'), ecrm.mask_jsonb(NULL, '{a}'), ecrm.mask_jsonb('{}', '{a}');
SELECT ecrm.mask_jsonb('{"a": 1}', '{{a},{b}}');
SELECT ecrm.mask_identities('[{"kind": "email", "namespace": "", "value": "Ada@Example.com"},
                               {"kind": "phone", "namespace": "", "value": "+44 20 7946 0001"},
                               {"kind": "external", "namespace": "shop", "value": "CUST-1"},
                               {"kind": "email", "value": "not an email"}, {"value": 5}, 7, "x", null]');
SELECT ecrm.mask_identities('[]'), ecrm.mask_identities('{}'), ecrm.mask_identities('"x"'), ecrm.mask_identities(NULL);
SET ecrm.pseudonym_key = 'regression-test-key-0001';
SELECT ecrm.mask_identity('email', 'Ada@Example.com') = ecrm.pseudonym_email('ada@example.com') AS email,
       ecrm.mask_identity('phone', '+44 20 7946 0001') = ecrm.pseudonym_phone('+442079460001') AS phone,
       ecrm.mask_identity('cookie', 'abc') = ecrm.pseudonym('abc') AS other,
       ecrm.mask_identity(NULL, 'abc') = ecrm.pseudonym('abc') AS no_kind, ecrm.mask_identity('email', NULL) AS null_value;
RESET ecrm.pseudonym_key;
