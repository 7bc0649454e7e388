-- Every API entry point rejects bad input with a specific SQLSTATE and a message naming the field.
BEGIN;
SELECT plan(40);
SET LOCAL ecrm.default_country = 'GB';
SELECT ecrm.upsert_customer('{"first_name": "Ada", "email": "ada@example.org", "phone": "020 7946 0018"}') AS ada \gset
SELECT ecrm.upsert_customer('{"first_name": "Bob", "email": "bob@example.org"}') AS bob \gset
SELECT ecrm.upsert_product('CAN', 'Watering can', 'garden', 7.5) AS can \gset
SELECT ecrm.create_campaign('Spring', 'email') AS spring \gset

-- upsert_customer
SELECT throws_ok($$SELECT ecrm.upsert_customer(NULL)$$, '22004', 'customer must not be null');
SELECT throws_ok($$SELECT ecrm.upsert_customer('[]')$$, '22023', 'customer must be a JSON object, not array');
SELECT throws_ok($$SELECT ecrm.upsert_customer('{"nick": 1}')$$, '22023', 'unknown field "nick" in customer');
SELECT throws_ok($$SELECT ecrm.upsert_customer('{"email": "x@"}')$$, '22023', 'field "email" is not a valid email address: "x@"');
SELECT throws_ok($$SELECT ecrm.upsert_customer('{"email": true}')$$, '22023', 'field "email" must be a string, not boolean');
SELECT throws_ok($$SELECT ecrm.upsert_customer('{"phone": "+44 12"}')$$, '22023', 'field "phone" is not a valid phone number: "+44 12"');
SELECT throws_ok($$SELECT ecrm.upsert_customer('{"country": "XX"}')$$, '22023');
SELECT throws_ok($$SELECT ecrm.upsert_customer('{"birth_date": "31/12/1990"}')$$, '22007', 'field "birth_date" is not a valid date (YYYY-MM-DD)');
SELECT throws_ok($$SELECT ecrm.upsert_customer('{"birth_date": "1800-01-01"}')$$, '22008');
SELECT throws_ok($$SELECT ecrm.upsert_customer('{"created_at": "soon"}')$$, '22007', 'field "created_at" is not a valid timestamp');
SELECT throws_ok($$SELECT ecrm.upsert_customer('{"lifecycle_stage": "vip"}')$$, '22023', 'invalid lifecycle_stage "vip"');
SELECT throws_ok($$SELECT ecrm.upsert_customer(jsonb_build_object('city', repeat('é', 201)))$$, '22001',
                 'field "city" is too long (201 characters, at most 200)');
SELECT throws_ok($$SELECT ecrm.upsert_customer('{"customer_id": 424242}')$$, '23503', 'customer 424242 does not exist');
SELECT throws_ok(format($$SELECT ecrm.upsert_customer('{"email": "bob@example.org", "phone": "020 7946 0018"}')$$), '23505');
SELECT throws_ok($$SELECT ecrm.upsert_customer(jsonb_build_object('attributes', jsonb_build_object('x', repeat('y', 70000))))$$, '54000');
SELECT is((SELECT count(*) FROM ecrm.customer_profile), 2::bigint, 'failed calls wrote nothing');

-- identities
SELECT throws_ok(format($$SELECT ecrm.add_identity(%s, 'email', 'ada@example.org')$$, :bob), '23505',
                 format('email "ada@example.org" already belongs to customer %s', :ada));
SELECT throws_ok(format($$SELECT ecrm.add_identity(%s, 'fingerprint', 'x')$$, :bob), '22023', 'invalid kind "fingerprint"');
SELECT throws_ok(format($$SELECT ecrm.add_identity(%s, 'cookie', '')$$, :bob), '22023', 'field "value" must not be empty');
SELECT throws_ok($$SELECT ecrm.find_customer('phone', 'abc')$$, '22023', 'field "value" is not a valid phone number: "abc"');

-- interactions
SELECT throws_ok($$SELECT ecrm.record_interaction(424242, 'web', 'page_view')$$, '23503', 'customer 424242 does not exist');
SELECT throws_ok(format($$SELECT ecrm.record_interaction(%s, 'pigeon', 'page_view')$$, :ada), '22023', 'invalid channel "pigeon"');
SELECT throws_ok(format($$SELECT ecrm.record_interaction(%s, 'web', 'PAGE')$$, :ada), '22023', 'invalid interaction kind "PAGE"');
SELECT throws_ok(format($$SELECT ecrm.record_interaction(%s, 'web', 'page_view', 'infinity')$$, :ada), '22008');
SELECT throws_ok(format($$SELECT ecrm.record_interaction(%s, 'web', 'page_view', now(), '1')$$, :ada), '22023',
                 'payload must be a JSON object, not number');

-- orders
SELECT throws_ok(format($$SELECT ecrm.record_order(%s, '[]')$$, :ada), '22023');
SELECT throws_ok(format($$SELECT ecrm.record_order(%s, '[{"sku": "CAN", "quantity": 0}]')$$, :ada), '22023',
                 'lines[1].quantity must be a non-zero integer, not 0');
SELECT throws_ok(format($$SELECT ecrm.record_order(%s, '[{"sku": "NOPE", "quantity": 1}]')$$, :ada), '23503',
                 'lines[1]: unknown product sku "NOPE"');
SELECT throws_ok(format($$SELECT ecrm.record_order(%s, '[{"sku": "CAN", "quantity": 1, "unit_price": -2}]')$$, :ada), '22003');
SELECT lives_ok(format($$SELECT ecrm.record_order(%s, '[{"sku": "CAN", "quantity": 1}]', external_ref => 'A-1')$$, :ada),
                'an order with a known sku and the catalogue price');
SELECT throws_ok(format($$SELECT ecrm.record_order(%s, '[{"sku": "CAN", "quantity": 1}]', external_ref => 'A-1')$$, :ada), '23505',
                 format('order "A-1" already exists (order %s)', (SELECT order_id FROM ecrm.orders WHERE external_ref = 'A-1')));

-- campaigns, consents
SELECT throws_ok($$SELECT ecrm.create_campaign('Spring', 'email')$$, '23505', 'campaign "Spring" already exists');
SELECT throws_ok($$SELECT ecrm.create_campaign('Autumn', 'email', purpose => 'gossip')$$, '22023', 'unknown consent purpose "gossip"');
SELECT throws_ok(format($$SELECT ecrm.record_campaign_events(%s, 'sent', ARRAY[%s, 424242])$$, :spring, :ada), '23503',
                 'customer 424242 does not exist');
SELECT is((SELECT count(*) FROM ecrm.campaign_event), 0::bigint, 'a batch with one unknown recipient records nothing');
SELECT throws_ok(format($$SELECT ecrm.record_consent(%s, 'gossip', true)$$, :ada), '22023', 'unknown consent purpose "gossip"');

-- tickets and the knowledge base
SELECT throws_ok(format($$SELECT ecrm.open_ticket(%s, '  ')$$, :ada), '22023', 'ticket subject must be 1 to 500 characters');
SELECT throws_ok($$SELECT ecrm.update_ticket(424242, status => 'closed')$$, 'P0002', 'ticket 424242 does not exist');
SELECT throws_ok($$SELECT ecrm.kb_search('x', 5000)$$, '22023', 'max_results must be between 1 and 1000, not 5000');

-- erased customers take no new data
UPDATE ecrm.customer_profile SET status = 'erased' WHERE customer_id = :bob;
SELECT throws_ok(format($$SELECT ecrm.record_interaction(%s, 'web', 'page_view')$$, :bob), '22023',
                 format('customer %s has been erased', :bob));

SELECT * FROM finish();
ROLLBACK;
