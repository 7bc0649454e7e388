#!/usr/bin/env bash
# Benchmark: every time-based automation rule evaluated over 1,000,000 customers by one ecrm.run_automation()
# call (what pg_cron runs every minute), against the plain-SQL queries a user would write for the same
# triggers, in the same run.
#
#   bash test/bench/automation_rules.sh [CUSTOMERS]
#
# Data (generated here, deterministic): CUSTOMERS profiles with birth dates and sign-up dates over 3 years,
# marketing consent for 70%, 1.5 orders per customer over 2 years, a cart_add in the last 2 days for 3%
# of customers (a third of whom ordered after it), 20,000 open tickets.  Rules: abandoned cart after
# 4 hours, no order for 90 days, birthday, sign-up anniversary, ticket breaching its SLA within 1 hour.
set -euo pipefail
N=${1:-1000000}
. "$(dirname "$0")/../lib.sh"
cd "$ECRM_TOP"
ecrm_build_install
ecrm_cluster_start
trap ecrm_cluster_stop EXIT
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
q -c 'CREATE DATABASE bench'
export PGDATABASE=bench
q -c 'CREATE EXTENSION ecrm'
AS_OF="2026-06-30 12:00:00+00"

t0=$(date +%s)
q <<SQL
INSERT INTO ecrm.customer_profile (customer_id, first_name, email, birth_date, created_at, updated_at)
SELECT i, 'Customer' || i, 'c' || i || '@example.org',
       date '1950-01-01' + (ecrm._demo_u(1, i, 1) * 20000)::int,
       timestamptz '$AS_OF' - make_interval(secs => ecrm._demo_u(1, i, 2) * 3 * 365 * 86400),
       timestamptz '$AS_OF'
  FROM generate_series(1, $N) i;
SELECT setval(pg_get_serial_sequence('ecrm.customer_profile', 'customer_id'), $N);
INSERT INTO ecrm.consent_event (customer_id, purpose, granted, recorded_at)
SELECT i, 'marketing_email', true, timestamptz '$AS_OF' - interval '3 years' FROM generate_series(1, $N) i WHERE ecrm._demo_u(1, i, 3) < 0.7;
INSERT INTO ecrm.orders (customer_id, ordered_at, total, status)
SELECT 1 + floor(ecrm._demo_u(2, k, 1) * $N)::bigint, timestamptz '$AS_OF' - make_interval(secs => ecrm._demo_u(2, k, 2) * 730 * 86400),
       round((10 + 90 * ecrm._demo_u(2, k, 3))::numeric, 2), 'paid'
  FROM generate_series(1, ($N * 3 / 2)::bigint) k;
INSERT INTO ecrm.product (product_id, sku, name, price) SELECT i, 'P' || i, 'Product ' || i, 10 + i FROM generate_series(1, 50) i;
INSERT INTO ecrm.interaction (customer_id, channel, kind, occurred_at, product_id)
SELECT i, 'web', 'cart_add', timestamptz '$AS_OF' - make_interval(secs => ecrm._demo_u(3, i, 1) * 2 * 86400), 1 + i % 50
  FROM generate_series(1, $N) i WHERE ecrm._demo_u(3, i, 2) < 0.03;
INSERT INTO ecrm.orders (customer_id, ordered_at, total, status)
SELECT i.customer_id, i.occurred_at + interval '1 hour', 20, 'paid' FROM ecrm.interaction i
 WHERE i.kind = 'cart_add' AND ecrm._demo_u(3, i.customer_id, 3) < 0.33 AND i.occurred_at + interval '1 hour' < timestamptz '$AS_OF';
INSERT INTO ecrm.ticket (customer_id, subject, priority, team, opened_at, first_response_due_at, sla_due_at)
SELECT 1 + floor(ecrm._demo_u(4, k, 1) * $N)::bigint, 'Ticket ' || k, 'normal', 'general',
       timestamptz '$AS_OF' - make_interval(secs => ecrm._demo_u(4, k, 2) * 4 * 86400),
       timestamptz '$AS_OF' - make_interval(secs => ecrm._demo_u(4, k, 2) * 4 * 86400) + interval '8 hours',
       timestamptz '$AS_OF' - make_interval(secs => ecrm._demo_u(4, k, 2) * 4 * 86400) + interval '3 days'
  FROM generate_series(1, 20000) k;
VACUUM ANALYZE ecrm.customer_profile; VACUUM ANALYZE ecrm.orders; VACUUM ANALYZE ecrm.interaction;
VACUUM ANALYZE ecrm.consent_event; VACUUM ANALYZE ecrm.ticket;
SELECT ecrm.save_template('cart', 'email', 'Hi {{ first_name }}, you left {{ cart_items }} in your cart', 'Your cart');
SELECT ecrm.save_template('birthday', 'email', 'Happy birthday {{ first_name }}!', 'Happy birthday');
SELECT ecrm.save_template('anniversary', 'email', '{{ anniversary_years }} years with us, {{ first_name }}!', 'Thank you');
SELECT ecrm.save_rule('abandoned cart', 'cart_abandoned', '{"after": "4 hours"}', 'send_message', '{"template": "cart"}');
SELECT ecrm.save_rule('lapsed 90 days', 'no_order', '{"days": 90}', 'create_task', '{"title": "Win back {{ first_name }}", "assignee": "retention"}');
SELECT ecrm.save_rule('birthday', 'date', '{"field": "birth_date"}', 'send_message', '{"template": "birthday"}');
SELECT ecrm.save_rule('anniversary', 'date', '{"field": "created_at"}', 'send_message', '{"template": "anniversary"}');
SELECT ecrm.save_rule('sla breach', 'ticket_sla_breach', '{"before": "1 hour"}', 'create_task', '{"title": "Ticket {{ ticket_id }} breaches at {{ due_at }}", "assignee": "supervisor"}');
SQL
t1=$(date +%s)
echo "== data: $(q -c 'SELECT count(*) FROM ecrm.customer_profile') customers, $(q -c 'SELECT count(*) FROM ecrm.orders') orders, $(q -c "SELECT count(*) FROM ecrm.interaction") cart_adds, $(q -c 'SELECT count(*) FROM ecrm.consent_event') consents, $(q -c "SELECT count(*) FROM ecrm.ticket") open tickets (generated in $((t1 - t0)) s)"

echo "== ecrm.run_automation('$AS_OF'): every time-based rule, detection + conditions + consent + rendering + outbox"
q -c "\timing on" -c "SELECT rule, trigger_kind, triggered, performed, skipped FROM ecrm.run_automation('$AS_OF')" | sed 's/^/   /'
echo "== the same call again (every trigger already in the ledger: nothing enqueued twice)"
q -c "\timing on" -c "SELECT sum(triggered), sum(performed) FROM ecrm.run_automation('$AS_OF')" | sed 's/^/   /'
echo "== the next minute"
q -c "\timing on" -c "SELECT sum(triggered), sum(performed) FROM ecrm.run_automation(timestamptz '$AS_OF' + interval '1 minute')" | sed 's/^/   /'
echo "   outbox: $(q -c "SELECT string_agg(topic || ' ' || n, ', ') FROM (SELECT topic, count(*) n FROM ecrm.outbox GROUP BY 1 ORDER BY 1) x"), duplicates: $(q -c 'SELECT count(*) - count(DISTINCT run_id) FROM ecrm.outbox')"

echo "== the plain-SQL way: one query per trigger, as a user writes it (candidates only; no ledger, conditions, consent or rendering)"
q <<SQL | sed 's/^/   /'
\timing on
-- carts: customers whose latest cart_add is 4 hours to 7 days old with no order after it
SELECT count(*) FROM (SELECT i.customer_id, max(i.occurred_at) AS last_add FROM ecrm.interaction i WHERE i.kind = 'cart_add' GROUP BY 1) c
 WHERE c.last_add <= timestamptz '$AS_OF' - interval '4 hours' AND c.last_add > timestamptz '$AS_OF' - interval '4 hours 7 days'
   AND NOT EXISTS (SELECT FROM ecrm.orders o WHERE o.customer_id = c.customer_id AND o.ordered_at >= c.last_add);
-- lapsed: last order 90 to 97 days ago
SELECT count(*) FROM (SELECT o.customer_id, max(o.ordered_at) AS last_at FROM ecrm.orders o GROUP BY 1) l
 WHERE l.last_at <= timestamptz '$AS_OF' - interval '90 days' AND l.last_at > timestamptz '$AS_OF' - interval '97 days';
-- birthdays and anniversaries today
SELECT count(*) FROM ecrm.customer_profile c WHERE to_char(c.birth_date, 'MM-DD') = to_char(timestamptz '$AS_OF', 'MM-DD');
SELECT count(*) FROM ecrm.customer_profile c WHERE to_char(c.created_at AT TIME ZONE 'UTC', 'MM-DD') = to_char(timestamptz '$AS_OF' AT TIME ZONE 'UTC', 'MM-DD')
   AND (c.created_at AT TIME ZONE 'UTC')::date < (timestamptz '$AS_OF' AT TIME ZONE 'UTC')::date;   -- by calendar date in UTC, as ecrm does
-- tickets breaching within the hour
SELECT count(*) FROM ecrm.ticket t WHERE t.status IN ('open', 'pending') AND t.sla_due_at <= timestamptz '$AS_OF' + interval '1 hour' AND t.sla_due_at > timestamptz '$AS_OF' - interval '7 days';
SQL
