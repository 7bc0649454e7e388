#!/usr/bin/env bash
# Run every ecrm test against a throwaway cluster:
#   pg_regress (test/sql) twice, the second time under force_parallel_mode = regress, isolation
#   (test/isolation/specs), pgTAP (test/pgtap), shell tests (test/shell),
#   and, when ../shared/tools/fuzz_sql.py exists and ECRM_FUZZ_ITERATIONS > 0, a short fuzz run.
# Installs what is missing first (apt), builds and installs ecrm. Exits non-zero on any failure and ends
# with a line "N passed, N failed".
#
#   bash test/run.sh                 everything
#   ECRM_ONLY=regress|parallel|isolation|pgtap|shell|fuzz bash test/run.sh   (regress runs parallel too)
#   ECRM_KEEP=1 bash test/run.sh     keep the cluster running afterwards
set -uo pipefail
. "$(dirname "$0")/lib.sh"
cd "$ECRM_TOP"

ONLY=${ECRM_ONLY:-all}
FUZZ_ITERATIONS=${ECRM_FUZZ_ITERATIONS:-0}
PASS=0
FAIL=0
FAILED_NAMES=()

pass() { PASS=$((PASS + 1)); }
fail() { FAIL=$((FAIL + 1)); FAILED_NAMES+=("$1"); }
want() { [ "$ONLY" = all ] || [ "$ONLY" = "$1" ]; }

ecrm_install_deps || { echo "0 passed, 1 failed"; exit 1; }
ecrm_build_install || { echo "0 passed, 1 failed"; exit 1; }
ecrm_cluster_start || { echo "0 passed, 1 failed"; exit 1; }
trap ecrm_cluster_stop EXIT

PGX=$(ecrm_sys_bindir)/pg_config

# Count pg_regress results: "test X ... ok|FAILED" (PostgreSQL 15) or "ok N - X" / "not ok N - X" (16 on).
# A run that failed without naming a test counts as one failure.
count_regress() {
    local log=$1 suite=$2 rc=$3 seen=0 line name
    while IFS= read -r line; do
        seen=1
        name=$(sed -E 's/^(test|ok|not ok)[ 0-9+-]*[ ]*([A-Za-z0-9_.-]+).*/\2/' <<<"$line")
        if grep -qE '^test .*\.\.\. ok|^ok ' <<<"$line"; then pass; else fail "$suite/$name"; fi
    done < <(grep -E '^(test |ok |not ok )' "$log")
    if [ "$seen" = 0 ] && [ "$rc" != 0 ]; then fail "$suite"; fi
}

if want regress; then
    ecrm_log "pg_regress"
    rm -rf results regression.diffs regression.out
    make -s installcheck PG_CONFIG="$PGX" ISOLATION= >/tmp/ecrm-regress.$$ 2>&1
    rc=$?
    cat /tmp/ecrm-regress.$$
    count_regress /tmp/ecrm-regress.$$ regress $rc
    [ -f regression.diffs ] && head -200 regression.diffs
    rm -f /tmp/ecrm-regress.$$
fi

# The same suite again with every query that can run in a parallel worker forced into one, as
# PostgreSQL tests itself: a function wrongly labelled PARALLEL SAFE, or session state a worker does
# not share, fails here.  Its results count on their own, named parallel/<test>.
if want regress || want parallel; then
    ecrm_log "pg_regress under force_parallel_mode = regress"
    rm -rf results regression.diffs regression.out
    PGOPTIONS="${PGOPTIONS:-} -c force_parallel_mode=regress" \
        make -s installcheck PG_CONFIG="$PGX" ISOLATION= >/tmp/ecrm-regress.$$ 2>&1
    rc=$?
    cat /tmp/ecrm-regress.$$
    count_regress /tmp/ecrm-regress.$$ parallel $rc
    [ -f regression.diffs ] && head -200 regression.diffs
    rm -f /tmp/ecrm-regress.$$
fi

if want isolation && ls test/isolation/specs/*.spec >/dev/null 2>&1; then
    ecrm_log "isolation"
    rm -rf output_iso
    mkdir -p output_iso
    make -s installcheck PG_CONFIG="$PGX" REGRESS= >/tmp/ecrm-iso.$$ 2>&1
    rc=$?
    cat /tmp/ecrm-iso.$$
    count_regress /tmp/ecrm-iso.$$ isolation $rc
    [ -f output_iso/regression.diffs ] && head -200 output_iso/regression.diffs
    rm -f /tmp/ecrm-iso.$$
fi

if want pgtap && ls test/pgtap/*.sql >/dev/null 2>&1; then
    ecrm_log "pgTAP"
    psql -q -X -v ON_ERROR_STOP=1 -c 'CREATE DATABASE ecrm_tap' \
        && psql -q -X -v ON_ERROR_STOP=1 -d ecrm_tap -c 'CREATE EXTENSION pgtap; CREATE EXTENSION ecrm;' \
        || fail "pgtap/setup"
    for f in test/pgtap/*.sql; do
        if pg_prove -d ecrm_tap --failures "$f" >/tmp/ecrm-tap.$$ 2>&1 && grep -q 'Result: PASS' /tmp/ecrm-tap.$$; then
            pass
            grep -E '^Files=' /tmp/ecrm-tap.$$ | sed "s|^|    $f: |"
        else
            cat /tmp/ecrm-tap.$$
            fail "$f"
        fi
    done
    rm -f /tmp/ecrm-tap.$$
fi

if want shell && ls test/shell/*.sh >/dev/null 2>&1; then
    for f in test/shell/*.sh; do
        ecrm_log "shell: $f"
        if bash "$f"; then pass; else fail "$f"; fi
    done
fi

FUZZ=$ECRM_TOP/../shared/tools/fuzz_sql.py
if want fuzz && [ "$FUZZ_ITERATIONS" -gt 0 ] && [ -f "$FUZZ" ]; then
    ecrm_log "fuzz ($FUZZ_ITERATIONS iterations per function)"
    psql -q -X -c 'CREATE DATABASE ecrm_fuzz' && psql -q -X -d ecrm_fuzz -c 'CREATE EXTENSION ecrm'
    if PGDATABASE=ecrm_fuzz /usr/bin/python3 "$FUZZ" --schema ecrm --iterations "$FUZZ_ITERATIONS" \
            --timeout-ms 5000 ${ECRM_FUZZ_SKIP:+--skip "$ECRM_FUZZ_SKIP"} >/tmp/ecrm-fuzz.$$ 2>&1; then
        tail -15 /tmp/ecrm-fuzz.$$
        pass
    else
        cat /tmp/ecrm-fuzz.$$
        fail fuzz
    fi
    rm -f /tmp/ecrm-fuzz.$$
fi

if [ ${#FAILED_NAMES[@]} -gt 0 ]; then
    echo "failed: ${FAILED_NAMES[*]}"
    grep -E 'TRAP|terminated by signal|server process .* was terminated' "$ECRM_CLUSTER_DIR/server.log" | head -20
fi
echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
