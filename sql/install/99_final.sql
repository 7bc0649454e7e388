
------------------------------------------------------------------------------
-- Last: comments for common view columns, then privileges.
------------------------------------------------------------------------------
-- Columns that mean the same in every view get their comment here, once, for every view of every
-- capability; a view's own COMMENT ON COLUMN (written earlier) wins.
DO $comments$
DECLARE
    r record;
BEGIN
    FOR r IN
        SELECT c.oid::regclass AS view, a.attname, d.comment
          FROM pg_catalog.pg_class c
          JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
          JOIN (VALUES
                ('customer_id', 'Customer id'),
                ('first_name', 'First name'),
                ('last_name', 'Last name'),
                ('full_name', 'First and last name'),
                ('email', 'Primary email address'),
                ('phone', 'Primary phone number, E.164'),
                ('birth_date', 'Date of birth'),
                ('company', 'Company the customer works for'),
                ('job_title', 'Job title'),
                ('street', 'Street address'),
                ('city', 'City'),
                ('postal_code', 'Postal code'),
                ('region', 'Region or state'),
                ('country', 'ISO 3166-1 alpha-2 country code'),
                ('language', 'Preferred language (BCP 47 tag)'),
                ('lifecycle_stage', 'subscriber, lead, marketing_qualified, sales_qualified, opportunity, customer or evangelist'),
                ('owner', 'Sales or account owner'),
                ('source', 'Where the customer came from'),
                ('attributes', 'Further attributes (JSON object)'),
                ('created_at', 'When the row was created'),
                ('updated_at', 'When the row last changed'),
                ('name', 'Name'),
                ('channel', 'Channel: web, email, social, chat, phone, survey, store, sales or support'),
                ('purpose', 'Consent purpose (marketing_email, sms, profiling, third_party_sharing, ...)'),
                ('status', 'Status'),
                ('starts_at', 'Start time'),
                ('ends_at', 'End time'),
                ('budget', 'Budget'),
                ('campaign_id', 'Campaign id'),
                ('product_id', 'Product id'),
                ('order_id', 'Order id'),
                ('ticket_id', 'Ticket id'),
                ('segment_id', 'Segment id'),
                ('model_id', 'Model id'),
                ('subject', 'Ticket subject'),
                ('category', 'Category'),
                ('priority', 'Ticket priority: low, normal, high or urgent'),
                ('team', 'Team the ticket is assigned to'),
                ('assignee', 'Agent the ticket is assigned to'),
                ('opened_at', 'When the ticket was opened'),
                ('first_response_at', 'When the customer first got a reply'),
                ('first_response_due_at', 'When the first reply is due'),
                ('sla_due_at', 'When the ticket must be resolved by'),
                ('occurred_at', 'When it happened'),
                ('sku', 'Stock-keeping unit'),
                ('price', 'Price'),
                ('score', 'Score'),
                ('kind', 'Kind of event'),
                ('delivered', 'Recipients it was delivered to'),
                ('unsubscribed', 'Recipients who unsubscribed'),
                ('bounced', 'Recipients whose message bounced'),
                ('delivery_rate', 'delivered / sent'),
                ('revenue', 'Revenue'),
                ('day', 'Calendar day (UTC)'),
                ('granted', 'true: consent given; false: refused or withdrawn'),
                ('recorded_at', 'When it was recorded')) d(col, comment) ON d.col = a.attname
         WHERE c.relnamespace = 'ecrm'::regnamespace AND c.relkind IN ('v', 'm')
           AND pg_catalog.col_description(c.oid, a.attnum) IS NULL
    LOOP
        EXECUTE pg_catalog.format('COMMENT ON COLUMN %s.%I IS %L', r.view, r.attname, r.comment);
    END LOOP;
END
$comments$;

-- The admin role gets everything, PUBLIC gets nothing.
GRANT ALL ON ALL TABLES IN SCHEMA ecrm TO ecrm_admin;
GRANT ALL ON ALL SEQUENCES IN SCHEMA ecrm TO ecrm_admin;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA ecrm TO ecrm_admin;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA ecrm FROM PUBLIC;
