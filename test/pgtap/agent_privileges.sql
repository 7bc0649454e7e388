-- What an agent may write, read from the catalog: every table and column the agent role can INSERT or UPDATE
-- must be in the allow-list below (a grant added later fails here until someone decides it belongs), every other
-- column of those tables is refused with 42501 when tried, and writes that bypass the API cannot break the
-- record (status and merged_into only through merge and erasure; erased stays erased; identities stay put).
-- Also: unmerge gives each profile back what it brought and what was written on its behalf (issue 11, finding 4).
BEGIN;
SELECT plan(27);
SET LOCAL ecrm.realtime_resolution = 'off';

CREATE TEMP TABLE allowed (relname name, priv text, cols name[]);
INSERT INTO allowed VALUES
    ('customer_profile', 'INSERT', '{first_name,last_name,email,phone,birth_date,company,job_title,street,city,postal_code,region,country,language,lifecycle_stage,owner,source,attributes,created_at}'),
    ('customer_profile', 'UPDATE', '{first_name,last_name,email,phone,birth_date,company,job_title,street,city,postal_code,region,country,language,lifecycle_stage,owner,source,attributes}'),
    ('identity', 'INSERT', '{customer_id,kind,namespace,value,raw_value,source,verified,member_id}'),
    ('identity', 'UPDATE', '{raw_value,source,verified,last_seen_at}'),
    ('ticket', 'INSERT', '{customer_id,channel,category,subject,body,priority,status,team,assignee,language,opened_at,first_response_at,resolved_at,first_response_due_at,sla_due_at}'),
    ('ticket', 'UPDATE', '{channel,category,subject,body,priority,status,team,assignee,language,first_response_at,resolved_at,first_response_due_at,sla_due_at}'),
    ('interaction', 'INSERT', '{customer_id,channel,kind,occurred_at,campaign_id,product_id,payload,recorded_at}'),
    ('orders', 'INSERT', '{customer_id,external_ref,status,ordered_at,channel,currency,total,campaign_id,attributes,created_at}'),
    ('order_line', 'INSERT', '{order_id,line_no,customer_id,product_id,quantity,unit_price}'),
    ('ticket_event', 'INSERT', '{ticket_id,customer_id,occurred_at,kind,author,body,details}'),
    ('consent_event', 'INSERT', '{customer_id,purpose,granted,recorded_at,source,evidence}'),
    ('lifecycle_change', 'INSERT', '{customer_id,from_stage,to_stage,changed_at,reason,changed_by}'),
    ('campaign_event', 'INSERT', '{campaign_id,customer_id,kind,occurred_at,revenue,order_id,payload}'),
    ('lead_score', 'INSERT', '{customer_id,model_id,score,fit_score,engagement_score,computed_at}'),
    ('lead_score', 'UPDATE', '{score,fit_score,engagement_score,computed_at}'),
    -- the outbox is the automation's queue: workers (agents) claim and settle messages
    ('outbox', 'INSERT', '{message_id,customer_id,topic,channel,purpose,recipient,subject,body,payload,dedupe_key,rule_id,run_id,status,attempts,max_attempts,available_at,claimed_by,claimed_at,lease_until,done_at,last_error,created_at}'),
    ('outbox', 'UPDATE', '{status,attempts,available_at,claimed_by,claimed_at,lease_until,done_at,last_error}');

-- every writable column of every relation of the extension's schemas, from the catalog
CREATE TEMP VIEW agent_writes AS
SELECT c.oid::regclass AS rel, c.relname, a.attname, a.atttypid, a.attidentity, a.attgenerated, p.priv,
       has_column_privilege('ecrm_agent', c.oid, a.attnum, p.priv) AS granted,
       EXISTS (SELECT FROM allowed w WHERE w.relname = c.relname AND w.priv = p.priv AND a.attname = ANY (w.cols)) AS allowed
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname IN ('ecrm', 'ecrm_masked')
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
 CROSS JOIN (VALUES ('INSERT'), ('UPDATE')) p(priv)
 WHERE c.relkind IN ('r', 'p', 'v', 'f', 'm');

SELECT is((SELECT string_agg(format('%s.%s %s', relname, attname, priv), ', ' ORDER BY relname, priv, attname)
             FROM agent_writes WHERE granted AND NOT allowed), NULL,
          'every column an agent can write is in the allow-list');
SELECT is((SELECT string_agg(format('%s %s', w.relname, w.priv), ', ')
             FROM allowed w WHERE EXISTS (SELECT FROM unnest(w.cols) col
                                           WHERE NOT EXISTS (SELECT FROM agent_writes x WHERE x.relname = w.relname
                                                               AND x.priv = w.priv AND x.attname = col AND x.granted))),
          NULL, 'the allow-list names only columns the agent can write (it is exact)');
SELECT is((SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname IN ('ecrm', 'ecrm_masked')
            WHERE c.relkind IN ('r', 'p') AND has_table_privilege('ecrm_agent', c.oid, 'DELETE, TRUNCATE')), 0::bigint,
          'agents delete and truncate nothing');
SELECT is((SELECT string_agg(p.oid::regprocedure::text, ', ') FROM pg_proc p
            WHERE p.pronamespace = 'ecrm'::regnamespace AND p.prosecdef
              AND NOT EXISTS (SELECT FROM unnest(p.proconfig) c WHERE c LIKE 'search_path=%')), NULL,
          'every SECURITY DEFINER function sets its search_path');

-- Try every write of a relation the agent writes at all: allowed ones pass the privilege check, the others
-- fail with 42501 (WHERE false: no row is touched, the privilege is checked all the same).
CREATE FUNCTION pg_temp.try_writes() RETURNS TABLE (what text, allowed boolean, state text)
    LANGUAGE plpgsql AS
$$
DECLARE
    w record;
BEGIN
    FOR w IN SELECT x.* FROM agent_writes x
              WHERE EXISTS (SELECT FROM agent_writes y WHERE y.rel = x.rel AND y.granted)
                AND x.attidentity <> 'a' AND x.attgenerated = ''
              ORDER BY x.relname, x.priv, x.attname LOOP
        what := format('%s.%s %s', w.relname, w.attname, w.priv);
        allowed := w.allowed;
        BEGIN
            IF w.priv = 'UPDATE' THEN
                EXECUTE format('UPDATE %s SET %I = %I WHERE false', w.rel, w.attname, w.attname);
            ELSE
                EXECUTE format('INSERT INTO %s (%I) SELECT NULL::%s WHERE false', w.rel, w.attname, w.atttypid::regtype);
            END IF;
            state := 'ok';
        EXCEPTION WHEN OTHERS THEN
            state := SQLSTATE;
        END;
        RETURN NEXT;
    END LOOP;
END
$$;
GRANT SELECT ON agent_writes, allowed TO ecrm_agent;
SET LOCAL ROLE ecrm_agent;
CREATE TEMP TABLE tried AS SELECT * FROM pg_temp.try_writes();
RESET ROLE;
SELECT cmp_ok((SELECT count(*) FROM tried WHERE NOT allowed), '>=', 40::bigint, 'the forbidden writes tried are many');
SELECT is((SELECT string_agg(what || ': ' || state, ', ') FROM tried WHERE NOT allowed AND state <> '42501'), NULL,
          'every forbidden write fails with 42501');
SELECT is((SELECT string_agg(what || ': ' || state, ', ') FROM tried WHERE allowed AND state <> 'ok'), NULL,
          'every allowed write passes the privilege check');

-- The writes of finding 6, as an agent
SELECT ecrm.upsert_customer('{"first_name": "Ann", "last_name": "Lee", "email": "ann.lee@example.org", "phone": "+441632960001"}') AS ann \gset
SELECT ecrm.upsert_customer('{"first_name": "Bob", "last_name": "Ray", "email": "bob.ray@example.org", "phone": "+441632960002"}') AS bob \gset
SELECT ecrm.upsert_customer('{"first_name": "Cat", "last_name": "Poe", "email": "cat.poe@example.org"}') AS cat \gset
SELECT ecrm.upsert_customer('{"first_name": "Dan", "last_name": "Orr", "email": "dan.orr@example.org"}') AS dan \gset
SELECT ecrm.upsert_customer('{"first_name": "Eve", "last_name": "Fox", "email": "eve.fox@example.org"}') AS eve \gset
SELECT ecrm.erase_customer(:eve, 'test') IS NOT NULL AS erased \gset
SET LOCAL ROLE ecrm_agent;
SELECT throws_ok(format($$UPDATE ecrm.customer_profile SET status = 'active', email = 'x@y.z' WHERE customer_id = %s$$, :eve),
                 '42501', NULL, 'agent cannot revive an erased profile');
SELECT throws_ok(format($$UPDATE ecrm.customer_profile SET email = 'x@y.z' WHERE customer_id = %s$$, :eve),
                 '22023', format('customer %s has been erased', :eve), 'agent cannot write into an erased profile');
SELECT throws_ok(format($$UPDATE ecrm.identity SET customer_id = %s WHERE value = 'ann.lee@example.org'$$, :eve),
                 '42501', NULL, 'agent cannot move an identity to another customer');
SELECT throws_ok(format($$UPDATE ecrm.customer_profile SET status = 'merged', merged_into = %s WHERE customer_id = %s$$, :ann, :dan),
                 '42501', NULL, 'agent cannot merge by UPDATE (no merge history)');
SELECT throws_ok($$INSERT INTO ecrm.customer_profile (status, merged_into, first_name) VALUES ('merged', 1, 'x')$$,
                 '42501', NULL, 'agent cannot insert a tombstone');
SELECT lives_ok(format($$UPDATE ecrm.customer_profile SET city = 'Leeds' WHERE customer_id = %s$$, :ann),
                'agent edits a profile field');
RESET ROLE;
SELECT throws_ok(format($$UPDATE ecrm.customer_profile SET city = 'Leeds' WHERE customer_id = %s$$, :eve),
                 '22023', NULL, 'the owner cannot write into an erased profile either');

-- Finding 4: merge, a write for the merged profile through its identity, unmerge; as an agent
SET LOCAL ROLE ecrm_agent;
SELECT ecrm.merge_customers(ARRAY[:ann, :bob]::bigint[]) AS m1 \gset
SELECT is(ecrm.upsert_customer('{"email": "Bob.Ray@Example.ORG", "first_name": "Robert", "phone": "+44 1632 960099"}'),
          :ann::bigint, 'the write for the merged profile lands on the golden record');
SELECT is((SELECT first_name || ' ' || email FROM ecrm.customer_profile WHERE customer_id = :ann),
          'Robert Bob.Ray@Example.ORG', 'the golden record shows it while merged');
SELECT is(ecrm.unmerge(:m1), ARRAY[:bob]::bigint[], 'unmerge restores the merged profile');
SELECT is((SELECT concat_ws(' ', first_name, last_name, email, phone) FROM ecrm.customer_profile WHERE customer_id = :ann),
          'Ann Lee ann.lee@example.org +441632960001', 'the survivor gets back only its own contact fields');
SELECT is((SELECT concat_ws(' ', first_name, last_name, email, phone) FROM ecrm.customer_profile WHERE customer_id = :bob),
          'Robert Ray Bob.Ray@Example.ORG +441632960099', 'the merged profile gets what was written on its behalf');
SELECT is(ARRAY(SELECT value FROM ecrm.identity WHERE customer_id = :bob ORDER BY value),
          ARRAY['+441632960002', '+441632960099', 'bob.ray@example.org'], 'its identities, the new phone too');
SELECT is(ARRAY(SELECT value FROM ecrm.identity WHERE customer_id = :ann ORDER BY value),
          ARRAY['+441632960001', 'ann.lee@example.org'], 'the survivor keeps only its own identities');
SELECT is((SELECT count(*) FROM ecrm.identity WHERE member_id IS NOT NULL), 0::bigint, 'no provenance left once apart');

-- a merged id follows its merge chain, as everywhere in the API
SELECT ecrm.merge_customers(ARRAY[:cat, :dan]::bigint[]) AS m2 \gset
SELECT isnt(ecrm.merge_customers(ARRAY[:dan, :ann]::bigint[]), NULL::bigint, 'a merged id stands for its survivor');
SELECT is(ecrm.resolve_customer(:dan), ecrm.resolve_customer(:ann), 'so the three are one customer');
SELECT is(ecrm.merge_customers(ARRAY[:dan, :cat]::bigint[]), NULL::bigint, 'merging what is one customer already merges nothing');
RESET ROLE;

-- 9a: an identity found on the customer a moment ago and now elsewhere was moved concurrently: retryable
SELECT throws_ok(format($$SELECT ecrm._attach_identity(%s, 'email', '', 'bob.ray@example.org', NULL, NULL, NULL, true)$$, :ann),
                 '40001', NULL, 'an identity moved by a concurrent merge or unmerge is a serialization failure');
SELECT throws_ok(format($$SELECT ecrm._attach_identity(%s, 'email', '', 'bob.ray@example.org', NULL, NULL)$$, :ann),
                 '23505', NULL, 'an identity of another customer in the input is a conflict');

SELECT * FROM finish();
ROLLBACK;
