#!/usr/bin/python3
"""Canary test for masking (issue 11): nothing an analyst can read or call shows personal data.

1. A shop (demo data) and three canary customers: A gets canary values through the public API
   (typed: a name, an email, a phone, free text, payloads under every key the masking keeps),
   B gets a canary in every text, JSON and array column of every table that holds customer data
   (the columns read from pg_attribute, rows cloned where B has none, so a column or table added
   later is covered without editing this test), C refused profiling and is in a segment.
2. As an ecrm_analyst LOGIN role (SET SESSION AUTHORIZATION): read every relation it may SELECT
   (has_table_privilege, any schema), call every function it may EXECUTE (has_function_privilege)
   with plausible arguments (the canary customers' ids), provoke a cast error on every text column
   of every readable relation, and look for any canary fragment (whole or in part: name, email
   local part and domain, phone digits, free-text token) in every value and every error message.
3. Functions taking a customer id answer for C (hidden from the masked views: refused profiling)
   exactly what they answer for D, a customer with no data at all.
4. Every view of schema ecrm has a masked twin or a rule that says why it has none.
Needs PGHOST/PGPORT/PGUSER (a superuser). Exits 1 on any finding, printing each.
"""
import json
import os
import re
import sys

import psycopg2
import psycopg2.extensions

DB = "ecrm_canary"
KEY = "canary-test-key-0123456789abcdef"
FIRST, LAST = "Zebulonq", "Quorvathx"
EMAIL = "zebq.canarylocal@quorvath-mail.org"
PHONE = "+44 7700 900461"
TOKEN = "Xylocanary"
FREE = f"call {FIRST} {LAST} <{EMAIL}> {PHONE} {TOKEN}"
# Fragments that must never reach an analyst, compared case-insensitively with everything it sees.
FRAGMENTS = ["zebulonq", "quorvath", "canarylocal", "xylocanary", "7700900461", "77009004", "00900461"]
FRAG_RE = "(" + "|".join(FRAGMENTS) + ")"

# Tables that hold configuration, not data about people: analysts may read some of them directly
# (products, models, campaign names). Every other table of schema ecrm is treated as customer data.
CONFIG_TABLES = {
    "_masking_state", "automation_rule", "campaign", "cluster_model", "clv_model", "consent_purpose",
    "customer_table", "dedupe_run", "kb_article", "mask_policy", "mask_secret", "masked_view_rule",
    "match_model", "message_template", "national_id_format", "product", "rec_model", "rec_neighbor",
    "rec_popularity", "rec_product_factor", "rec_signal", "rfm_cutoff", "routing_rule", "score_group",
    "scoring_model", "scoring_rule", "segment", "segment_dependency", "segment_size", "sla_policy",
    "survivorship_rule",
}

findings = []


def finding(msg):
    findings.append(msg)
    print("FAIL:", msg)


def has_canary(text):
    if text is None:
        return None
    low = str(text).lower()
    for f in FRAGMENTS:
        if f in low:
            return f
    return None


def connect(dbname="postgres"):
    c = psycopg2.connect(dbname=dbname)
    c.autocommit = True
    return c


admin0 = connect()
cur0 = admin0.cursor()
cur0.execute(f"DROP DATABASE IF EXISTS {DB}")
cur0.execute(f"CREATE DATABASE {DB}")
cur0.execute("DROP ROLE IF EXISTS ecrm_canary_analyst")
cur0.execute("CREATE ROLE ecrm_canary_analyst LOGIN IN ROLE ecrm_analyst")
admin0.close()

db = connect(DB)
cur = db.cursor()


def q(sql, args=None):
    if re.match(r"(SAVEPOINT|RELEASE SAVEPOINT|ROLLBACK TO SAVEPOINT) ", sql):
        return None   # autocommit: every statement is its own transaction, an error undoes only itself
    cur.execute(sql, args)
    return cur.fetchall() if cur.description else None


def q1(sql, args=None):
    rows = q(sql, args)
    return rows[0][0] if rows else None


def try_q(sql, args=None):
    try:
        return q(sql, args)
    except psycopg2.Error as e:
        print(f"  setup step failed: {e.pgerror.splitlines()[0] if e.pgerror else e}")


q("SET ecrm.pseudonym_key = %s", (KEY,))
q("CREATE EXTENSION ecrm")
q("SELECT count(*) FROM ecrm.generate_demo_data(60, 5, '2026-05-01 00:00:00+00')")

# ---- A: canary values through the public API -------------------------------------------------
A = q1("SELECT ecrm.upsert_customer(%s)", (json.dumps({
    "first_name": FIRST, "last_name": LAST, "email": EMAIL, "phone": PHONE, "company": f"{LAST} {TOKEN} Ltd",
    "job_title": f"{TOKEN} officer", "street": f"12 {LAST} Street", "city": "London", "postal_code": "SW1A 1AA",
    "region": f"{TOKEN} shire", "country": "GB", "owner": f"{FIRST} {LAST}", "source": FREE,
    "attributes": {"industry": FIRST, "plan": EMAIL, "company_size": PHONE, "note": FREE,
                   "nested": {"industry": EMAIL}}}),))
q("SELECT ecrm.add_identity(%s, 'external', %s, 'crm', %s)", (A, f"{TOKEN}-{LAST}", FREE))
q("""SELECT ecrm.save_rule('canary task', 'order', '{}', 'create_task', '{"title": "call {{ first_name }} {{ last_name }} {{ email }}"}')""")
campaign = q1("SELECT min(campaign_id) FROM ecrm.campaign")
try_q("SELECT ecrm.save_rule('canary member', 'order', '{}', 'add_to_campaign', jsonb_build_object('campaign', name)) FROM ecrm.campaign WHERE campaign_id = %s", (campaign,))
product = q1("SELECT min(product_id) FROM ecrm.product")
payload = {"from": f"A Sender <{EMAIL}>", "to": PHONE, "external_ref": PHONE, "campaign": f"{FIRST} {LAST}",
           "purpose": EMAIL, "currency": TOKEN, "product_id": 447700900461, "note": FREE,
           "subject": FREE, "body": FREE, "author": f"{FIRST} {LAST}", "source": FREE, "reason": FREE,
           "list": [EMAIL], "obj": {"from": EMAIL}}
q("SELECT ecrm.record_interaction(%s, 'email', 'email_received', now(), %s)", (A, json.dumps(payload)))
q("SELECT ecrm.record_interaction(%s, 'web', 'page_view', now(), %s, NULL, %s)", (A, json.dumps(payload), product))
q("SELECT ecrm.record_campaign_event(%s, %s, 'opened', now(), 0, NULL, %s)", (campaign, A, json.dumps(payload)))
q("SELECT ecrm.record_order(%s, %s, now(), %s, 'placed', 'web', 'EUR', NULL, %s)",
  (A, json.dumps([{"product_id": product, "quantity": 1, "unit_price": 10}]), PHONE, json.dumps(payload)))
q("SELECT ecrm.record_consent(%s, 'sms', true, now(), %s, %s)", (A, FREE, json.dumps(payload)))
t = q1("SELECT ecrm.open_ticket(%s, %s, %s, 'email', %s, 'normal', 'en')", (A, FREE, FREE, FREE))
q("SELECT ecrm.update_ticket(%s, 'pending', NULL, %s, %s, %s, %s)", (t, FREE, f"{FIRST} {LAST}", FREE, f"{FIRST} {LAST}"))
q("SELECT set_config('ecrm.lifecycle_reason', %s, false)", (FREE,))
q("UPDATE ecrm.customer_profile SET lifecycle_stage = 'customer' WHERE customer_id = %s", (A,))
q("SELECT set_config('ecrm.lifecycle_reason', '', false)")
# a duplicate of A merged into it, with a reason in free text
A2 = q1("SELECT ecrm.upsert_customer(%s)", (json.dumps({"first_name": FIRST, "last_name": LAST,
                                                        "email": "zebq.canarylocal+dup@quorvath-mail.org"}),))
q("SELECT ecrm.merge_customers(ARRAY[%s, %s]::bigint[], %s, NULL, %s)", (A, A2, A, FREE))



# more tables get rows: the outbox, match candidates, segment events, the erasure log
try_q("SELECT ecrm.enqueue('task', %s, %s, NULL, 'email', NULL, %s, %s, %s)", (A, json.dumps(payload), EMAIL, FREE, FREE))
try_q("SELECT ecrm.dedupe(false)")
E = q1("SELECT ecrm.upsert_customer(%s)", (json.dumps({"first_name": "Ecanary", "email": "e.person@example.org"}),))
try_q("SELECT ecrm.erase_customer(%s, 'canary-1')", (E,))

# ---- B: a canary in every text, JSON and array column of every customer-data table -----------
B = q1("SELECT ecrm.upsert_customer(%s)", (json.dumps({"first_name": "Bcanary", "email": "b.person@example.org", "country": "GB"}),))
try_q("SELECT ecrm.record_order(%s, %s, now(), 'b-ref-1')", (B, json.dumps([{"product_id": product, "quantity": 1, "unit_price": 10}])))
try_q("SELECT ecrm.enqueue('task', %s, '{}', 'b-task-1')", (B,))
try_q("SELECT ecrm.define_static_segment('canary_static', ecrm.idset(ARRAY[%s]::bigint[]))", (A,))
try_q("SELECT ecrm.add_segment_members('canary_static', ARRAY[%s]::bigint[])", (B,))   # an event (the first build has none)
# a near-duplicate of B, for the match candidates
try_q("SELECT ecrm.upsert_customer(%s)", (json.dumps({"first_name": "Bcanary", "last_name": "Person", "email": "b.persom@example.org",
                                                      "birth_date": "1990-01-02", "country": "GB", "city": "Leeds"}),))
try_q("SELECT ecrm.upsert_customer(jsonb_build_object('customer_id', %s, 'last_name', 'Person', 'birth_date', '1990-01-02', 'city', 'Leeds'))", (B,))
try_q("SELECT ecrm.run_automation()")
try_q("SELECT ecrm.dedupe(false)")
try_q("SELECT ecrm.define_segment('canary_gb', '{\"attribute\": \"country\", \"op\": \"=\", \"value\": \"GB\"}')")
tables = q("""
    SELECT c.oid::regclass::text, c.relname,
           EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'customer_id' AND NOT a.attisdropped)
      FROM pg_class c WHERE c.relnamespace = 'ecrm'::regnamespace AND c.relkind IN ('r', 'p') ORDER BY 1""")
covered, uncovered = [], []
for rel, relname, keyed in tables:
    if relname in CONFIG_TABLES:
        continue
    cols = q("""
        SELECT a.attname, format_type(a.atttypid, a.atttypmod), t.typcategory, coalesce(e.typcategory, '')
          FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid LEFT JOIN pg_type e ON e.oid = t.typelem
         WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
           AND (t.typcategory IN ('S', 'U') OR (t.typcategory = 'A' AND e.typcategory IN ('S', 'U')))
         ORDER BY a.attnum""", (rel,))
    if not cols:
        continue
    where = f"customer_id = {B}" if keyed else "true"
    if q1(f"SELECT count(*) FROM {rel} WHERE {where}") == 0:
        # clone another row (another customer's) for B; identity columns take their defaults
        ins_cols = [r[0] for r in q("""SELECT a.attname FROM pg_attribute a WHERE a.attrelid = %s::regclass AND a.attnum > 0
                                        AND NOT a.attisdropped AND a.attidentity = '' AND a.attgenerated = ''
                                      ORDER BY a.attnum""", (rel,))]
        collist = ", ".join(f'"{c}"' for c in ins_cols)
        override = {"customer_id": B} if keyed else {}
        for c, typ, cat, ecat in cols:
            if typ in ("text", "character varying"):
                override[c] = f"{FREE} #clone"
        err = None
        for ov in ({"customer_id": B} if keyed else {}, override):
            try:
                q(f"""INSERT INTO {rel} ({collist}) SELECT {collist}
                        FROM jsonb_populate_record(NULL::{rel}, (SELECT to_jsonb(x) FROM {rel} x LIMIT 1) || %s::jsonb)""",
                  (json.dumps(ov),))
                err = None
                break
            except psycopg2.Error as e:
                err = e.pgerror.splitlines()[0]
        if err:
            print(f"  cannot clone a row of {rel}: {err}")
    if q1(f"SELECT count(*) FROM {rel} WHERE {where}") == 0:
        uncovered.append(rel)
        continue
    written = 0
    for c, typ, cat, ecat in cols:
        if cat == "A":
            val = "{" + json.dumps(FREE) + "," + json.dumps(EMAIL) + "}"
        elif typ in ("jsonb", "json"):
            val = json.dumps({k: v for k, v in payload.items()} | {"email": EMAIL, "phone": PHONE, "name": f"{FIRST} {LAST}"})
        elif cat == "S":
            val = None  # per row, below (unique columns)
        else:
            val = FREE
        q("SAVEPOINT s")
        try:
            if val is None:
                q(f"""UPDATE {rel} x SET "{c}" = (%s || ' #' || n.n)::{typ}
                        FROM (SELECT ctid AS id, row_number() OVER () AS n FROM {rel} WHERE {where}) n WHERE x.ctid = n.id""",
                  (FREE,))
            else:
                q(f'UPDATE {rel} SET "{c}" = %s::{typ} WHERE {where}', (val,))
            q("RELEASE SAVEPOINT s")
            written += 1
        except psycopg2.Error:
            q("ROLLBACK TO SAVEPOINT s")   # a CHECK or type refuses free text: the column holds a vocabulary
    covered.append(f"{rel}({written}/{len(cols)})")
print("canaries written:", ", ".join(covered))
if uncovered:
    print("no row for the canary (table empty):", ", ".join(uncovered))

# ---- C: refused profiling, in a segment; D: a customer with no data -------------------------
C = q1("SELECT ecrm.upsert_customer(%s)", (json.dumps({"first_name": "Ccanary", "email": "c.person@example.org", "country": "GB"}),))
D = q1("SELECT ecrm.upsert_customer(%s)", (json.dumps({"first_name": "Dcanary", "email": "d.person@example.org"}),))
q("SELECT ecrm.record_consent(%s, 'profiling', false)", (C,))
q("SELECT ecrm.add_segment_members('canary_static', ARRAY[%s]::bigint[])", (C,))
q("SELECT ecrm.refresh_segment('canary_gb')") if q1("SELECT to_regprocedure('ecrm.refresh_segment(text)')") else None
assert q1("SELECT ecrm.in_segment(%s, 'canary_static')", (C,)), "C is in a segment"

# ---- 4: every view has a twin or a reason --------------------------------------------------
for (v,) in q("""SELECT c.relname FROM pg_class c LEFT JOIN ecrm.masked_view_rule r ON r.view_name = c.oid
                  WHERE c.relnamespace = 'ecrm'::regnamespace AND c.relkind IN ('v', 'm')
                    AND to_regclass('ecrm_masked.' || quote_ident(c.relname)) IS NULL
                    AND (r.view_name IS NULL OR r.twin OR coalesce(r.note, '') = '')"""):
    finding(f"view ecrm.{v} has no masked twin and no rule saying why (ecrm.set_masked_view_rule, a note)")

# ---- 2: as the analyst ---------------------------------------------------------------------
q("SET max_parallel_workers_per_gather = 0")
q("SET SESSION AUTHORIZATION ecrm_canary_analyst")
assert q1("SELECT session_user") == "ecrm_canary_analyst"

rels = q("""SELECT c.oid::regclass::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
               AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'
               AND has_table_privilege(c.oid, 'SELECT') ORDER BY 1""")
print(f"analyst reads {len(rels)} relations")
for (rel,) in rels:
    q("SAVEPOINT s")
    try:
        hits = q(f"SELECT left(x::text, 300) FROM {rel} x WHERE lower(x::text) ~ %s LIMIT 3", (FRAG_RE,))
        q("RELEASE SAVEPOINT s")
        for (row,) in hits:
            finding(f"{rel} shows a canary ({has_canary(row)}): {row}")
    except psycopg2.Error as e:
        q("ROLLBACK TO SAVEPOINT s")
        finding(f"analyst cannot read {rel}, which it may SELECT: {e.pgerror.strip()}")
        continue
    # error messages: a cast error quotes the value it could not cast (masked or not)
    for (col,) in q("""SELECT a.attname FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
                        WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped
                          AND t.typcategory IN ('S', 'U', 'A')""", (rel,)):
        q("SAVEPOINT s")
        try:
            q(f'SELECT count(*) FROM {rel} x WHERE x."{col}"::text::numeric > 0')
            q("RELEASE SAVEPOINT s")
        except psycopg2.Error as e:
            q("ROLLBACK TO SAVEPOINT s")
            if has_canary(e.pgerror):
                finding(f"error reading {rel}.{col} echoes a canary: {e.pgerror.strip()[:300]}")

# Every function the analyst may execute, but pure kernel functions (immutable C: they read no table)
# and aggregate and type support functions.
funcs = q("""
    SELECT p.oid, p.oid::regprocedure::text, p.proname, p.pronargs, p.pronargdefaults,
           coalesce(p.proargnames, '{}'), ARRAY(SELECT format_type(t, NULL) FROM unnest(p.proargtypes::oid[]) t),
           p.prokind, p.proretset
      FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang
     WHERE n.nspname IN ('ecrm', 'ecrm_masked') AND has_function_privilege(p.oid, 'EXECUTE')
       AND p.prokind = 'f' AND p.prorettype NOT IN ('trigger'::regtype, 'event_trigger'::regtype, 'internal'::regtype, 'cstring'::regtype)
       AND NOT ('internal'::regtype = ANY (p.proargtypes::oid[]))
       AND NOT (l.lanname IN ('c', 'internal') AND p.provolatile = 'i')
     ORDER BY 2""")
SAMPLE = {"bigint": None, "integer": "3", "smallint": "1", "text": "'x'", "jsonb": "'{}'::jsonb", "boolean": "true",
          "interval": "'7 days'::interval", "timestamp with time zone": "now()", "double precision": "0.5",
          "numeric": "1", "date": "current_date", "regclass": "'ecrm_masked.customers'::regclass",
          "bigint[]": None, "text[]": "'{x}'::text[]", "name[]": "'{}'::name[]", "regrole": "'ecrm_analyst'::regrole",
          "double precision[]": "'{0.5}'::float8[]"}
called = 0


def call(sql):
    q("SAVEPOINT s")
    try:
        rows = q(sql)
        q("RELEASE SAVEPOINT s")
        return rows, None
    except psycopg2.Error as e:
        q("ROLLBACK TO SAVEPOINT s")
        return None, e.pgerror or str(e)


for oid, sig, name, nargs, ndefaults, argnames, argtypes, kind, retset in funcs:
    needed = nargs - ndefaults
    if any(t not in SAMPLE for t in argtypes[:needed]):
        print(f"  not called (argument types): {sig}")
        continue
    results = {}
    for who, cid in (("A", A), ("B", B), ("C", C), ("D", D)):
        args = []
        for t in argtypes[:needed]:
            if t == "bigint":
                args.append(str(cid))
            elif t == "bigint[]":
                args.append(f"ARRAY[{cid}]::bigint[]")
            else:
                args.append(SAMPLE[t])
        sql = f"SELECT x::text FROM {sig.split('(')[0]}({', '.join(args)}) x" if retset or True else None
        rows, err = call(sql)
        called += 1
        out = err if err is not None else json.dumps(rows)
        if has_canary(out):
            finding(f"{sig} for customer {who} shows a canary ({has_canary(out)}): {out[:300]}")
        # errors differ in the ids they quote; compare answers with the id itself blanked
        results[who] = re.sub(r"\b%d\b" % cid, "<id>", out)
    takes_customer = any(t in ("bigint", "bigint[]") for t in argtypes[:needed]) and \
        any(n in ("customer_id", "customer_ids", "id", "ids") for n in argnames[:needed])
    if takes_customer and results.get("C") != results.get("D"):
        finding(f"{sig} tells a customer hidden from the masked views (refused profiling) from one without data: "
                f"{results.get('C')[:200]} vs {results.get('D')[:200]}")
print(f"analyst called {called} function calls ({len(funcs)} functions)")

q("RESET SESSION AUTHORIZATION")
db.close()
if os.environ.get("ECRM_CANARY_KEEP") != "1":
    c = connect()
    c.cursor().execute(f"DROP DATABASE {DB}")
    c.cursor().execute("DROP ROLE ecrm_canary_analyst")
    c.close()
if findings:
    print(f"{len(findings)} finding(s)")
    sys.exit(1)
print("ok: no canary reaches an analyst")
