
------------------------------------------------------------------------------
-- Masked twins (schema ecrm_masked) of every view of schema ecrm, generated now that every
-- capability's views exist; policies and rules that name views of the data model.
------------------------------------------------------------------------------
INSERT INTO ecrm.mask_policy (relid, column_name, strategy, options, note, builtin, installed)
SELECT v.rel::regclass, v.col, v.strategy, v.options::jsonb, v.note, true, true
  FROM (VALUES
    ('ecrm.customers', 'full_name', 'name', '{"keep": "initials"}', NULL),
    ('ecrm.customer_360', 'full_name', 'name', '{"keep": "initials"}', NULL),
    ('ecrm.customer_360', 'identities', 'identities', '{}', 'emails and phones masked, other identifiers hidden'),
    ('ecrm.leads', 'full_name', 'name', '{"keep": "initials"}', NULL),
    ('ecrm.customer_timeline', 'details', 'jsonb_keep',
     '{"keys": ["product_id", "currency", "campaign", "purpose", "from", "to"], "values": {"currency": "pattern:^[A-Z]{3}$", "campaign": "column:ecrm.campaign.name", "purpose": "column:ecrm.consent_purpose.purpose", "from": "enum:ecrm.lifecycle_stage", "to": "enum:ecrm.lifecycle_stage"}}',
     'free text (ticket bodies, payloads, reasons, order references) stays hidden; a kept key shows its value only when it is in the key''s vocabulary (an email under "from" is not a lifecycle stage)'),
    -- text columns of the capabilities' customer tables that hold a fixed vocabulary (see ecrm._is_personal)
    ('ecrm.merge_event', 'source', 'raw', '{}', 'CHECK: a fixed list'),
    ('ecrm.merge_event', 'merged_by', 'vocabulary', '{"values": "column:pg_catalog.pg_roles.rolname"}', 'a database role'),
    ('ecrm.merge_event', 'unmerged_by', 'vocabulary', '{"values": "column:pg_catalog.pg_roles.rolname"}', 'a database role'),
    ('ecrm.merge_image', 'action', 'raw', '{}', 'CHECK: a fixed list'),
    ('ecrm.segment_event', 'kind', 'raw', '{}', 'CHECK: entered or exited'),
    ('ecrm.outbox', 'topic', 'raw', '{}', 'CHECK: a lower case token chosen by automation rules'),
    ('ecrm.outbox', 'status', 'raw', '{}', 'CHECK: a fixed list'),
    ('ecrm.outbox', 'purpose', 'raw', '{}', 'a consent purpose (foreign key to ecrm.consent_purpose)'),
    ('ecrm.outbox', 'dedupe_key', 'pseudonym', '{}', 'unique and NOT NULL: a pseudonym keeps both (static masking in place)'),
    ('ecrm.automation_run', 'dedupe_key', 'pseudonym', '{}', 'unique per rule and NOT NULL: a pseudonym keeps both'),
    ('ecrm.automation_run', 'status', 'raw', '{}', 'CHECK: a fixed list'),
    ('ecrm.match_candidate', 'found_by', 'raw', '{}', 'CHECK: a fixed list'),
    ('ecrm.match_candidate', 'status', 'raw', '{}', 'CHECK: a fixed list'),
    ('ecrm.segment_event', 'source', 'vocabulary', '{"values": "pattern:^[a-z][a-z0-9_.-]*$"}', 'what moved the customer: refresh, a table name, merge, ...'),
    ('ecrm.erasure_log', 'erased_by', 'vocabulary', '{"values": "column:pg_catalog.pg_roles.rolname"}', 'a database role')) v(rel, col, strategy, options, note)
 WHERE to_regclass(v.rel) IS NOT NULL
   AND EXISTS (SELECT FROM pg_catalog.pg_attribute a WHERE a.attrelid = to_regclass(v.rel) AND a.attname = v.col AND NOT a.attisdropped);

INSERT INTO ecrm.masked_view_rule (view_name, twin, consent_purpose, consent_action, note, builtin)
SELECT v.rel::regclass, v.twin, v.purpose, v.action, v.note, true
  FROM (VALUES
    ('ecrm.customers', true, 'profiling', 'mask', 'customers who withdrew profiling stay counted, with nothing about them shown'),
    ('ecrm.consents', true, NULL, 'none', 'consent records are needed to report on consent'),
    ('ecrm.ticket_queue', true, NULL, 'none', 'support operations, not profiling'),
    ('ecrm.consent_violations', false, NULL, 'none', 'an audit for admins and agents'),
    ('ecrm.masked_columns', false, NULL, 'none', 'metadata of the masking itself'),
    ('ecrm.masked_roles', false, NULL, 'none', 'metadata of the masking itself'),
    ('ecrm.merge_review_queue', false, NULL, 'none', 'for data stewards deciding merges: side-by-side personal data'),
    ('ecrm.survivorship', false, NULL, 'none', 'configuration of merges, for admins'),
    ('ecrm.customer_clv', false, NULL, 'none', 'per-customer predictions computed from the raw tables with the reader''s rights; analysts read the aggregate analytics views'),
    ('ecrm.churn_risk', false, NULL, 'none', 'per-customer predictions computed from the raw tables with the reader''s rights; analysts read the aggregate analytics views'),
    ('ecrm.lead_features', false, NULL, 'none', 'computed by ecrm.crm_features() from the raw tables with the reader''s rights: for admins training models')) v(rel, twin, purpose, action, note)
 WHERE to_regclass(v.rel) IS NOT NULL AND (SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid = to_regclass(v.rel)) IN ('v', 'm');

SELECT ecrm.refresh_masked_views();
