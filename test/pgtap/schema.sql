-- Invariants of the schema that every capability must keep.
BEGIN;
SELECT plan(12);

SELECT is((SELECT extrelocatable FROM pg_extension WHERE extname = 'ecrm'), false, 'ecrm is not relocatable');
SELECT is((SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'ecrm'), 'ecrm', 'ecrm lives in schema ecrm');

-- every table keyed by customer_id is in the registry that merge and erasure walk
SELECT is(ARRAY(SELECT c.oid::regclass::text FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
                 WHERE c.relnamespace = 'ecrm'::regnamespace AND c.relkind IN ('r', 'p') AND a.attname = 'customer_id'
                   AND NOT a.attisdropped
                   AND c.oid NOT IN (SELECT relid FROM ecrm.customer_table) ORDER BY 1),
          '{}'::text[], 'every customer-keyed table is registered in ecrm.customer_table');
SELECT is(ARRAY(SELECT t.relid::text FROM ecrm.customer_table t
                 WHERE NOT EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = t.relid AND a.attname = t.key_column)
                 ORDER BY 1), '{}'::text[], 'every registered table has its key column');
SELECT is(ARRAY(SELECT t.relid::text || '.' || p FROM ecrm.customer_table t, unnest(t.pii_columns) p
                 WHERE NOT EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = t.relid AND a.attname = p)
                 ORDER BY 1), '{}'::text[], 'every registered PII column exists');

-- every user-data table (customer-keyed or not) is kept by pg_dump
SELECT is(ARRAY(SELECT c.oid::regclass::text FROM pg_class c
                 WHERE c.relnamespace = 'ecrm'::regnamespace AND c.relkind = 'r' AND c.relpersistence = 'p'
                   AND c.oid NOT IN (SELECT unnest(extconfig) FROM pg_extension WHERE extname = 'ecrm')
                 ORDER BY 1), '{}'::text[], 'every permanent table is registered with pg_extension_config_dump');

-- comments: views, their columns and functions (what \d+, \df+ and BI tools show)
SELECT is(ARRAY(SELECT c.relname::text FROM pg_class c
                 WHERE c.relnamespace = 'ecrm'::regnamespace AND c.relkind IN ('v', 'm', 'r')
                   AND obj_description(c.oid, 'pg_class') IS NULL AND c.relname NOT LIKE '\_%' ORDER BY 1),
          '{}'::text[], 'every table and view has a comment');
SELECT is(ARRAY(SELECT p.oid::regprocedure::text FROM pg_proc p
                 WHERE p.pronamespace = 'ecrm'::regnamespace AND p.proname !~ '^_' AND p.prokind IN ('f', 'a', 'p')
                   AND obj_description(p.oid, 'pg_proc') IS NULL
                   AND NOT EXISTS (SELECT FROM pg_type t WHERE p.oid IN (t.typinput, t.typoutput, t.typreceive, t.typsend))
                 ORDER BY 1), '{}'::text[], 'every public function has a comment');
SELECT is(ARRAY(SELECT c.relname || '.' || a.attname FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
                 WHERE c.relnamespace = 'ecrm'::regnamespace AND c.relkind IN ('v', 'm') AND a.attnum > 0
                   AND col_description(c.oid, a.attnum) IS NULL
                 ORDER BY 1), '{}'::text[], 'every view column has a comment');

-- functions are labelled: C functions are never VOLATILE by accident, PL functions fix their search_path
SELECT is(ARRAY(SELECT p.oid::regprocedure::text FROM pg_proc p
                 WHERE p.pronamespace = 'ecrm'::regnamespace AND p.prolang IN (SELECT oid FROM pg_language WHERE lanname IN ('plpgsql'))
                   AND NOT coalesce(p.proconfig::text LIKE '%search_path=%', false) ORDER BY 1),
          '{}'::text[], 'every PL/pgSQL function sets search_path');
SELECT is(ARRAY(SELECT p.oid::regprocedure::text FROM pg_proc p
                 WHERE p.pronamespace = 'ecrm'::regnamespace AND p.prosecdef
                   AND NOT coalesce(p.proconfig::text LIKE '%search_path=%', false) ORDER BY 1),
          '{}'::text[], 'every SECURITY DEFINER function sets search_path');
SELECT is(ARRAY(SELECT p.oid::regprocedure::text FROM pg_proc p
                 WHERE p.pronamespace = 'ecrm'::regnamespace AND p.prolang = (SELECT oid FROM pg_language WHERE lanname = 'c')
                   AND p.provolatile = 'v' AND obj_description(p.oid, 'pg_proc') NOT LIKE '%volatile%'
                   AND p.prorettype <> 'trigger'::regtype ORDER BY 1),
          '{}'::text[], 'no C function is VOLATILE unless its comment says why');

SELECT * FROM finish();
ROLLBACK;
