-- The pseudonym kernel (HMAC-SHA256 with the key schedule cached per key) against pgcrypto's hmac(), the
-- reference: every pseudonym and pseudonym_id of generated values equals the HMAC computed from scratch.
-- Keys around the SHA-256 block size (63, 64, 65 bytes: a longer key is hashed first), messages around the
-- padding boundaries (55, 56, 64 bytes and several blocks), Unicode, contexts; keys switched within the
-- session, to a key of the same length that differs in its last byte and back again (a stale cached key
-- schedule would show as mismatches).
CREATE EXTENSION pgcrypto SCHEMA public;
CREATE FUNCTION pg_temp.hmac_mismatches(key text) RETURNS TABLE (values_checked bigint, token_mismatches bigint, id_mismatches bigint)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('ecrm.pseudonym_key', key, false);
    RETURN QUERY
    SELECT count(*),
           count(*) FILTER (WHERE ecrm.pseudonym(v, c) IS DISTINCT FROM
                   substr(encode(public.hmac('token'::bytea || '\x00'::bytea || convert_to(coalesce(c, ''), 'UTF8') || '\x00'::bytea
                                             || convert_to(v, 'UTF8'), convert_to(key, 'UTF8'), 'sha256'), 'hex'), 1, 16)),
           count(*) FILTER (WHERE ecrm.pseudonym_id(g * 7919 - 500000, c) IS DISTINCT FROM
                   ((('x' || substr(encode(public.hmac('id'::bytea || '\x00'::bytea || convert_to(coalesce(c, ''), 'UTF8') || '\x00'::bytea
                                                       || int8send(g * 7919 - 500000), convert_to(key, 'UTF8'), 'sha256'), 'hex'), 1, 16))::bit(64) >> 1)::bigint | 1))
      FROM (SELECT g, left(repeat(md5(g::text) || 'é€😀', 1 + g / 40), g % 300) AS v,
                   CASE WHEN g % 4 = 0 THEN NULL ELSE left(repeat('ctx', 30), (g * 7) % 80) END AS c
              FROM generate_series(0, 1199) g) x;
END $$;
SELECT k AS key_length, m.*
  FROM unnest(ARRAY[repeat('a', 15) || '1', repeat('a', 15) || '2', 'regression-test-key-0001', repeat('k', 63),
                    repeat('k', 64), repeat('k', 65), repeat('long key ', 40), repeat('a', 15) || '1']) WITH ORDINALITY u(key, n)
 CROSS JOIN LATERAL (SELECT length(key)) l(k)
 CROSS JOIN LATERAL pg_temp.hmac_mismatches(key) m
 ORDER BY n;
-- known values (as in mask.sql), after all those key changes
SET ecrm.pseudonym_key = 'regression-test-key-0001';
SELECT ecrm.pseudonym('alice@example.org'), ecrm.pseudonym('alice@example.org', 'crm'), ecrm.pseudonym(''), ecrm.pseudonym_id(42);
-- the errors are checked on every call, also once a key schedule is cached
SET ecrm.pseudonym_key = 'short';
SELECT ecrm.pseudonym('x');
RESET ecrm.pseudonym_key;
SELECT ecrm.pseudonym('x');
DROP EXTENSION pgcrypto;
