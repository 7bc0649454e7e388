-- Normalisation kernel: emails and phones, edge inputs included.
\pset null '(null)'
SET ecrm.default_country = '';

-- emails: case, whitespace, mailto:, brackets, provider rules
SELECT e, ecrm.normalize_email(e) FROM (VALUES
    ('John.Doe@Example.COM'), ('  john.doe@example.com  '), ('mailto:Jane@Example.org'), ('<jane@example.org>'),
    ('j.o.h.n+news@gmail.com'), ('John.Doe+x@GoogleMail.com'), ('a.b+tag@outlook.com'), ('a.b+tag@example.com'),
    ('user@example.com.'), ('+tag@gmail.com'), ('...@gmail.com'), ('müller@example.de'), ('user@bücher.de'),
    ('a@b'), ('@example.com'), ('user@'), ('user@@example.com'), ('us er@example.com'), ('user@-bad.com'),
    ('user@bad-.com'), ('user@example.123'), ('.user@example.com'), ('us..er@example.com'), ('user@exa mple.com'),
    (''), (' '), ('not an email')) v(e);
SELECT ecrm.normalize_email(NULL);
SELECT ecrm.normalize_email(repeat('a', 65) || '@example.com') AS local_too_long;
SELECT ecrm.normalize_email(repeat('a', 64) || '@example.com') IS NOT NULL AS local_64_ok;
SELECT ecrm.normalize_email('a@' || repeat('b', 64) || '.com') AS label_too_long;
SELECT ecrm.normalize_email(repeat('x', 2000000));

-- phones: international forms, national forms with a country, extensions, junk
SELECT p, c, ecrm.normalize_phone(p, c) FROM (VALUES
    ('+44 20 7946 0018', NULL), ('+44 (0)20 7946 0018', NULL), ('0044 20 7946 0018', NULL), ('020 7946 0018', 'GB'),
    ('020 7946 0018', 'gb'), ('(415) 555-0132', 'US'), ('1-415-555-0132', 'US'), ('011 44 20 7946 0018', 'US'),
    ('0171 2345678', 'DE'), ('+49 (171) 234-5678', NULL), ('06 12 34 56 78', 'FR'), ('02 1234 5678', 'IT'),
    ('8 (912) 345-67-89', 'RU'), ('tel:+41446681800', NULL), ('+1 415 555 0132 ext. 12', NULL), ('+1 415 555 0132 x12', NULL),
    ('020 7946 0018', NULL), ('+999 1234 5678', NULL), ('+44 12', NULL), ('+44 1234 5678 9012 345', NULL),
    ('+44 20 7946 ABCD', NULL), ('', 'GB'), ('   ', 'GB'), ('+', NULL), ('++44 20 7946 0018', NULL),
    ('+800 1234 5678', NULL), ('٠٢٠٧٩٤٦٠٠١٨', 'GB')) v(p, c);
SELECT ecrm.normalize_phone(NULL, 'GB'), ecrm.normalize_phone('020 7946 0018', NULL);
SELECT ecrm.normalize_phone('020 7946 0018', 'XX');
SELECT ecrm.normalize_phone('020 7946 0018', 'GBR');
SELECT ecrm.normalize_phone(repeat('1', 100), 'GB');

-- the default country setting
SELECT ecrm.normalize_phone('020 7946 0018');
SET ecrm.default_country = 'gb';
SHOW ecrm.default_country;
SELECT ecrm.normalize_phone('020 7946 0018');
SET ecrm.default_country = 'Narnia';
SET ecrm.default_country = 'ZZ';
SHOW ecrm.default_country;
RESET ecrm.default_country;
SET ecrm.unknown_setting = 1;

-- calling codes
SELECT ecrm.phone_country_code(p) FROM (VALUES ('+44 20 7946 0018'), ('+1 415 555 0132'), ('+41 44 668 18 00'),
    ('+352 123 456'), ('+800 1234 5678'), ('020 7946 0018'), ('')) v(p);
SELECT c, ecrm.country_calling_code(c) FROM (VALUES ('GB'), ('us'), ('DE'), ('XK'), ('ZZ'), (''), ('GBR'), ('日本')) v(c);
