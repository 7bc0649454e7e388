#!/usr/bin/env bash
# Concurrency test of identity resolution: pgbench runs 4 clients for ~20 s of overlapping upserts (by
# identities in several spellings), merges of random pairs of people and unmerges (cascading) on eight people.
# pgbench (15) counts a transaction that fails with 40001 or 40P01 as a failure and goes on, and aborts the
# client on any other error: so a clean exit means every error a client saw was one of the retryable
# SQLSTATEs the README documents.  Afterwards the record must be sound: every identity on a live customer,
# all of a person's identities on one customer, each golden record only of its own people; and once every
# merge is undone each person has exactly their own profile back.
# Needs PGHOST/PGPORT/PGUSER (test/run.sh sets them).  ECRM_CONCURRENCY_SECONDS overrides the 20 s.
set -euo pipefail
BIN=/usr/lib/postgresql/${ECRM_PG_MAJOR:-15}/bin
DB=ecrm_merge_concurrency
WORK=$(mktemp -d /tmp/ecrm-conc.XXXXXX)
trap 'rm -rf "$WORK"; "$BIN/dropdb" --if-exists "$DB"' EXIT
q() { "$BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -d "$DB" "$@"; }
fail=0

"$BIN/dropdb" --if-exists "$DB"
"$BIN/createdb" "$DB"
q <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION ecrm;
SET ecrm.realtime_resolution = 'off';
CREATE SCHEMA conc;
CREATE TABLE conc.person (p int PRIMARY KEY, firsts text[], last text, email1 text, email2 text, phone text,
                          profile bigint);
INSERT INTO conc.person (p, firsts, last, email1, email2, phone) VALUES
    (1, '{Anna,Ana}', 'Berg', 'anna.berg@example.org', 'aberg@mail.example.com', '+441632960101'),
    (2, '{Bob,Robert}', 'Ray', 'bob.ray@example.org', 'bray@mail.example.com', '+441632960102'),
    (3, '{Cato,Cat}', 'Poe', 'cato.poe@example.org', 'cpoe@mail.example.com', '+441632960103'),
    (4, '{Dana,Dina}', 'Orr', 'dana.orr@example.org', 'dorr@mail.example.com', '+441632960104'),
    (5, '{Eve,Eva}', 'Fox', 'eve.fox@example.org', 'efox@mail.example.com', '+441632960105'),
    (6, '{Finn,Fin}', 'Gale', 'finn.gale@example.org', 'fgale@mail.example.com', '+441632960106'),
    (7, '{Gus,Gustav}', 'Holm', 'gus.holm@example.org', 'gholm@mail.example.com', '+441632960107'),
    (8, '{Hana,Hanna}', 'Ito', 'hana.ito@example.org', 'hito@mail.example.com', '+441632960108');
UPDATE conc.person SET profile = ecrm.upsert_customer(jsonb_build_object(
    'first_name', firsts[1], 'last_name', last, 'email', email1, 'phone', phone,
    'identities', jsonb_build_array(jsonb_build_object('kind', 'email', 'value', email2))));

-- One client step: op 1-5 an upsert of person p, 6-7 a merge of persons p and q, 8-10 an unmerge.
CREATE FUNCTION conc.step(op int, p int, q int, r int) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    x conc.person;
    y conc.person;
    m bigint;
BEGIN
    SELECT * INTO x FROM conc.person WHERE person.p = step.p;
    IF op <= 5 THEN
        PERFORM ecrm.upsert_customer(jsonb_strip_nulls(jsonb_build_object(
            'email', CASE r % 3 WHEN 0 THEN x.email1 WHEN 1 THEN upper(x.email2) ELSE ' ' || initcap(x.email1) END,
            'phone', CASE WHEN r % 2 = 0 THEN regexp_replace(x.phone, '^\+44(\d{4})', '+44 \1 ') END,
            'first_name', x.firsts[1 + r % 2],
            'last_name', CASE WHEN r % 5 = 0 THEN x.last END)));
    ELSIF op <= 7 THEN
        SELECT * INTO y FROM conc.person WHERE person.p = step.q;
        IF ecrm.resolve_customer(x.profile) <> ecrm.resolve_customer(y.profile) THEN
            PERFORM ecrm.merge_customers(ARRAY[ecrm.resolve_customer(x.profile), ecrm.resolve_customer(y.profile)]);
        END IF;
    ELSE
        -- a merge not being undone by another client right now
        SELECT e.merge_id INTO m FROM ecrm.merge_event e WHERE e.unmerged_at IS NULL
         ORDER BY random() LIMIT 1 FOR UPDATE SKIP LOCKED;
        IF m IS NOT NULL THEN
            PERFORM ecrm.unmerge(m, cascade => true);
        END IF;
    END IF;
END
$$;
SQL

cat >"$WORK/step.sql" <<'EOF'
\set op random(1, 10)
\set p random(1, 8)
\set q random(1, 8)
\set r random(0, 29)
SELECT conc.step(:op, :p, :q, :r);
EOF
if PGOPTIONS='-c ecrm.realtime_resolution=off -c client_min_messages=warning' \
   "$BIN/pgbench" -n -c 4 -j 2 -T "${ECRM_CONCURRENCY_SECONDS:-20}" -f "$WORK/step.sql" --failures-detailed \
       "$DB" >"$WORK/out" 2>"$WORK/err"; then
    grep -E 'number of (transactions actually processed|failed transactions|serialization failures|deadlock failures)' \
        "$WORK/out" | sed 's/^/    /'
    echo "ok: every error a client saw was 40001 or 40P01"
else
    cat "$WORK/out"
    grep -E 'aborted|ERROR' "$WORK/err" | head -20
    echo "FAIL: a client saw an error other than 40001 / 40P01 (pgbench aborted it)"
    fail=1
fi
if ! grep -q 'number of transactions actually processed: [1-9]' "$WORK/out"; then
    echo "FAIL: no transaction went through"
    fail=1
fi

check() {   # name, query that returns the offending rows (none when sound)
    local bad
    bad=$(q -c "$2")
    if [ -z "$bad" ]; then echo "ok: $1"; else echo "FAIL: $1:"; echo "$bad" | head -10 | sed 's/^/    /'; fail=1; fi
}
# the people of a profile: the person it was created for; of a value: the person it belongs to
PEOPLE_OF="WITH g AS (SELECT ecrm.resolve_customer(cp.profile) AS live, cp.p FROM conc.person cp),
            v AS (SELECT cp.p, x.v FROM conc.person cp,
                         unnest(cp.firsts || ARRAY[cp.last, cp.email1, cp.email2, cp.phone]) x(v))"
sound() {
    check "$1: every identity points to a live customer" \
        "SELECT i.value, p.status FROM ecrm.identity i JOIN ecrm.customer_profile p USING (customer_id) WHERE p.status <> 'active'"
    check "$1: a person's identities are all on the customer their profile belongs to" \
        "SELECT cp.p, i.value, i.customer_id, ecrm.resolve_customer(cp.profile) FROM conc.person cp
           JOIN ecrm.identity i ON i.value IN (cp.email1, cp.email2, cp.phone)
          WHERE i.customer_id <> ecrm.resolve_customer(cp.profile)"
    check "$1: every identity is there" \
        "SELECT cp.p, x.v FROM conc.person cp, unnest(ARRAY[cp.email1, cp.email2, cp.phone]) x(v)
          WHERE NOT EXISTS (SELECT FROM ecrm.identity i WHERE i.value = x.v)"
    check "$1: each live customer's contact fields are of its own people" \
        "$PEOPLE_OF
         SELECT c.customer_id, f.v FROM ecrm.customer_profile c,
                unnest(ARRAY[c.first_name, c.last_name, ecrm.normalize_email(c.email), c.phone]) f(v)
          WHERE c.status = 'active' AND f.v IS NOT NULL
            AND NOT EXISTS (SELECT FROM v JOIN g ON g.p = v.p WHERE v.v = f.v AND g.live = c.customer_id)"
}
sound "after the run"
q -c "SELECT ecrm.unmerge(e.merge_id, cascade => true) FROM ecrm.merge_event e
       WHERE e.unmerged_at IS NULL AND NOT EXISTS (SELECT FROM ecrm.merge_event l WHERE l.merge_id > e.merge_id
             AND l.unmerged_at IS NULL AND (l.survivor_id = e.survivor_id OR e.survivor_id = ANY (l.merged_ids)))
       ORDER BY e.merge_id DESC" >/dev/null
# cascades may leave earlier merges: undo until none is left
for _ in 1 2 3 4 5 6 7 8 9 10; do
    n=$(q -c "SELECT count(*) FROM ecrm.merge_event WHERE unmerged_at IS NULL")
    [ "$n" = 0 ] && break
    q -c "SELECT ecrm.unmerge(max(merge_id), cascade => true) FROM ecrm.merge_event WHERE unmerged_at IS NULL" >/dev/null
done
check "all merges undone" "SELECT merge_id FROM ecrm.merge_event WHERE unmerged_at IS NULL"
sound "after undoing every merge"
check "each person has their own profile back, with their own identities only" \
    "SELECT cp.p, p.status, array_agg(i.value ORDER BY i.value) FROM conc.person cp
       JOIN ecrm.customer_profile p ON p.customer_id = cp.profile
       LEFT JOIN ecrm.identity i ON i.customer_id = cp.profile
      GROUP BY cp.p, p.status, cp.email1, cp.email2, cp.phone
     HAVING p.status <> 'active'
         OR array_agg(i.value ORDER BY i.value) <> ARRAY(SELECT unnest(ARRAY[cp.email1, cp.email2, cp.phone]) ORDER BY 1)"
check "no profile is left but the people's" \
    "SELECT customer_id FROM ecrm.customer_profile WHERE customer_id NOT IN (SELECT profile FROM conc.person)"
exit $fail
