-- Masking rules that must hold for every object, read from the catalog (issue 11): every view of ecrm has
-- a masked twin or a rule that says why not; the vocabularies of masking policies are validated; the
-- k-anonymity check measures how identifying masked rows still are, and refuses bad input clearly.
BEGIN;
SELECT plan(30);
SET LOCAL ecrm.pseudonym_key = 'pgtap-masking-rules-key-01';

-- 1. every view: a twin, or twin = false with a reason
SELECT is(ARRAY(SELECT c.relname::text FROM pg_class c LEFT JOIN ecrm.masked_view_rule r ON r.view_name = c.oid
                 WHERE c.relnamespace = 'ecrm'::regnamespace AND c.relkind IN ('v', 'm')
                   AND to_regclass('ecrm_masked.' || quote_ident(c.relname)) IS NULL
                   AND (r.view_name IS NULL OR r.twin OR coalesce(r.note, '') = '') ORDER BY 1),
          '{}'::text[], 'every view of ecrm has a masked twin, or a rule with twin = false and a note saying why');
SELECT is(ARRAY(SELECT r.view_name::text FROM ecrm.masked_view_rule r
                 WHERE NOT r.twin AND to_regclass('ecrm_masked.' || quote_ident((SELECT c.relname FROM pg_class c WHERE c.oid = r.view_name))) IS NOT NULL),
          '{}'::text[], 'a view with twin = false has no twin');
CREATE VIEW ecrm.tap_new_view AS SELECT customer_id, email, source FROM ecrm.customer_profile;
SELECT ecrm.refresh_masked_views();
SELECT ok(to_regclass('ecrm_masked.tap_new_view') IS NOT NULL, 'a view added later gets a twin at the next regeneration');
SELECT is((SELECT strategy FROM ecrm.masked_view_plan('ecrm.tap_new_view') WHERE column_name = 'source'), 'vocabulary',
          'its copy of a free-text column is masked by the table column''s policy');

-- 2. text and JSON columns of every customer table are personal unless a policy says otherwise
CREATE TABLE ecrm.tap_notes (customer_id bigint, note text, tags text[], extra jsonb, amount numeric, flag boolean);
INSERT INTO ecrm.customer_table (relid, key_column, on_merge, on_erase, pii_columns, note)
VALUES ('ecrm.tap_notes', 'customer_id', 'repoint', 'delete', '{}', 'registered, with no PII column listed');
CREATE VIEW ecrm.tap_notes_view AS SELECT customer_id, note, tags, extra, amount, flag FROM ecrm.tap_notes;
SELECT ecrm.refresh_masked_views();
SELECT is(ARRAY(SELECT column_name || '=' || strategy FROM ecrm.masked_view_plan('ecrm.tap_notes_view') ORDER BY column_name),
          '{amount=raw,customer_id=raw,extra=null,flag=raw,note=null,tags=null}'::text[],
          'a registered customer table''s text, array and JSON columns are hidden by default, numbers and booleans are not');

-- 3. vocabularies are validated when a policy is added
SELECT throws_ok($$SELECT ecrm.add_mask_policy('ecrm.tap_notes', 'note', 'vocabulary')$$, '22023',
                 'masking strategy vocabulary needs option "values"', 'vocabulary without values');
SELECT throws_ok($$SELECT ecrm.add_mask_policy('ecrm.tap_notes', 'note', 'vocabulary', '{"values": "column:ecrm.customer_profile.email"}')$$, '22023',
                 'vocabulary of masking strategy vocabulary: ecrm.customer_profile holds customer data', 'a customer table is no vocabulary');
SELECT throws_ok($$SELECT ecrm.add_mask_policy('ecrm.tap_notes', 'note', 'vocabulary', '{"values": "column:ecrm.campaign.nope"}')$$, '42703',
                 'vocabulary of masking strategy vocabulary: ecrm.campaign.nope is not a column of a table or view', 'unknown vocabulary column');
SELECT throws_ok($$SELECT ecrm.add_mask_policy('ecrm.tap_notes', 'note', 'vocabulary', '{"values": "pattern:(("}')$$, '22023',
                 'vocabulary of masking strategy vocabulary: invalid regular expression', 'bad pattern');
SELECT throws_ok($$SELECT ecrm.add_mask_policy('ecrm.tap_notes', 'note', 'vocabulary', '{"values": "common:1:ecrm.tap_notes.note"}')$$, '22023',
                 'vocabulary of masking strategy vocabulary: common needs a threshold of at least 2 (common:<k>:<table>.<column>)', 'common needs k >= 2');
SELECT throws_ok($$SELECT ecrm.add_mask_policy('ecrm.tap_notes', 'extra', 'jsonb_keep', '{"keys": ["a"], "values": {"a": 3}}')$$, '22023',
                 'vocabulary of key "a" must be an array of strings or a string', 'a vocabulary is a list or a spec');
SELECT lives_ok($$SELECT ecrm.add_mask_policy('ecrm.tap_notes', 'note', 'vocabulary', '{"values": ["gold", "silver"]}')$$, 'a list vocabulary');
SELECT lives_ok($$SELECT ecrm.add_mask_policy('ecrm.tap_notes', 'extra', 'jsonb_keep', '{"keys": ["tier", "n", "who"], "values": {"tier": ["gold"]}}')$$,
                'a jsonb_keep vocabulary');
INSERT INTO ecrm.tap_notes VALUES (1, 'gold', NULL, '{"tier": "gold", "n": 3, "who": "ann@example.org", "x": 1}'),
                                  (2, 'Ann Smith', NULL, '{"tier": "Ann Smith", "n": 447700900461, "who": "vip"}');
SELECT is(ARRAY(SELECT note FROM ecrm_masked.tap_notes_view ORDER BY customer_id), '{gold,***}'::text[],
          'a value of the vocabulary is shown, anything else is ***');
SELECT is(ARRAY(SELECT extra::text FROM ecrm_masked.tap_notes_view ORDER BY customer_id),
          ARRAY['{"n": 3, "who": "***", "tier": "gold"}', '{"n": "***", "who": "vip", "tier": "***"}'],
          'kept keys: vocabulary values shown, PII (an email, a phone number) and unknown values ***, other keys gone');

SELECT is(ecrm.mask_identities('[{"kind": "external", "namespace": "Ada Lovelace", "value": "x1"}, {"kind": "email", "namespace": "", "value": "ada@example.org"}, {"kind": "Ada L", "namespace": "shopify", "value": "7"}]'),
          '[{"kind": "external", "value": "***", "namespace": "***"}, {"kind": "email", "value": "a***@***.org", "namespace": ""}, {"kind": "***", "value": "***", "namespace": "shopify"}]'::jsonb,
          'mask_identities keeps a kind or namespace only when it is a lower-case token (free text typed there is ***)');

-- the kernel behind jsonb_keep
SELECT is(ecrm.mask_jsonb('{"a": "x", "b": true, "c": null, "d": {"e": 1}, "f": [1], "g": "ann@example.org", "h": 441632960983, "z": 1}',
                          '{a,b,c,d,f,g,h}', '{"a": ["x"]}'),
          '{"a": "x", "b": true, "c": null, "d": "***", "f": "***", "g": "***", "h": "***"}'::jsonb,
          'mask_jsonb with vocabularies: booleans and nulls kept, nested values and PII masked, unlisted keys gone');
SELECT is(ecrm.mask_jsonb('{"a": "Xy", "b": "xy", "c": 7}', '{a,b,c}', '{"a": "pattern:^[a-z]+$", "b": "pattern:^[a-z]+$", "c": ["7"]}'),
          '{"a": "***", "b": "xy", "c": "***"}'::jsonb, 'a pattern or list vocabulary keeps only strings that match');
SELECT is(ecrm.mask_jsonb(NULL, '{a}', '{}'), NULL, 'NULL document: NULL');
SELECT is(ecrm.mask_jsonb('[1, 2]', '{a}', '{}'), NULL, 'not an object: NULL');
SELECT throws_ok($$SELECT ecrm.mask_jsonb('{"a": "x"}', '{a}', '[1]')$$, '22023', 'vocabularies of mask_jsonb must be a JSON object', 'vocabularies not an object');
SELECT throws_ok($$SELECT ecrm.mask_jsonb('{"a": "x"}', '{a}', '{"a": "enum:t"}')$$, '22023', 'invalid vocabulary in mask_jsonb', 'a vocabulary the kernel does not know');

-- 4. k-anonymity
CREATE TEMP TABLE qi (a text, b int);
INSERT INTO qi VALUES ('x', 1), ('x', 1), ('x', 1), ('y', 1), ('y', 2), (NULL, 2), (NULL, 2);
SELECT is((SELECT row(row_count, classes, smallest_class, unique_rows, rows_below_k, share_below_k)::text
             FROM ecrm.k_anonymity('qi', '{a,b}', 3)), '(7,4,1,2,4,0.5714)',
          'rows, classes, smallest class, unique rows, rows in classes below k (NULL is a value)');
SELECT is((SELECT smallest_class FROM ecrm.k_anonymity('qi', '{a,a}')), 2::bigint, 'a repeated column counts once');
SELECT is((SELECT row(row_count, classes, smallest_class)::text FROM ecrm.k_anonymity('ecrm.tap_new_view', '{email}')), '(0,0,)',
          'an empty relation: no classes');
SELECT throws_ok($$SELECT * FROM ecrm.k_anonymity(NULL, '{a}')$$, '22004', 'relation must not be null', 'NULL relation');
SELECT throws_ok($$SELECT * FROM ecrm.k_anonymity('qi', '{}')$$, '22023', 'quasi_identifiers must name at least one column', 'empty array');
SELECT throws_ok($$SELECT * FROM ecrm.k_anonymity('qi', NULL)$$, '22023', 'quasi_identifiers must name at least one column', 'NULL array');
SELECT throws_ok($$SELECT * FROM ecrm.k_anonymity('qi', '{a,nope}')$$, '42703', 'column "nope" of qi does not exist', 'unknown column');
SELECT throws_ok($$SELECT * FROM ecrm.k_anonymity('qi', '{a}', 1)$$, '22023', 'k must be at least 2, not 1', 'k below 2');

SELECT * FROM finish();
ROLLBACK;
