
------------------------------------------------------------------------------
-- Privileges of the foundation; each capability's part grants its own objects.
------------------------------------------------------------------------------
-- Agents: read the CRM, write customers, identities, interactions, orders, tickets and consents.
GRANT SELECT ON ecrm.customer_profile, ecrm.identity, ecrm.interaction, ecrm.product, ecrm.campaign,
                ecrm.orders, ecrm.order_line, ecrm.campaign_event, ecrm.ticket, ecrm.ticket_event,
                ecrm.kb_article, ecrm.consent_purpose, ecrm.consent_event, ecrm.lifecycle_change,
                ecrm.sla_policy
   TO ecrm_agent;
-- Column by column: what the system sets (ids, status and merged_into, which only the merge and erasure
-- functions change; the customer an identity or a ticket belongs to; timestamps the system keeps) is not
-- theirs to write, so a write that bypasses the API cannot break the record (test/pgtap/agent_privileges.sql).
GRANT INSERT (first_name, last_name, email, phone, birth_date, company, job_title, street, city, postal_code, region,
              country, language, lifecycle_stage, owner, source, attributes, created_at),
      UPDATE (first_name, last_name, email, phone, birth_date, company, job_title, street, city, postal_code, region,
              country, language, lifecycle_stage, owner, source, attributes)
   ON ecrm.customer_profile TO ecrm_agent;
GRANT INSERT (customer_id, kind, namespace, value, raw_value, source, verified, member_id),
      UPDATE (raw_value, source, verified, last_seen_at)
   ON ecrm.identity TO ecrm_agent;
GRANT INSERT (customer_id, channel, category, subject, body, priority, status, team, assignee, language, opened_at,
              first_response_at, resolved_at, first_response_due_at, sla_due_at),
      UPDATE (channel, category, subject, body, priority, status, team, assignee, language, first_response_at,
              resolved_at, first_response_due_at, sla_due_at)
   ON ecrm.ticket TO ecrm_agent;
-- The append-only tables: every column but the generated id (an explicit id would take the sequence's next values).
DO $ins$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['ecrm.interaction', 'ecrm.orders', 'ecrm.order_line', 'ecrm.ticket_event', 'ecrm.consent_event',
                             'ecrm.lifecycle_change', 'ecrm.campaign_event'] LOOP
        EXECUTE pg_catalog.format('GRANT INSERT (%s) ON %s TO ecrm_agent',
                                  (SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY a.attnum)
                                     FROM pg_catalog.pg_attribute a
                                    WHERE a.attrelid = t::regclass AND a.attnum > 0 AND NOT a.attisdropped AND a.attidentity = ''
                                      AND a.attgenerated = ''),
                                  t);
    END LOOP;
END
$ins$;
GRANT SELECT ON ecrm.customers, ecrm.customer_360, ecrm.customer_timeline, ecrm.leads, ecrm.ticket_queue,
                ecrm.consents, ecrm.campaign_performance, ecrm.kpi_daily
   TO ecrm_agent;
GRANT EXECUTE ON FUNCTION
    ecrm.normalize_email(text), ecrm.normalize_phone(text), ecrm.normalize_phone(text, text),
    ecrm.phone_country_code(text), ecrm.country_calling_code(text), ecrm.resolve_customer(bigint),
    ecrm.find_customer(text, text, text), ecrm.add_identity(bigint, text, text, text, text),
    ecrm.upsert_customer(jsonb), ecrm.record_interaction(bigint, text, text, timestamptz, jsonb, bigint, bigint),
    ecrm.record_order(bigint, jsonb, timestamptz, text, text, text, text, bigint, jsonb),
    ecrm.record_consent(bigint, text, boolean, timestamptz, text, jsonb), ecrm.has_consent(bigint, text),
    ecrm.open_ticket(bigint, text, text, text, text, text, text, timestamptz),
    ecrm.update_ticket(bigint, text, text, text, text, text, text, boolean, timestamptz),
    ecrm.resolve_ticket(bigint, text, text, timestamptz), ecrm.kb_search(text, integer, regconfig),
    ecrm.sla_target(ecrm.ticket_priority),
    -- internal helpers the API calls as the invoking role
    ecrm._live_customer(bigint, text), ecrm._enum_label(text, regtype, text), ecrm._json_text(jsonb, text, integer),
    ecrm._check_object(jsonb, text, integer), ecrm._check_time(timestamptz, text), ecrm._country(text, text),
    ecrm._identity_value(ecrm.identity_kind, text, text),
    ecrm._attach_identity(bigint, ecrm.identity_kind, text, text, text, text, bigint, boolean),
    ecrm._product_exists(bigint, text), ecrm._campaign_exists(bigint), ecrm._check_kind(text),
    ecrm._touch_updated_at(), ecrm._record_lifecycle_change(), ecrm._restoring(), ecrm._may_restore()
   TO ecrm_agent;

-- Analysts: aggregate views without personal data, and the pure kernel functions.
GRANT SELECT ON ecrm.campaign_performance, ecrm.kpi_daily TO ecrm_analyst;
GRANT EXECUTE ON FUNCTION
    ecrm.normalize_email(text), ecrm.normalize_phone(text), ecrm.normalize_phone(text, text),
    ecrm.phone_country_code(text), ecrm.country_calling_code(text)
   TO ecrm_analyst;

-- pg_dump keeps the user data of these tables (and the state of their id sequences).
-- One call per statement: each call rewrites the extension's catalog row.
DO $dump$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['ecrm.customer_profile', 'ecrm.identity', 'ecrm.product', 'ecrm.campaign',
                             'ecrm.interaction', 'ecrm.orders', 'ecrm.order_line', 'ecrm.campaign_event',
                             'ecrm.sla_policy', 'ecrm.ticket', 'ecrm.ticket_event', 'ecrm.kb_article',
                             'ecrm.consent_event', 'ecrm.lifecycle_change', 'ecrm.stage_reject', 'ecrm.stage_customer',
                             'ecrm.stage_order_line', 'ecrm.stage_interaction'] LOOP
        PERFORM pg_catalog.pg_extension_config_dump(t::regclass, '');
        -- and the identity sequence of the table, if it has one
        PERFORM pg_catalog.pg_extension_config_dump(s.seq, '')
           FROM (SELECT pg_catalog.pg_get_serial_sequence(t, a.attname)::regclass AS seq
                   FROM pg_catalog.pg_attribute a
                  WHERE a.attrelid = t::regclass AND a.attidentity <> '' LIMIT 1) s;
    END LOOP;
END
$dump$;
SELECT pg_catalog.pg_extension_config_dump('ecrm.consent_purpose',
    'WHERE purpose NOT IN (''marketing_email'', ''sms'', ''profiling'', ''third_party_sharing'')');
SELECT pg_catalog.pg_extension_config_dump('ecrm.customer_table', 'WHERE NOT builtin');
