
------------------------------------------------------------------------------
-- Roles (cluster-wide, so created only when missing and kept by DROP EXTENSION)
--   ecrm_admin    everything
--   ecrm_agent    customer service and sales: reads and writes customers, tickets, interactions
--   ecrm_analyst  reads views; never raw personal data
-- Privileges go to these roles, never to PUBLIC (see 99_final.sql).
------------------------------------------------------------------------------
DO $roles$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['ecrm_admin', 'ecrm_agent', 'ecrm_analyst'] LOOP
        IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = r) THEN
            EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN', r);
        END IF;
    END LOOP;
END
$roles$;
GRANT USAGE ON SCHEMA ecrm TO ecrm_admin, ecrm_agent, ecrm_analyst;
-- The argument check that API functions call as the invoking role (00_header.sql): pure, reveals nothing.
GRANT EXECUTE ON FUNCTION ecrm._finite(double precision, text), ecrm._finite(numeric, text)
   TO ecrm_agent, ecrm_analyst;
