
------------------------------------------------------------------------------
-- The data model users see.  Grouped subqueries joined on customer_id let
-- the planner push "WHERE customer_id = $1" into every branch (index scans
-- for one customer) and use hash aggregates when a BI tool reads them all.
------------------------------------------------------------------------------
CREATE VIEW ecrm.customers AS
SELECT c.customer_id, c.first_name, c.last_name,
       nullif(concat_ws(' ', c.first_name, c.last_name), '') AS full_name,
       c.email, c.phone, c.birth_date, c.company, c.job_title, c.street, c.city, c.postal_code, c.region,
       c.country, c.language, c.lifecycle_stage, c.owner, c.source, c.attributes, c.created_at, c.updated_at
  FROM ecrm.customer_profile c
 WHERE c.status = 'active';
COMMENT ON VIEW ecrm.customers IS 'Golden customer records: one row per real customer (merged and erased profiles left out)';
COMMENT ON COLUMN ecrm.customers.customer_id IS 'Customer id (stable; ids of profiles merged into it resolve to it through ecrm.resolve_customer)';
COMMENT ON COLUMN ecrm.customers.full_name IS 'First and last name';
COMMENT ON COLUMN ecrm.customers.email IS 'Primary email address';
COMMENT ON COLUMN ecrm.customers.phone IS 'Primary phone number, E.164';
COMMENT ON COLUMN ecrm.customers.country IS 'ISO 3166-1 alpha-2 country code';
COMMENT ON COLUMN ecrm.customers.lifecycle_stage IS 'subscriber, lead, marketing_qualified, sales_qualified, opportunity, customer or evangelist';
COMMENT ON COLUMN ecrm.customers.owner IS 'Sales or account owner';
COMMENT ON COLUMN ecrm.customers.attributes IS 'Further attributes (JSON object)';
COMMENT ON COLUMN ecrm.customers.created_at IS 'When the customer was first seen';

-- The segments a customer is in, for customer_360 (one row: the names as text[]). 55_segments.sql replaces
-- this placeholder once the segment tables exist.
CREATE FUNCTION ecrm._segment_names_of(customer_id bigint) RETURNS SETOF text[]
    LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT '{}'::text[];
END;

CREATE VIEW ecrm.customer_360 AS
SELECT c.customer_id,
       nullif(concat_ws(' ', c.first_name, c.last_name), '') AS full_name,
       c.email, c.phone, c.company, c.city, c.country, c.language, c.lifecycle_stage, c.owner, c.created_at,
       coalesce(i.identities, '[]') AS identities,
       coalesce(o.order_count, 0) AS order_count,
       coalesce(o.revenue, 0) AS revenue,
       o.first_order_at, o.last_order_at,
       o.avg_order_value,
       t.last_touch_at,
       t.last_touch_channel,
       coalesce(t.interactions_30d, 0) AS interactions_30d,
       coalesce(k.open_tickets, 0) AS open_tickets,
       coalesce(s.consents, '{}') AS consents,
       coalesce(g.segments, '{}') AS segments
  FROM ecrm.customer_profile c
  LEFT JOIN (SELECT i.customer_id,
                    jsonb_agg(jsonb_build_object('kind', i.kind, 'namespace', i.namespace, 'value', i.value)
                              ORDER BY i.kind, i.namespace, i.value) AS identities
               FROM ecrm.identity i GROUP BY i.customer_id) i ON i.customer_id = c.customer_id
  LEFT JOIN (SELECT o.customer_id,
                    count(*) FILTER (WHERE o.status NOT IN ('cancelled', 'returned')) AS order_count,
                    sum(o.total) FILTER (WHERE o.status <> 'cancelled') AS revenue,
                    min(o.ordered_at) FILTER (WHERE o.status NOT IN ('cancelled', 'returned')) AS first_order_at,
                    max(o.ordered_at) FILTER (WHERE o.status NOT IN ('cancelled', 'returned')) AS last_order_at,
                    round(avg(o.total) FILTER (WHERE o.status NOT IN ('cancelled', 'returned')), 2) AS avg_order_value
               FROM ecrm.orders o GROUP BY o.customer_id) o ON o.customer_id = c.customer_id
  LEFT JOIN (SELECT x.customer_id, max(x.occurred_at) AS last_touch_at,
                    (array_agg(x.channel ORDER BY x.occurred_at DESC))[1] AS last_touch_channel,
                    count(*) FILTER (WHERE x.occurred_at > now() - interval '30 days' AND x.is_interaction) AS interactions_30d
               FROM (SELECT n.customer_id, n.occurred_at, n.channel, true AS is_interaction FROM ecrm.interaction n
                     UNION ALL
                     SELECT o.customer_id, o.ordered_at, o.channel, false FROM ecrm.orders o
                     UNION ALL
                     SELECT t.customer_id, t.opened_at, t.channel, false FROM ecrm.ticket t) x
              GROUP BY x.customer_id) t ON t.customer_id = c.customer_id
  LEFT JOIN (SELECT t.customer_id, count(*) AS open_tickets
               FROM ecrm.ticket t WHERE t.status IN ('open', 'pending') GROUP BY t.customer_id) k ON k.customer_id = c.customer_id
  LEFT JOIN (SELECT l.customer_id, jsonb_object_agg(l.purpose, l.granted) AS consents
               FROM (SELECT DISTINCT ON (e.customer_id, e.purpose) e.customer_id, e.purpose, e.granted
                       FROM ecrm.consent_event e
                      ORDER BY e.customer_id, e.purpose, e.recorded_at DESC, e.consent_event_id DESC) l
              GROUP BY l.customer_id) s ON s.customer_id = c.customer_id
  LEFT JOIN LATERAL ecrm._segment_names_of(c.customer_id) g(segments) ON true
 WHERE c.status = 'active';
COMMENT ON VIEW ecrm.customer_360 IS 'One row per customer: profile, identities, order statistics, last touch, open tickets and consents';
COMMENT ON COLUMN ecrm.customer_360.identities IS 'Every identity of the customer as a JSON array of {kind, namespace, value}';
COMMENT ON COLUMN ecrm.customer_360.order_count IS 'Orders placed (cancelled and returned ones left out)';
COMMENT ON COLUMN ecrm.customer_360.revenue IS 'Net revenue: placed orders minus returns';
COMMENT ON COLUMN ecrm.customer_360.first_order_at IS 'Time of the first placed order';
COMMENT ON COLUMN ecrm.customer_360.last_order_at IS 'Time of the latest placed order';
COMMENT ON COLUMN ecrm.customer_360.avg_order_value IS 'Average total of placed orders';
COMMENT ON COLUMN ecrm.customer_360.last_touch_at IS 'Latest interaction, order or ticket on any channel';
COMMENT ON COLUMN ecrm.customer_360.last_touch_channel IS 'Channel of that latest touch';
COMMENT ON COLUMN ecrm.customer_360.interactions_30d IS 'Interactions in the last 30 days';
COMMENT ON COLUMN ecrm.customer_360.open_tickets IS 'Open or pending support tickets';
COMMENT ON COLUMN ecrm.customer_360.consents IS 'Consent in force per purpose as a JSON object {purpose: true|false}; a purpose never asked is absent';
COMMENT ON COLUMN ecrm.customer_360.segments IS 'Names of the segments the customer is in now, ascending (see ecrm.segments)';

CREATE VIEW ecrm.customer_timeline AS
SELECT x.customer_id, x.occurred_at, x.source, x.channel, x.kind, x.ref_id, x.campaign_id, x.amount, x.details
  FROM (SELECT n.customer_id, n.occurred_at, 'interaction'::text AS source, n.channel::text AS channel, n.kind,
               n.interaction_id AS ref_id, n.campaign_id, NULL::numeric AS amount,
               n.payload || jsonb_strip_nulls(jsonb_build_object('product_id', n.product_id)) AS details
          FROM ecrm.interaction n
        UNION ALL
        SELECT o.customer_id, o.ordered_at, 'order', o.channel::text, 'order_' || o.status, o.order_id, o.campaign_id,
               o.total, jsonb_build_object('external_ref', o.external_ref, 'currency', o.currency)
          FROM ecrm.orders o
        UNION ALL
        SELECT e.customer_id, e.occurred_at, 'ticket', t.channel::text, 'ticket_' || e.kind, e.ticket_id, NULL, NULL,
               jsonb_strip_nulls(jsonb_build_object('subject', t.subject, 'author', e.author, 'body', e.body)) || e.details
          FROM ecrm.ticket_event e JOIN ecrm.ticket t ON t.ticket_id = e.ticket_id
        UNION ALL
        SELECT e.customer_id, e.occurred_at, 'campaign', c.channel::text, 'campaign_' || e.kind, e.event_id, e.campaign_id,
               nullif(e.revenue, 0), jsonb_build_object('campaign', c.name) || e.payload
          FROM ecrm.campaign_event e JOIN ecrm.campaign c ON c.campaign_id = e.campaign_id
        UNION ALL
        SELECT e.customer_id, e.recorded_at, 'consent', NULL, CASE WHEN e.granted THEN 'consent_granted' ELSE 'consent_withdrawn' END,
               e.consent_event_id, NULL, NULL, jsonb_strip_nulls(jsonb_build_object('purpose', e.purpose, 'source', e.source))
          FROM ecrm.consent_event e
        UNION ALL
        SELECT l.customer_id, l.changed_at, 'lifecycle', NULL, 'stage_' || l.to_stage, l.change_id, NULL, NULL,
               jsonb_strip_nulls(jsonb_build_object('from', l.from_stage, 'to', l.to_stage, 'reason', l.reason))
          FROM ecrm.lifecycle_change l) x
 ORDER BY x.customer_id, x.occurred_at, x.source, x.ref_id;
COMMENT ON VIEW ecrm.customer_timeline IS 'Every touch of a customer in time order: interactions, orders, ticket events, campaign events, consent changes and lifecycle moves';
COMMENT ON COLUMN ecrm.customer_timeline.source IS 'interaction, order, ticket, campaign, consent or lifecycle';
COMMENT ON COLUMN ecrm.customer_timeline.kind IS 'What happened (page_view, order_placed, ticket_opened, campaign_opened, consent_withdrawn, stage_customer, ...)';
COMMENT ON COLUMN ecrm.customer_timeline.ref_id IS 'Id of the row in its source table (interaction, order, ticket, campaign event, consent event, lifecycle change)';
COMMENT ON COLUMN ecrm.customer_timeline.amount IS 'Order total or attributed campaign revenue';
COMMENT ON COLUMN ecrm.customer_timeline.details IS 'Details of the event (JSON)';

-- 50_scoring_models.sql replaces this view, appending the lead score columns.
CREATE VIEW ecrm.leads AS
SELECT c.customer_id,
       nullif(concat_ws(' ', c.first_name, c.last_name), '') AS full_name,
       c.email, c.phone, c.company, c.job_title, c.country, c.lifecycle_stage, c.owner, c.source, c.created_at,
       coalesce(st.stage_since, c.created_at) AS stage_since,
       t.last_touch_at,
       coalesce(t.interactions_30d, 0) AS interactions_30d
  FROM ecrm.customer_profile c
  LEFT JOIN (SELECT l.customer_id, max(l.changed_at) AS stage_since
               FROM ecrm.lifecycle_change l GROUP BY l.customer_id) st ON st.customer_id = c.customer_id
  LEFT JOIN (SELECT n.customer_id, max(n.occurred_at) AS last_touch_at,
                    count(*) FILTER (WHERE n.occurred_at > now() - interval '30 days') AS interactions_30d
               FROM ecrm.interaction n GROUP BY n.customer_id) t ON t.customer_id = c.customer_id
 WHERE c.status = 'active'
   AND c.lifecycle_stage IN ('lead', 'marketing_qualified', 'sales_qualified', 'opportunity');
COMMENT ON VIEW ecrm.leads IS 'Prospects between lead and opportunity, with their owner, time in stage and recent engagement';
COMMENT ON COLUMN ecrm.leads.stage_since IS 'When the lead entered its current stage';
COMMENT ON COLUMN ecrm.leads.last_touch_at IS 'Latest interaction';
COMMENT ON COLUMN ecrm.leads.interactions_30d IS 'Interactions in the last 30 days';

CREATE VIEW ecrm.campaign_performance AS
SELECT c.campaign_id, c.name, c.channel, c.purpose, c.status, c.starts_at, c.ends_at, c.budget,
       coalesce(r.sent, 0) AS sent,
       coalesce(r.delivered, 0) AS delivered,
       coalesce(r.opened, 0) AS opened,
       coalesce(r.clicked, 0) AS clicked,
       coalesce(r.converted, 0) AS converted,
       coalesce(r.unsubscribed, 0) AS unsubscribed,
       coalesce(r.bounced, 0) AS bounced,
       round(r.delivered::numeric / nullif(r.sent, 0), 4) AS delivery_rate,
       round(r.opened::numeric / nullif(r.delivered, 0), 4) AS open_rate,
       round(r.clicked::numeric / nullif(r.delivered, 0), 4) AS click_through_rate,
       round(r.clicked::numeric / nullif(r.opened, 0), 4) AS click_to_open_rate,
       round(r.converted::numeric / nullif(r.delivered, 0), 4) AS conversion_rate,
       round(r.unsubscribed::numeric / nullif(r.delivered, 0), 4) AS unsubscribe_rate,
       round(r.bounced::numeric / nullif(r.sent, 0), 4) AS bounce_rate,
       coalesce(r.revenue, 0) AS revenue,
       round(coalesce(r.revenue, 0) / nullif(c.budget, 0), 2) AS revenue_per_budget
  FROM ecrm.campaign c
  LEFT JOIN (SELECT p.campaign_id,
                    count(*) FILTER (WHERE p.sent) AS sent, count(*) FILTER (WHERE p.delivered) AS delivered,
                    count(*) FILTER (WHERE p.opened) AS opened, count(*) FILTER (WHERE p.clicked) AS clicked,
                    count(*) FILTER (WHERE p.converted) AS converted, count(*) FILTER (WHERE p.unsubscribed) AS unsubscribed,
                    count(*) FILTER (WHERE p.bounced) AS bounced, sum(p.revenue) AS revenue
               FROM (SELECT e.campaign_id, e.customer_id,
                            bool_or(e.kind = 'sent') AS sent, bool_or(e.kind = 'delivered') AS delivered,
                            bool_or(e.kind = 'opened') AS opened, bool_or(e.kind = 'clicked') AS clicked,
                            bool_or(e.kind = 'converted') AS converted, bool_or(e.kind = 'unsubscribed') AS unsubscribed,
                            bool_or(e.kind = 'bounced') AS bounced, sum(e.revenue) AS revenue
                       FROM ecrm.campaign_event e GROUP BY e.campaign_id, e.customer_id) p
              GROUP BY p.campaign_id) r ON r.campaign_id = c.campaign_id;
COMMENT ON VIEW ecrm.campaign_performance IS 'Per campaign: recipients at each step (distinct customers), the usual rates and attributed revenue';
COMMENT ON COLUMN ecrm.campaign_performance.sent IS 'Recipients the campaign was sent to';
COMMENT ON COLUMN ecrm.campaign_performance.delivered IS 'Recipients it was delivered to';
COMMENT ON COLUMN ecrm.campaign_performance.opened IS 'Recipients who opened it';
COMMENT ON COLUMN ecrm.campaign_performance.clicked IS 'Recipients who clicked';
COMMENT ON COLUMN ecrm.campaign_performance.converted IS 'Recipients who converted';
COMMENT ON COLUMN ecrm.campaign_performance.open_rate IS 'opened / delivered';
COMMENT ON COLUMN ecrm.campaign_performance.click_through_rate IS 'clicked / delivered';
COMMENT ON COLUMN ecrm.campaign_performance.click_to_open_rate IS 'clicked / opened';
COMMENT ON COLUMN ecrm.campaign_performance.conversion_rate IS 'converted / delivered';
COMMENT ON COLUMN ecrm.campaign_performance.unsubscribe_rate IS 'unsubscribed / delivered';
COMMENT ON COLUMN ecrm.campaign_performance.bounce_rate IS 'bounced / sent';
COMMENT ON COLUMN ecrm.campaign_performance.revenue IS 'Revenue attributed to conversions';
COMMENT ON COLUMN ecrm.campaign_performance.revenue_per_budget IS 'revenue / budget';

CREATE VIEW ecrm.ticket_queue AS
SELECT t.ticket_id, t.customer_id, t.subject, t.category, t.channel, t.priority, t.status, t.team, t.assignee,
       t.language, t.opened_at, now() - t.opened_at AS age,
       t.first_response_at, t.first_response_due_at, t.sla_due_at,
       (t.first_response_at IS NULL AND now() > t.first_response_due_at) AS first_response_breached,
       (now() > t.sla_due_at) AS sla_breached,
       t.sla_due_at - now() AS time_to_breach
  FROM ecrm.ticket t
 WHERE t.status IN ('open', 'pending')
 ORDER BY t.priority DESC, t.sla_due_at NULLS LAST, t.ticket_id;
COMMENT ON VIEW ecrm.ticket_queue IS 'Open and pending tickets, most urgent first, with their SLA state';
COMMENT ON COLUMN ecrm.ticket_queue.age IS 'Time since the ticket was opened';
COMMENT ON COLUMN ecrm.ticket_queue.first_response_breached IS 'No first response and its due time has passed';
COMMENT ON COLUMN ecrm.ticket_queue.sla_breached IS 'The resolution due time has passed';
COMMENT ON COLUMN ecrm.ticket_queue.time_to_breach IS 'Time left until the resolution due time (negative when breached)';

CREATE VIEW ecrm.kpi_daily AS
SELECT d.day,
       coalesce(nc.new_customers, 0) AS new_customers,
       coalesce(od.orders, 0) AS orders,
       coalesce(od.revenue, 0) AS revenue,
       coalesce(ac.active_customers, 0) AS active_customers
  FROM (SELECT x.day FROM (SELECT DISTINCT (c.created_at AT TIME ZONE 'UTC')::date AS day FROM ecrm.customer_profile c
                           UNION SELECT DISTINCT (o.ordered_at AT TIME ZONE 'UTC')::date FROM ecrm.orders o
                           UNION SELECT DISTINCT (n.occurred_at AT TIME ZONE 'UTC')::date FROM ecrm.interaction n) x) d
  LEFT JOIN (SELECT (c.created_at AT TIME ZONE 'UTC')::date AS day, count(*) AS new_customers
               FROM ecrm.customer_profile c WHERE c.status <> 'merged' GROUP BY 1) nc ON nc.day = d.day
  LEFT JOIN (SELECT (o.ordered_at AT TIME ZONE 'UTC')::date AS day,
                    count(*) FILTER (WHERE o.status NOT IN ('cancelled', 'returned')) AS orders,
                    sum(o.total) FILTER (WHERE o.status <> 'cancelled') AS revenue
               FROM ecrm.orders o GROUP BY 1) od ON od.day = d.day
  LEFT JOIN (SELECT a.day, count(DISTINCT a.customer_id) AS active_customers
               FROM (SELECT (n.occurred_at AT TIME ZONE 'UTC')::date AS day, n.customer_id FROM ecrm.interaction n
                     UNION ALL
                     SELECT (o.ordered_at AT TIME ZONE 'UTC')::date, o.customer_id FROM ecrm.orders o) a
              GROUP BY a.day) ac ON ac.day = d.day;
COMMENT ON VIEW ecrm.kpi_daily IS 'Daily KPIs (days in UTC): new customers, orders, net revenue and active customers';
COMMENT ON COLUMN ecrm.kpi_daily.day IS 'Calendar day in UTC';
COMMENT ON COLUMN ecrm.kpi_daily.new_customers IS 'Profiles created that day (merged duplicates left out)';
COMMENT ON COLUMN ecrm.kpi_daily.orders IS 'Orders placed that day';
COMMENT ON COLUMN ecrm.kpi_daily.revenue IS 'Net revenue of that day (placed minus returned)';
COMMENT ON COLUMN ecrm.kpi_daily.active_customers IS 'Distinct customers with an interaction or an order that day';

CREATE VIEW ecrm.consents AS
SELECT DISTINCT ON (e.customer_id, e.purpose) e.customer_id, e.purpose, e.granted, e.recorded_at, e.source
  FROM ecrm.consent_event e
 ORDER BY e.customer_id, e.purpose, e.recorded_at DESC, e.consent_event_id DESC;
COMMENT ON VIEW ecrm.consents IS 'Consent in force per customer and purpose (the latest record)';
COMMENT ON COLUMN ecrm.consents.granted IS 'true: consent given; false: refused or withdrawn';
COMMENT ON COLUMN ecrm.consents.recorded_at IS 'When this answer was recorded';
