#!/usr/bin/env bash
# The settings of ecrm hold in parallel plans when the key is in the cluster's configuration (ALTER SYSTEM,
# like postgresql.conf) and ecrm's library is first loaded inside a parallel operation: a new session whose
# first query is a forced-parallel plan reaching ecrm's C functions through a SQL or PL/pgSQL function, a
# masked view, or a parallel build of the blocking indexes.  Each session must get the serial answer and
# no "cannot be set during a parallel operation" warning.  Needs PGHOST/PGPORT/PGUSER.
set -euo pipefail
BIN=/usr/lib/postgresql/${ECRM_PG_MAJOR:-15}/bin
DB=ecrm_parallel_key
KEY=parallel-shell-key-0123456789abcdef
OUT=$(mktemp /tmp/ecrm-parkey.XXXXXX)
cleanup() {
    "$BIN/psql" -X -q -c "LOAD 'ecrm'" -c "ALTER SYSTEM RESET ecrm.pseudonym_key" -c "SELECT pg_reload_conf()" >/dev/null || true
    "$BIN/dropdb" --if-exists "$DB"
    rm -f "$OUT"
}
trap cleanup EXIT
unset PGOPTIONS
PARALLEL="-c force_parallel_mode=on -c parallel_setup_cost=0 -c parallel_tuple_cost=0
  -c min_parallel_table_scan_size=0 -c min_parallel_index_scan_size=0 -c max_parallel_workers_per_gather=2
  -c max_parallel_maintenance_workers=2 -c parallel_leader_participation=off"
# One new session per call: serial, or with every parallel plan forced.
serial() { "$BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -d $DB -c "$1"; }
parallel() { PGOPTIONS="$PARALLEL" "$BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -d $DB "$@"; }

fail=0
check() { if [ "$2" = "$3" ]; then echo "ok: $1"; else echo "FAIL: $1"; echo "  want: $2"; echo "  got:  $3"; fail=1; fi; }
no_warning() {
    if grep -q . "$OUT"; then echo "FAIL: $1"; sed 's/^/  /' "$OUT"; fail=1; else echo "ok: $1"; fi
}

"$BIN/createdb" $DB
serial "CREATE EXTENSION ecrm"
serial "SELECT count(*) FROM ecrm.generate_demo_data(400, 5, '2026-05-01 00:00:00+00')" >/dev/null
# A user's own functions over ecrm's kernel; neither is inlined, so the C functions are looked up while the
# parallel plan runs.
serial "CREATE FUNCTION public.pseudo_sql(text) RETURNS text LANGUAGE sql STABLE PARALLEL SAFE
          SET search_path = pg_catalog AS 'SELECT ecrm.pseudonym(\$1)'"
serial "CREATE FUNCTION public.pseudo_plpgsql(text) RETURNS text LANGUAGE plpgsql STABLE PARALLEL SAFE
          AS 'BEGIN RETURN ecrm.pseudonym_email(\$1); END'"

# The key only in the cluster's configuration, as an administrator sets it.
"$BIN/psql" -X -q -v ON_ERROR_STOP=1 -c "LOAD 'ecrm'" -c "ALTER SYSTEM SET ecrm.pseudonym_key = '$KEY'" -c "SELECT pg_reload_conf()" >/dev/null
for i in $(seq 50); do
    [ "$(serial "SELECT current_setting('ecrm.pseudonym_key', true)")" = "$KEY" ] && break
    [ "$i" = 50 ] && { echo "FAIL: the reloaded key does not reach new sessions"; exit 1; }
    sleep 0.1
done

Q_SQL="SELECT md5(string_agg(public.pseudo_sql(email), ',' ORDER BY customer_id)) FROM ecrm.customer_profile"
Q_PLPGSQL="SELECT md5(string_agg(public.pseudo_plpgsql(email), ',' ORDER BY customer_id)) FROM ecrm.customer_profile"
Q_MASKED="SELECT md5(string_agg(m::text, ',' ORDER BY m.customer_id)) FROM ecrm_masked.customers m"
Q_DIRECT="SELECT md5(string_agg(ecrm.pseudonym(email), ',' ORDER BY customer_id)) FROM ecrm.customer_profile"

plan=$(parallel -c "EXPLAIN (COSTS OFF) $Q_SQL")
case "$plan" in *Gather*) echo "ok: the plans run in parallel workers" ;; *) echo "FAIL: no parallel plan"; echo "$plan"; fail=1 ;; esac

for q in "$Q_SQL" "$Q_PLPGSQL" "$Q_MASKED"; do
    want=$(serial "$q")
    # the same query twice in one new session: the first loads ecrm inside the parallel plan
    got=$(parallel -c "$q" -c "$q" -c "$Q_DIRECT" 2>"$OUT" | tr '\n' ' ' || true)
    check "first query in parallel: ${q:0:60}..." "$want $want $(serial "$Q_DIRECT") " "$got"
    no_warning "  ... and no warning"
done

# A parallel index build over ecrm's functions in a new session (the leader and both workers load ecrm
# inside the parallel operation); the session keeps its key afterwards.
n=$(parallel -c "SELECT ecrm.create_blocking_indexes()" -c "$Q_DIRECT" 2>"$OUT" | tr '\n' ' ' || true)
check "create_blocking_indexes in parallel, then the key still works" "7 $(serial "$Q_DIRECT") " "$n"
no_warning "  ... and no warning"

# Setting an ecrm parameter inside a parallel operation would change one process only: still refused.
serial "CREATE FUNCTION public.set_reason(text) RETURNS text LANGUAGE plpgsql VOLATILE PARALLEL SAFE
          AS 'BEGIN RETURN set_config(''ecrm.lifecycle_reason'', \$1, true); END'"
err=$(parallel -c "SELECT public.set_reason(email) FROM ecrm.customer_profile LIMIT 1" 2>&1 >/dev/null || true)
case "$err" in
    *'parameter "ecrm.lifecycle_reason" cannot be set during a parallel operation'*)
        echo "ok: SET of an ecrm parameter in a parallel worker is still refused" ;;
    *) echo "FAIL: SET in a parallel worker: $err"; fail=1 ;;
esac
exit $fail
