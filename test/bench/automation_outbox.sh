#!/usr/bin/env bash
# Benchmark: two workers (test/outbox_worker.py) drain 100,000 outbox messages concurrently; every message
# is sent exactly once.  Compared, in the same run, with the hand-written way: two workers that read the
# oldest pending rows and mark them done without SKIP LOCKED claims (they send some messages twice).
#
#   bash test/bench/automation_outbox.sh [MESSAGES]
#
# Starts its own throwaway cluster (test/lib.sh; ECRM_PGROOT honoured). Prints every figure.
set -euo pipefail
N=${1:-100000}
. "$(dirname "$0")/../lib.sh"
cd "$ECRM_TOP"
ecrm_build_install
ecrm_cluster_start
trap ecrm_cluster_stop EXIT
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
q -c 'CREATE DATABASE bench'
export PGDATABASE=bench
q -c 'CREATE EXTENSION ecrm'
TMP=$(mktemp -d)
fill() {
    q -c "TRUNCATE ecrm.outbox" -c "INSERT INTO ecrm.outbox (topic, channel, recipient, subject, body, dedupe_key)
          SELECT 'message', 'email', 'c' || i || '@example.org', 'Hello ' || i, 'Body of message ' || i, 'bench-' || i
            FROM generate_series(1, $N) i" -c "ANALYZE ecrm.outbox"
}

echo "== data: $N messages in ecrm.outbox, two concurrent consumers, batches of 100"
fill
t0=$(date +%s.%N)
/usr/bin/python3 test/outbox_worker.py --worker w1 --drain --quiet --log "$TMP/w1.log" &
p1=$!
/usr/bin/python3 test/outbox_worker.py --worker w2 --drain --quiet --log "$TMP/w2.log" &
p2=$!
wait $p1 $p2
t1=$(date +%s.%N)
ecrm_s=$(echo "$t1 - $t0" | bc -l)
lines=$(cat "$TMP"/w1.log "$TMP"/w2.log | wc -l)
distinct=$(cut -f1 "$TMP"/w1.log "$TMP"/w2.log | sort -u | wc -l)
w1=$(wc -l <"$TMP/w1.log"); w2=$(wc -l <"$TMP/w2.log")
printf '== ecrm.outbox_claim (FOR UPDATE SKIP LOCKED) + ecrm.outbox_done: %.2f s, %.0f messages/s\n' "$ecrm_s" "$(echo "$N / $ecrm_s" | bc -l)"
echo "   sent $lines lines for $distinct distinct messages (w1 $w1, w2 $w2); duplicates: $((lines - distinct))"
echo "   outbox: $(q -c "SELECT string_agg(status || ' ' || n, ', ') FROM (SELECT status, count(*) n FROM ecrm.outbox GROUP BY 1 ORDER BY 1) x"); messages claimed more than once: $(q -c 'SELECT count(*) FROM ecrm.outbox WHERE attempts > 1')"
[ "$lines" -eq "$N" ] && [ "$distinct" -eq "$N" ] || { echo "FAIL: not exactly once"; exit 1; }

# the hand-written way: read the oldest pending rows, send, mark done
fill
cat >"$TMP/naive.py" <<'PY'
import sys, psycopg2
conn = psycopg2.connect(''); conn.autocommit = True; cur = conn.cursor()
out = open(sys.argv[1], 'w')
while True:
    cur.execute("SELECT message_id, recipient, subject FROM ecrm.outbox WHERE status = 'pending' ORDER BY message_id LIMIT 100")
    rows = cur.fetchall()
    if not rows:
        break
    for r in rows:
        out.write('%s\t%s\t%s\n' % r)
    cur.execute("UPDATE ecrm.outbox SET status = 'done', done_at = now() WHERE message_id = ANY (%s)", ([r[0] for r in rows],))
PY
t0=$(date +%s.%N)
/usr/bin/python3 "$TMP/naive.py" "$TMP/n1.log" & p1=$!
/usr/bin/python3 "$TMP/naive.py" "$TMP/n2.log" & p2=$!
wait $p1 $p2
t1=$(date +%s.%N)
naive_s=$(echo "$t1 - $t0" | bc -l)
nlines=$(cat "$TMP"/n1.log "$TMP"/n2.log | wc -l)
ndistinct=$(cut -f1 "$TMP"/n1.log "$TMP"/n2.log | sort -u | wc -l)
printf '== hand-written (SELECT oldest pending, then UPDATE done; no claim): %.2f s, %.0f messages/s\n' "$naive_s" "$(echo "$N / $naive_s" | bc -l)"
echo "   sent $nlines lines for $ndistinct distinct messages; duplicates: $((nlines - ndistinct))"
printf '== ratio: ecrm %.2fx the time of the hand-written loop, and no message sent twice (hand-written: %d sent twice)\n' \
    "$(echo "$ecrm_s / $naive_s" | bc -l)" "$((nlines - ndistinct))"
rm -rf "$TMP"
