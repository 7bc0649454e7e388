
------------------------------------------------------------------------------
-- Last: the admin role gets everything, PUBLIC gets nothing.
------------------------------------------------------------------------------
GRANT ALL ON ALL TABLES IN SCHEMA ecrm TO ecrm_admin;
GRANT ALL ON ALL SEQUENCES IN SCHEMA ecrm TO ecrm_admin;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA ecrm TO ecrm_admin;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA ecrm FROM PUBLIC;
