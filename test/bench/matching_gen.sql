-- Synthetic customer profiles with duplicates, typos, missing fields and known truth, for the identity-
-- resolution benchmarks.  psql script; variables: n (people, default 1000000), seed (default 1).
--
--   psql -v n=1000000 -v seed=1 -f test/bench/matching_gen.sql
--
-- People get names from skewed distributions (the commonest surname ~0.4% of people, the commonest first
-- name ~3%, as in real populations) over ~300 first names and ~32,000 surnames built
-- from syllables, a birth date, an address (house number, one of ~1,000 streets, one of ~900 cities with
-- 20 postal codes each), a phone and an email made from their name.  About 10% of people have a second
-- profile and 2% a third, made later through another channel: a typo in a name (swap, drop, double or
-- replace a letter), another email address (or none), no phone half of the time, street abbreviated,
-- birth date missing or mistyped sometimes.  The truth is attributes->>'person'.  Rows go straight into
-- ecrm.customer_profile (the lifecycle trigger is disabled while loading: it is not what is measured).
\if :{?n}
\else
\set n 1000000
\endif
\if :{?seed}
\else
\set seed 1
\endif

CREATE OR REPLACE FUNCTION pg_temp.u(i bigint, salt int) RETURNS double precision
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN ((hashint8extended(i, :seed * 1000003 + salt) >> 11) & 4503599627370495)::double precision / 4503599627370496.0;

-- a typo: swap, drop, double or replace one letter (never the first)
CREATE OR REPLACE FUNCTION pg_temp.typo(s text, u double precision) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN (SELECT CASE WHEN length(s) < 4 THEN s
                        WHEN u < 0.3 THEN overlay(s PLACING substr(s, p + 1, 1) || substr(s, p, 1) FROM p FOR 2)
                        WHEN u < 0.55 THEN overlay(s PLACING '' FROM p FOR 1)
                        WHEN u < 0.75 THEN overlay(s PLACING substr(s, p, 1) FROM p FOR 0)
                        ELSE overlay(s PLACING substr('aeiourstnl', 1 + floor(u * 1000)::int % 10, 1) FROM p FOR 1) END
              FROM (SELECT 2 + floor(u * 997)::int % (length(s) - 2) AS p) x);

CREATE TEMP TABLE g_first AS
SELECT row_number() OVER () AS i, n AS name FROM unnest(ARRAY[
 'James','Mary','John','Patricia','Robert','Jennifer','Michael','Linda','William','Elizabeth','David','Barbara','Richard','Susan',
 'Joseph','Jessica','Thomas','Sarah','Charles','Karen','Christopher','Nancy','Daniel','Lisa','Matthew','Betty','Anthony','Margaret',
 'Mark','Sandra','Donald','Ashley','Steven','Kimberly','Paul','Emily','Andrew','Donna','Joshua','Michelle','Kenneth','Dorothy',
 'Kevin','Carol','Brian','Amanda','George','Melissa','Edward','Deborah','Ronald','Stephanie','Timothy','Rebecca','Jason','Sharon',
 'Jeffrey','Laura','Ryan','Cynthia','Jacob','Kathleen','Gary','Amy','Nicholas','Shirley','Eric','Angela','Jonathan','Helen',
 'Stephen','Anna','Larry','Brenda','Justin','Pamela','Scott','Nicole','Brandon','Emma','Benjamin','Samantha','Samuel','Katherine',
 'Gregory','Christine','Frank','Debra','Alexander','Rachel','Raymond','Catherine','Patrick','Carolyn','Jack','Janet','Dennis','Ruth',
 'Jerry','Maria','Tyler','Heather','Aaron','Diane','Jose','Virginia','Adam','Julie','Henry','Joyce','Nathan','Victoria','Douglas',
 'Olivia','Zachary','Kelly','Peter','Christina','Kyle','Lauren','Walter','Joan','Ethan','Evelyn','Jeremy','Judith','Harold','Megan',
 'Keith','Cheryl','Christian','Andrea','Roger','Hannah','Noah','Martha','Gerald','Jacqueline','Carl','Frances','Terry','Gloria',
 'Sean','Ann','Austin','Teresa','Arthur','Kathryn','Lawrence','Sara','Jesse','Janice','Dylan','Jean','Bryan','Alice','Joe','Madison',
 'Jordan','Doris','Billy','Abigail','Bruce','Julia','Albert','Judy','Willie','Grace','Gabriel','Denise','Logan','Amber','Alan',
 'Marilyn','Juan','Beverly','Wayne','Danielle','Roy','Theresa','Ralph','Sophia','Randy','Marie','Eugene','Diana','Vincent',
 'Brittany','Russell','Natalie','Elijah','Isabella','Louis','Charlotte','Bobby','Rose','Philip','Alexis','Johnny','Kayla','Lukas',
 'Léa','Jürgen','Sören','Zoë','Chloé','Raphaël','Inès','Álvaro','Sofía','Mateo','Lucía','Björn','Åsa','Jörg','Maël','Noémie',
 'Matteo','Giulia','Francesco','Chiara','Lorenzo','Aurora','Pedro','Beatriz','João','Ana','Tomás','Inês','Daan','Fleur','Sem',
 'Tess','Oliver','Amelia','Harry','Isla','Freya','Arlo','Ivy','Finn','Nora','Liam','Mia','Leon','Lea','Felix','Lina','Paul',
 'Marie','Elias','Ella','Jonas','Clara','Maximilian','Emilia','Ben','Leonie','Anton','Ida','Erik','Maja','Nils','Elsa','Hugo',
 'Alma','Axel','Saga','Oscar','Wilma','Arvid','Astrid','Milo','Luna','Theo','Ada','Otto','Lotta','Emil','Greta','Karl','Frida'
]) n;

-- surnames from syllables: ~32,000 plausible names
CREATE TEMP TABLE g_last AS
SELECT row_number() OVER (ORDER BY pg_temp.u(hashtext(a || m || b), 7)) AS i, a || m || b AS name
  FROM unnest(ARRAY['Ander','Bau','Beck','Berg','Bran','Brock','Carl','Chap','Dal','Dan','Eck','Eng','Fair','Fal','Fitz','Gar',
                    'Gold','Gra','Hal','Har','Hart','Hof','Holt','Jan','Jen','Kel','Kirch','Lam','Lang','Lind','Mac','Mar',
                    'Mill','Mor','Nel','Nord','Os','Pal','Pet','Rich','Ros','Sal','Sand','Schu','Shel','Stein','Strom','Sund',
                    'Tal','Thom','Van','Wal','War','Weis','Wil','Win','Wolf','York','Zim','Bel','Cor','Dor','Fer','Gal','Mon',
                    'Ric','Rod','Ser','Vil','Bian','Cas','Lor','Mat','Mor','Nov','Kow','Les','Mal','Dub','Lef','Rou','Gir',
                    'Bon','Mer','Fon','Cha','Dum','Mul','Schmi','Wag','Kra','Neu','Fisch','Web','Hoff','Kle','Zie'
                   ]) a,
       unnest(ARRAY['son','sen','er','man','mann','ley','ton','ford','field','wood','ski','ez','ini','elli','ard','ier','ot',
                    'ers','dorf','stein','berg','ström','ssen','ing','well','worth','by','ham','stad','ov','ova','ic','ek']) b,
       unnest(ARRAY['', 'a', 'e', 'i', 'o', 'en', 'er', 'el', 'an', 'in']) m;
CREATE TEMP TABLE g_city AS
SELECT i, initcap(a || b) AS name, lpad(((i * 7919) % 90000 + 10000)::text, 5, '0') AS zip,
       (ARRAY['US','GB','DE','FR','ES','IT','NL','SE'])[1 + i % 8] AS country
  FROM (SELECT row_number() OVER () AS i, a, b
          FROM unnest(ARRAY['spring','oak','river','lake','mill','stone','green','north','south','east','west','fair','glen',
                            'ash','elm','maple','pine','cedar','bay','port','new','old','red','white','black','silver','gold',
                            'high','low','long']) a,
               unnest(ARRAY['field','ton','ville','burg','ford','wood','dale','haven','port','mouth','bridge','brook','view',
                            'hill','stead','wick','by','ham','mere','ridge','vale','worth','bury','cliff','side','well','land',
                            'gate','more','crest']) b) x;
CREATE TEMP TABLE g_street AS
SELECT row_number() OVER () AS i, a || ' ' || b AS name, b AS kind
  FROM unnest(ARRAY['Main','Church','High','Park','Oak','Maple','Cedar','Elm','Washington','Lake','Hill','Station','Mill','Victoria',
                    'Green','Manor','Kings','Queens','School','Bridge','River','Market','York','London','Garden','Forest','Spring',
                    'Chestnut','Willow','Meadow','Orchard','Grove','Sunset','Highland','Jackson','Lincoln','Madison','Franklin',
                    'Jefferson','Adams','Albert','Castle','Abbey','Chapel','Mount','Pleasant','Union','Water','West','North']) a,
       unnest(ARRAY['Street','Road','Avenue','Lane','Drive','Court','Place','Way','Terrace','Crescent','Close','Boulevard',
                    'Square','Parkway','Grove','Gardens','Circle','Hill','Row','Walk']) b;
ANALYZE g_first; ANALYZE g_last; ANALYZE g_city; ANALYZE g_street;

CREATE TEMP TABLE g_person AS
SELECT x.p, f.name AS first_name, l.name AS last_name, x.city_i, x.street_i, x.house, x.birth_date, x.phone, x.domain,
       x.email_style, x.dup_u, x.created_at
  FROM (SELECT p,
               1 + floor(pg_temp.u(p, 1) ^ 1.6 * nf)::int AS first_i,
               1 + floor(pg_temp.u(p, 2) ^ 1.5 * nl)::int AS last_i,
               1 + floor(pg_temp.u(p, 3) ^ 1.8 * nc)::int AS city_i,
               1 + floor(pg_temp.u(p, 4) * ns)::int AS street_i,
               1 + floor(pg_temp.u(p, 5) * 400)::int AS house,
               date '1940-01-01' + floor(pg_temp.u(p, 6) * 24000)::int AS birth_date,
               '+1' || (2010000000 + floor(pg_temp.u(p, 7) * 7989999999)::bigint)::text AS phone,
               (ARRAY['gmail.com','yahoo.com','outlook.com','hotmail.com','icloud.com','web.de','orange.fr','libero.it','aol.com','gmx.de'])
                   [1 + floor(pg_temp.u(p, 8) ^ 1.5 * 10)::int] AS domain,
               floor(pg_temp.u(p, 9) * 4)::int AS email_style,
               pg_temp.u(p, 10) AS dup_u,
               timestamptz '2019-01-01' + make_interval(secs => pg_temp.u(p, 11) * 4 * 365 * 86400) AS created_at
          FROM generate_series(1, :n) p,
               (SELECT (SELECT count(*) FROM g_first) AS nf, (SELECT count(*) FROM g_last) AS nl,
                       (SELECT count(*) FROM g_city) AS nc, (SELECT count(*) FROM g_street) AS ns) k) x
  JOIN g_first f ON f.i = x.first_i
  JOIN g_last l ON l.i = x.last_i;

ALTER TABLE ecrm.customer_profile DISABLE TRIGGER customer_profile_lifecycle;
-- the blocking-key indexes are built once after the load (faster than row by row)
DO $$
DECLARE
    i text;
BEGIN
    FOR i IN SELECT indexname FROM pg_indexes WHERE schemaname = 'ecrm' AND indexname LIKE 'customer_profile_match_key%' LOOP
        EXECUTE format('DROP INDEX ecrm.%I', i);
    END LOOP;
END
$$;
INSERT INTO ecrm.customer_profile (first_name, last_name, email, phone, birth_date, street, city, postal_code, country, source,
                                   attributes, created_at, updated_at)
SELECT CASE WHEN c.copy > 0 AND c.v1 < 0.35 THEN pg_temp.typo(c.first_name, c.v2) ELSE c.first_name END,
       CASE WHEN c.copy > 0 AND c.v1 >= 0.35 AND c.v1 < 0.7 THEN pg_temp.typo(c.last_name, c.v3) ELSE c.last_name END,
       CASE WHEN c.copy > 0 AND c.v4 < 0.2 THEN NULL
            ELSE lower(translate(CASE (c.email_style + c.copy) % 4
                                     WHEN 0 THEN c.first_name || '.' || c.last_name
                                     WHEN 1 THEN left(c.first_name, 1) || c.last_name
                                     WHEN 2 THEN c.first_name || c.last_name || (c.p % 100)
                                     ELSE c.last_name || '_' || c.first_name END,
                                 'áàâäãåçéèêëíìîïñóòôöõøúùûüýÿßæœ', 'aaaaaaceeeeiiiinoooooouuuuyysao'))
                 || CASE WHEN c.copy > 0 THEN c.copy::text ELSE '' END || '@'
                 || CASE WHEN c.copy > 0 AND c.v5 < 0.5 THEN 'gmail.com' ELSE c.domain END END,
       CASE WHEN c.copy > 0 AND c.v6 < 0.5 THEN NULL
            WHEN pg_temp.u(c.p * 3 + c.copy, 12) < 0.15 THEN NULL ELSE c.phone END,
       CASE WHEN c.copy > 0 AND c.v7 < 0.3 THEN NULL
            WHEN c.copy > 0 AND c.v7 < 0.38 THEN c.birth_date + 1
            WHEN pg_temp.u(c.p * 3 + c.copy, 13) < 0.1 THEN NULL ELSE c.birth_date END,
       CASE WHEN c.copy > 0 AND c.v8 < 0.25 THEN NULL
            WHEN c.copy > 0 AND c.v8 < 0.6 THEN c.house || ' ' || replace(replace(replace(s.name, 'Street', 'St.'), 'Road', 'Rd'), 'Avenue', 'Ave')
            ELSE c.house || ' ' || s.name END,
       CASE WHEN c.copy > 0 AND c.v8 < 0.1 THEN NULL ELSE ci.name END,
       CASE WHEN c.copy > 0 AND c.v8 < 0.05 THEN NULL ELSE lpad(((ci.zip::int + 100 * (c.p % 20)) % 100000)::text, 5, '0') END,
       ci.country,
       CASE WHEN c.copy = 0 THEN 'web' WHEN c.v2 < 0.5 THEN 'store' ELSE 'support' END,
       jsonb_build_object('person', c.p),
       c.created_at + make_interval(days => c.copy * (10 + floor(c.v3 * 300)::int)),
       c.created_at + make_interval(days => c.copy * (10 + floor(c.v3 * 300)::int))
  FROM (SELECT pe.*, k.copy,
               pg_temp.u(pe.p * 3 + k.copy, 20) AS v1, pg_temp.u(pe.p * 3 + k.copy, 21) AS v2, pg_temp.u(pe.p * 3 + k.copy, 22) AS v3,
               pg_temp.u(pe.p * 3 + k.copy, 23) AS v4, pg_temp.u(pe.p * 3 + k.copy, 24) AS v5, pg_temp.u(pe.p * 3 + k.copy, 25) AS v6,
               pg_temp.u(pe.p * 3 + k.copy, 26) AS v7, pg_temp.u(pe.p * 3 + k.copy, 27) AS v8
          FROM g_person pe
          CROSS JOIN LATERAL generate_series(0, CASE WHEN pe.dup_u < 0.02 THEN 2 WHEN pe.dup_u < 0.12 THEN 1 ELSE 0 END) k(copy)) c
  JOIN g_city ci ON ci.i = c.city_i
  JOIN g_street s ON s.i = c.street_i
 ORDER BY c.p, c.copy;
ALTER TABLE ecrm.customer_profile ENABLE TRIGGER customer_profile_lifecycle;
SELECT ecrm.create_blocking_indexes() AS blocking_indexes;
ANALYZE ecrm.customer_profile;
SELECT count(*) AS profiles, count(DISTINCT attributes ->> 'person') AS people FROM ecrm.customer_profile;
