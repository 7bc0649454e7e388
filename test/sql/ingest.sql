-- Ingestion API: create/update customers, identities, interactions, orders, campaigns, consents, tickets.
-- Every call validates before it writes; errors name the field.
\pset null '(null)'
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP EXTENSION ecrm CASCADE;
CREATE EXTENSION ecrm;
RESET client_min_messages;
SET ecrm.default_country = 'GB';

-- a new customer: email and phone normalised and attached as identities
SELECT ecrm.upsert_customer('{"first_name": "Ada", "last_name": "Lovelace", "email": " Ada.Lovelace+shop@GoogleMail.com ",
                              "phone": "020 7946 0018", "country": "gb", "language": "en-GB", "birth_date": "1990-12-10",
                              "lifecycle_stage": "lead", "attributes": {"plan": "pro", "seats": 3}, "external_id": 17,
                              "created_at": "2026-01-02 10:00:00+00"}') AS ada;
SELECT customer_id, first_name, last_name, email, phone, country, language, birth_date, lifecycle_stage, attributes, created_at
  FROM ecrm.customer_profile;
SELECT customer_id, kind, namespace, value, raw_value FROM ecrm.identity ORDER BY kind;

-- found again by any identity, in any spelling; only the fields given change; attributes merge, null removes a key
SELECT ecrm.upsert_customer('{"email": "adalovelace@gmail.com", "city": "London", "attributes": {"seats": null, "team": "eng"}}');
SELECT ecrm.upsert_customer('{"phone": "+44 20 7946 0018", "job_title": "Analyst"}');
SELECT ecrm.upsert_customer('{"external_id": "17", "company": "Analytical Engines"}');
SELECT customer_id, first_name, city, job_title, company, attributes FROM ecrm.customer_profile;
SELECT ecrm.find_customer('email', 'ADA.LOVELACE@gmail.com'), ecrm.find_customer('phone', '02079460018'),
       ecrm.find_customer('external', '17'), ecrm.find_customer('email', 'nobody@example.com');

-- extra identities, and an identity that belongs to someone else
SELECT ecrm.upsert_customer('{"first_name": "Bob", "email": "bob@example.org", "identities": [{"kind": "cookie", "namespace": "web", "value": "c-123"}]}') AS bob;
SELECT ecrm.add_identity(2, 'device', 'ios-abc', 'app') > 0 AS added;
SELECT ecrm.find_customer('cookie', 'c-123', 'web'), ecrm.find_customer('device', 'ios-abc', 'app');
SELECT ecrm.add_identity(2, 'email', 'ada.lovelace@gmail.com');
SELECT ecrm.upsert_customer('{"email": "bob@example.org", "phone": "020 7946 0018"}');
SELECT ecrm.upsert_customer('{"customer_id": 2, "first_name": "Robert"}');
SELECT first_name FROM ecrm.customer_profile WHERE customer_id = 2;

-- bad customers: each error names what is wrong, nothing is written
SELECT count(*) AS profiles_before FROM ecrm.customer_profile;
SELECT ecrm.upsert_customer(NULL);
SELECT ecrm.upsert_customer('[]');
SELECT ecrm.upsert_customer('"x"');
SELECT ecrm.upsert_customer('{"nickname": "x"}');
SELECT ecrm.upsert_customer('{"email": "not-an-email"}');
SELECT ecrm.upsert_customer('{"email": 42}');
SELECT ecrm.upsert_customer('{"phone": "12"}');
SELECT ecrm.upsert_customer('{"first_name": "Z", "country": "United Kingdom"}');
SELECT ecrm.upsert_customer('{"first_name": "Z", "language": "English!"}');
SELECT ecrm.upsert_customer('{"first_name": "Z", "birth_date": "1999-02-30"}');
SELECT ecrm.upsert_customer('{"first_name": "Z", "birth_date": "2999-01-01"}');
SELECT ecrm.upsert_customer('{"first_name": "Z", "lifecycle_stage": "prospect"}');
SELECT ecrm.upsert_customer('{"first_name": "Z", "attributes": [1, 2]}');
SELECT ecrm.upsert_customer(jsonb_build_object('first_name', repeat('x', 201)));
SELECT ecrm.upsert_customer('{"customer_id": 999}');
SELECT ecrm.upsert_customer('{"customer_id": -1}');
SELECT ecrm.upsert_customer('{"customer_id": "1"}');
SELECT ecrm.upsert_customer('{"identities": [{"kind": "passport", "value": "x"}]}');
SELECT ecrm.upsert_customer('{"identities": [{"kind": "cookie"}]}');
SELECT ecrm.upsert_customer('{"identities": {"kind": "cookie"}}');
SELECT count(*) AS profiles_after FROM ecrm.customer_profile;

-- Unicode survives untouched
SELECT ecrm.upsert_customer('{"first_name": "Zoë", "last_name": "Ærøskøbing-Müller", "city": "İstanbul", "email": "zoë@bücher.de"}') AS zoe;
SELECT first_name, last_name, city, email FROM ecrm.customer_profile WHERE customer_id = 3;

-- interactions
SELECT ecrm.record_interaction(1, 'web', 'page_view', '2026-01-03 09:00:00+00', '{"url": "/pricing"}');
SELECT ecrm.record_interaction(customer_id => 1, channel => 'email', kind => 'email_open', occurred_at => '2026-01-04 09:00:00+00');
SELECT customer_id, channel, kind, occurred_at, payload FROM ecrm.interaction ORDER BY interaction_id;
SELECT ecrm.record_interaction(999, 'web', 'page_view');
SELECT ecrm.record_interaction(NULL, 'web', 'page_view');
SELECT ecrm.record_interaction(1, 'fax', 'page_view');
SELECT ecrm.record_interaction(1, NULL, 'page_view');
SELECT ecrm.record_interaction(1, 'web', 'Page View');
SELECT ecrm.record_interaction(1, 'web', '');
SELECT ecrm.record_interaction(1, 'web', 'page_view', '2999-01-01');
SELECT ecrm.record_interaction(1, 'web', 'page_view', NULL);
SELECT ecrm.record_interaction(1, 'web', 'page_view', '2026-01-01', '[1]');
SELECT ecrm.record_interaction(1, 'web', 'page_view', '2026-01-01', jsonb_build_object('blob', repeat('x', 2000000)));
SELECT ecrm.record_interaction(1, 'web', 'page_view', '2026-01-01', '{}', 999);
SELECT ecrm.record_interaction(1, 'web', 'page_view', '2026-01-01', '{}', NULL, 999);
SELECT count(*) AS interactions FROM ecrm.interaction;

-- orders: lines by sku (new products created with the order), a first order makes a lead a customer
SELECT ecrm.record_order(1, '[{"sku": "HOSE-1", "name": "Garden hose", "category": "garden", "quantity": 2, "unit_price": 19.99},
                              {"sku": "HOSE-1", "quantity": 1, "unit_price": 19.99},
                              {"sku": "CAN-1", "name": "Watering can", "quantity": 1, "unit_price": 7.5}]',
                         '2026-01-05 12:00:00+00', 'INV-1', currency => 'GBP') AS order_1;
SELECT order_id, customer_id, external_ref, status, currency, total FROM ecrm.orders;
SELECT order_id, line_no, customer_id, product_id, quantity, unit_price, amount FROM ecrm.order_line ORDER BY line_no;
SELECT sku, name, category, price FROM ecrm.product ORDER BY sku;
SELECT lifecycle_stage FROM ecrm.customer_profile WHERE customer_id = 1;
SELECT customer_id, from_stage, to_stage, reason FROM ecrm.lifecycle_change ORDER BY change_id;
-- a return is a credit note
SELECT ecrm.record_order(1, '[{"sku": "CAN-1", "quantity": -1}]', '2026-01-09 12:00:00+00', 'RET-1', status => 'returned') AS return_1;
SELECT external_ref, status, total FROM ecrm.orders ORDER BY order_id;
-- bad orders
SELECT ecrm.record_order(1, '[]');
SELECT ecrm.record_order(1, NULL);
SELECT ecrm.record_order(1, '{"sku": "CAN-1"}');
SELECT ecrm.record_order(1, '[{"sku": "CAN-1", "quantity": 0}]');
SELECT ecrm.record_order(1, '[{"sku": "CAN-1", "quantity": 1.5}]');
SELECT ecrm.record_order(1, '[{"sku": "CAN-1", "quantity": "2"}]');
SELECT ecrm.record_order(1, '[{"sku": "CAN-1", "quantity": 1, "unit_price": -1}]');
SELECT ecrm.record_order(1, '[{"sku": "CAN-1", "quantity": 1, "unit_price": 1e20}]');
SELECT ecrm.record_order(1, '[{"sku": "NOPE", "quantity": 1, "unit_price": 1}]');
SELECT ecrm.record_order(1, '[{"quantity": 1, "unit_price": 1}]');
SELECT ecrm.record_order(1, '[{"product_id": 999, "quantity": 1}]');
SELECT ecrm.record_order(1, '[{"sku": "CAN-1", "quantity": 1, "colour": "red"}]');
SELECT ecrm.record_order(1, '[{"sku": "CAN-1", "quantity": 1}, 42]');
SELECT ecrm.record_order(1, '[{"sku": "CAN-1", "quantity": 1}]', external_ref => 'INV-1');
SELECT ecrm.record_order(1, '[{"sku": "CAN-1", "quantity": 1}]', status => 'lost');
SELECT ecrm.record_order(1, '[{"sku": "CAN-1", "quantity": 1}]', currency => 'euro');
SELECT ecrm.record_order(1, '[{"sku": "CAN-1", "quantity": 1}]', channel => 'fax');
SELECT ecrm.record_order(1, (SELECT jsonb_agg('{"sku": "CAN-1", "quantity": 1}'::jsonb) FROM generate_series(1, 10001)));
SELECT ecrm.record_order(999, '[{"sku": "CAN-1", "quantity": 1}]');
SELECT count(*) AS orders, (SELECT count(*) FROM ecrm.order_line) AS lines, (SELECT count(*) FROM ecrm.product) AS products
  FROM ecrm.orders;

-- campaigns and their events; unsubscribing withdraws consent for the campaign's purpose
SELECT ecrm.create_campaign('Spring sale', 'email', starts_at => '2026-01-10', ends_at => '2026-01-20', budget => 500) AS spring;
SELECT ecrm.record_consent(1, 'marketing_email', true, '2026-01-02 10:01:00+00', 'signup form');
SELECT ecrm.record_consent(2, 'marketing_email', true, '2026-01-02 10:01:00+00');
SELECT ecrm.record_campaign_events(1, 'sent', '{1,2}', '2026-01-10 08:00:00+00');
SELECT ecrm.record_campaign_events(1, 'delivered', '{1,2}', '2026-01-10 08:01:00+00');
SELECT ecrm.record_campaign_event(1, 1, 'opened', '2026-01-10 09:00:00+00') > 0 AS opened;
SELECT ecrm.record_campaign_event(1, 1, 'clicked', '2026-01-10 09:01:00+00') > 0 AS clicked;
SELECT ecrm.record_campaign_event(1, 1, 'converted', '2026-01-10 09:30:00+00', revenue => 42.5) > 0 AS converted;
SELECT ecrm.record_campaign_event(1, 2, 'unsubscribed', '2026-01-11 09:00:00+00') > 0 AS unsubscribed;
SELECT ecrm.has_consent(1, 'marketing_email'), ecrm.has_consent(2, 'marketing_email'), ecrm.has_consent(3, 'marketing_email');
SELECT customer_id, purpose, granted, source FROM ecrm.consents ORDER BY 1, 2;
SELECT ecrm.create_campaign('Spring sale', 'email');
SELECT ecrm.create_campaign('', 'email');
SELECT ecrm.create_campaign('Fax blast', 'fax');
SELECT ecrm.create_campaign('Ads', 'social', purpose => 'telepathy');
SELECT ecrm.create_campaign('Backwards', 'email', starts_at => '2026-02-01', ends_at => '2026-01-01');
SELECT ecrm.create_campaign('Neg', 'email', budget => -5);
SELECT ecrm.record_campaign_events(1, 'sent', '{1,999}');
SELECT ecrm.record_campaign_events(1, 'sent', '{}');
SELECT ecrm.record_campaign_events(1, 'sent', '{1,NULL}');
SELECT ecrm.record_campaign_events(1, 'forwarded', '{1}');
SELECT ecrm.record_campaign_events(999, 'sent', '{1}');
SELECT ecrm.record_campaign_events(1, 'opened', '{1}', revenue => 5);
SELECT ecrm.record_campaign_events(1, 'converted', '{1}', revenue => -5);
SELECT ecrm.record_campaign_events(1, 'converted', '{1}', revenue => 'NaN');
SELECT ecrm.record_consent(1, 'telepathy', true);
SELECT ecrm.record_consent(1, 'sms', NULL);
SELECT ecrm.has_consent(1, NULL), ecrm.has_consent(NULL, 'sms'), ecrm.has_consent(999, 'sms');

-- tickets: SLA due times from the priority, first reply, priority change, resolution, reopening
SELECT ecrm.open_ticket(1, 'Where is my order?', 'Ordered a week ago', 'chat', 'shipping', 'high',
                        opened_at => '2026-01-06 10:00:00+00') AS t1;
SELECT ticket_id, status, priority, opened_at, first_response_due_at, sla_due_at FROM ecrm.ticket;
SELECT ecrm.update_ticket(1, comment => 'Checking with the carrier', reply => true, author => 'sam', at => '2026-01-06 11:00:00+00');
SELECT ecrm.update_ticket(1, priority => 'urgent', team => 'logistics', assignee => 'sam', at => '2026-01-06 11:05:00+00');
SELECT ecrm.resolve_ticket(1, 'Delivered today', 'sam', '2026-01-06 13:00:00+00');
SELECT status, priority, team, assignee, first_response_at, resolved_at, first_response_due_at, sla_due_at FROM ecrm.ticket;
SELECT ecrm.update_ticket(1, status => 'open', at => '2026-01-07 09:00:00+00');
SELECT status, resolved_at FROM ecrm.ticket;
SELECT kind, author, body, details FROM ecrm.ticket_event ORDER BY event_id;
INSERT INTO ecrm.sla_policy VALUES ('low', '2 days', '10 days');
SELECT (ecrm.sla_target('low')).*, (ecrm.sla_target('urgent')).*;
SELECT ecrm.open_ticket(1, '');
SELECT ecrm.open_ticket(1, 'x', priority => 'critical');
SELECT ecrm.open_ticket(1, 'x', channel => 'fax');
SELECT ecrm.open_ticket(999, 'x');
SELECT ecrm.open_ticket(1, repeat('x', 501));
SELECT ecrm.update_ticket(999, status => 'closed');
SELECT ecrm.update_ticket(1, status => 'done');
SELECT ecrm.update_ticket(1, reply => true);
SELECT ecrm.update_ticket(1, comment => 'x', at => '2020-01-01');

-- the knowledge base
INSERT INTO ecrm.kb_article (slug, title, body, category) VALUES
    ('delivery', 'Delivery times and tracking', 'Parcels arrive in 2 to 4 days; the tracking link comes by email.', 'shipping'),
    ('returns', 'Returning an item', 'Print a free return label from your account within 30 days.', 'returns'),
    ('password', 'Resetting your password', 'Use the forgot password link; the email arrives within minutes.', 'account');
SELECT slug, round(rank::numeric, 3) AS rank, snippet FROM ecrm.kb_search('my parcel has not arrived');
SELECT slug FROM ecrm.kb_search('"return label"');
SELECT slug FROM ecrm.kb_search('email -password');
SELECT count(*) FROM ecrm.kb_search('');
SELECT count(*) FROM ecrm.kb_search(NULL);
SELECT count(*) FROM ecrm.kb_search('日本語 😀');
SELECT ecrm.kb_search('x', 0);
SELECT ecrm.kb_search(repeat('x ', 6000));
