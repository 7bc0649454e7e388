#!/usr/bin/env bash
# Before/after benchmark of the single-row paths: does build B slow upsert_customer, record_order,
# find_matches or recommend down against build A?  (The project's rule: by no more than 10%.)
#
#   bash test/bench/single_row_paths.sh [REF_A [REF_B]]
#       REF_A  default e6774bf (the 0.1.0 release);  REF_B  default HEAD of this checkout.
#       WORKTREE as a ref means this checkout's files as they are (tracked changes included, untracked
#       files not: `git stash create`).
#
#   ECRM_BENCH_CUSTOMERS=50000  demo shop size (ecrm.generate_demo_data; 50,000 -> ~50,700 profiles,
#                               ~81,000 orders, ~610,000 interactions), same seed and as_of in both builds
#   ECRM_BENCH_SEED=42          demo seed; also the base of pgbench's --random-seed
#   ECRM_BENCH_ROUNDS=5         rounds per build
#   ECRM_BENCH_SECONDS=5        pgbench -T of every operation in every round
#   ECRM_BENCH_CLIENTS=1        pgbench clients
#   ECRM_BENCH_OPS="upsert_new upsert_existing upsert_match record_order find_matches recommend"
#   ECRM_BENCH_OUT=DIR          where summary.json and rounds.tsv go (default /tmp/ecrm-single-row-paths-<time>)
#   ECRM_BENCH_PGROOT_PREFIX=P  the private PostgreSQL roots are P-A and P-B (default /tmp/ecrm-bench-pgroot);
#                               roots the script made are removed at the end
#   ECRM_PG_OPTIONS             extra server options for both clusters (lib.sh)
#   The defaults take about 8 minutes on 2 cores: builds 1 min, demo data and training 1-2 min, measuring
#   6 operations x 2 builds x 5 rounds x 5 s = 5 min.
#
# What it does: git archive of each ref into a temporary directory, built and installed into its own
# private PostgreSQL root (lib.sh, ECRM_PGROOT); one throwaway cluster per build, both running; the same demo
# shop in both (generated in parallel), the customer match model trained by EM (train_match_model('customer'))
# and the item-to-item recommender trained (train_item_model()); then the signatures of the four functions
# are compared (as \df shows them: arguments with defaults and result) and a difference is reported, not
# silently measured; a sanity pass checks that find_matches and recommend return rows in both builds.
#
# The operations (pgbench custom scripts, -M prepared; each picks its customer from a small lookup table of
# active demo customers with email and birth date whose person has no duplicate, by a primary-key read that
# costs the same in both builds):
#   upsert_new       a new person (a first name, a last name and place of two random customers, a random
#                    birth date, a new email): insert, identities, real-time resolution that finds nothing
#   upsert_existing  an existing customer sent again by email with name, city and one changed attribute:
#                    found by identity, updated, resolved
#   upsert_match     a typo'd copy of an existing customer with a new email: insert, then real-time
#                    resolution that merges it into that customer (or queues it for review)
#   record_order     a two-line order of existing products for an existing customer
#   find_matches     a typo'd copy of an existing customer (read only)
#   recommend        10 recommendations (model item_item) for a customer who has ordered
#
# Measurement: the operations run one after the other in each round, and each operation runs in build A
# and in build B back to back, A first in odd rounds and B first in even rounds (ABBA), with the same
# --random-seed, so the two builds see the same customers and the machine's load hits both alike.  Per
# round: tps, and p50/p95 latency from pgbench's per-transaction log.  Printed per operation: the median over
# the rounds and the spread (min-max) for A and B, the ratios B/A of the medians, and the median (min-max) of
# the per-round paired ratios B/A of p50.  A ratio above 1.10 is flagged; run A against A (or the same code
# twice) to see the noise floor of the machine at the time.  Load average (/proc/loadavg) is printed at the
# start and end of the measurement.  Exit status is non-zero when an operation failed in either build.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
REPO=$ECRM_TOP

REF_A=${1:-e6774bf}
REF_B=${2:-HEAD}
CUSTOMERS=${ECRM_BENCH_CUSTOMERS:-50000}
SEED=${ECRM_BENCH_SEED:-42}
ROUNDS=${ECRM_BENCH_ROUNDS:-5}
SECS=${ECRM_BENCH_SECONDS:-5}
CLIENTS=${ECRM_BENCH_CLIENTS:-1}
read -r -a OPS <<<"${ECRM_BENCH_OPS:-upsert_new upsert_existing upsert_match record_order find_matches recommend}"
ROOT_PREFIX=${ECRM_BENCH_PGROOT_PREFIX:-${TMPDIR:-/tmp}/ecrm-bench-pgroot}
OUT=${ECRM_BENCH_OUT:-${TMPDIR:-/tmp}/ecrm-single-row-paths-$(date -u +%Y%m%dT%H%M%SZ)}
PGBENCH=$(ecrm_sys_bindir)/pgbench   # one client binary for both builds
THREADS=$((CLIENTS < 2 ? CLIENTS : 2))

WORK=$(mktemp -d "${TMPDIR:-/tmp}/ecrm-srp.XXXXXX")
CL_A="" CL_B=""
CREATED_ROOTS=()
BG_PIDS=()
cleanup() {
    local pid side dir r
    for pid in "${BG_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for side in A B; do
        dir=CL_$side
        if [ -n "${!dir}" ]; then
            ECRM_PGROOT=$ROOT_PREFIX-$side ECRM_CLUSTER_DIR=${!dir} ECRM_KEEP=0 ecrm_cluster_stop
        fi
    done
    rm -rf "$WORK"
    for r in "${CREATED_ROOTS[@]}"; do rm -rf "$r"; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() { echo "single_row_paths: $*" >&2; exit 1; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
# psql against one build's cluster and benchmark database
q() { local side=$1 dir; shift; dir=CL_$side; psql -X -q -v ON_ERROR_STOP=1 -h "${!dir}" -p 5432 -U postgres -d bench "$@"; }

resolve_ref() {
    local c
    if [ "$1" = WORKTREE ]; then
        c=$(git -C "$REPO" stash create)
        echo "${c:-$(git -C "$REPO" rev-parse HEAD)}"
    else
        git -C "$REPO" rev-parse --verify --quiet "$1^{commit}" || die "not a commit: $1"
    fi
}
SHA_A=$(resolve_ref "$REF_A")
SHA_B=$(resolve_ref "$REF_B")
mkdir -p "$OUT"
LOAD_START=$(loadavg)
echo "single-row paths: A = $REF_A (${SHA_A:0:10}), B = $REF_B (${SHA_B:0:10})"
echo "machine: $(nproc) cores, load average $LOAD_START; demo shop $CUSTOMERS customers (seed $SEED);" \
     "$ROUNDS rounds x ${SECS} s per operation and build, $CLIENTS client(s)"

# ---- build and start both
ecrm_install_deps
for side in A B; do
    sha=SHA_$side
    root=$ROOT_PREFIX-$side
    [ -e "$root" ] || CREATED_ROOTS+=("$root")
    mkdir -p "$WORK/src-$side"
    git -C "$REPO" archive "${!sha}" | tar -x -C "$WORK/src-$side"
    ecrm_log "building $side (${!sha:0:10}) into $root (at ${SECONDS} s)"
    (ECRM_TOP=$WORK/src-$side ECRM_PGROOT=$root; ecrm_build_install) >"$WORK/build-$side.log" 2>&1 \
        || { tail -40 "$WORK/build-$side.log" >&2; die "build of $side failed"; }
    ECRM_PGROOT=$root ecrm_cluster_start
    eval "CL_$side=\$ECRM_CLUSTER_DIR"
    ECRM_CLUSTER_DIR=
done
unset PGHOST PGPORT PGDATABASE

# ---- the same demo shop in both, models trained, lookup tables for the pgbench scripts
AS_OF=$(date -u +'%Y-%m-%d 00:00:00+00')
cat >"$WORK/setup.sql" <<'SQL'
SET client_min_messages = warning;
SELECT ecrm.train_match_model('customer') IS NOT NULL AS match_model_trained;
SELECT count(*) > 0 AS item_model_trained FROM ecrm.train_item_model();
CREATE TABLE bench_known AS
SELECT row_number() OVER (ORDER BY c.customer_id)::int AS n, c.customer_id, c.first_name, c.last_name, c.email,
       c.birth_date, c.postal_code, c.city, c.country
  FROM (SELECT p.*, count(*) OVER (PARTITION BY p.attributes -> 'demo_person') AS profiles_of_person
          FROM ecrm.customer_profile p) c
 WHERE c.status = 'active' AND c.profiles_of_person = 1 AND c.email IS NOT NULL AND c.first_name IS NOT NULL
   AND c.last_name IS NOT NULL AND c.birth_date IS NOT NULL AND c.postal_code IS NOT NULL;
ALTER TABLE bench_known ADD PRIMARY KEY (n);
CREATE TABLE bench_buyer AS
SELECT row_number() OVER (ORDER BY customer_id)::int AS n, customer_id
  FROM (SELECT DISTINCT o.customer_id FROM ecrm.orders o JOIN bench_known k USING (customer_id)) x;
ALTER TABLE bench_buyer ADD PRIMARY KEY (n);
CREATE TABLE bench_product AS
SELECT row_number() OVER (ORDER BY product_id)::int AS n, product_id, coalesce(price, 10) AS price
  FROM ecrm.product WHERE available;
ALTER TABLE bench_product ADD PRIMARY KEY (n);
VACUUM ANALYZE;
CHECKPOINT;
SQL
setup_side() {
    local side=$1 dir=CL_$1
    psql -X -q -v ON_ERROR_STOP=1 -h "${!dir}" -p 5432 -U postgres -d postgres -c 'CREATE DATABASE bench'
    q "$side" -c 'CREATE EXTENSION ecrm'
    q "$side" -A -F' ' -t -c "SELECT * FROM ecrm.generate_demo_data($CUSTOMERS, $SEED, '$AS_OF')" >"$WORK/demo-$side.txt"
    q "$side" -A -t -f "$WORK/setup.sql" >"$WORK/setup-$side.txt"
}
ecrm_log "generating the demo shop and training in both builds, in parallel (at ${SECONDS} s)"
for side in A B; do
    setup_side "$side" >"$WORK/setup-$side.log" 2>&1 &
    BG_PIDS+=($!)
done
for side in A B; do
    wait "${BG_PIDS[0]}" || { cat "$WORK/setup-$side.log" >&2; die "loading the demo shop into build $side failed"; }
    BG_PIDS=("${BG_PIDS[@]:1}")
done
if ! cmp -s "$WORK/demo-A.txt" "$WORK/demo-B.txt"; then
    echo "WARNING: the demo shop differs between the builds (generate_demo_data changed):"
    paste "$WORK/demo-A.txt" "$WORK/demo-B.txt" | sed 's/^/    A | B: /'
fi
echo "demo shop: $(tr '\n' ';' <"$WORK/demo-A.txt" | sed 's/;$//; s/;/, /g')"

# ---- signatures, as \df shows them
declare -A SIGDIFF=()
for side in A B; do
    q "$side" -A -t -F'|' -c "
        SELECT f, coalesce((SELECT string_agg(p.proname || '(' || pg_get_function_arguments(p.oid) || ') RETURNS '
                                              || pg_get_function_result(p.oid), ' / ' ORDER BY p.oid::regprocedure::text)
                              FROM pg_proc p WHERE p.pronamespace = 'ecrm'::regnamespace AND p.proname = f), 'MISSING')
          FROM unnest(ARRAY['upsert_customer', 'record_order', 'find_matches', 'recommend']) f ORDER BY f" \
        >"$WORK/sig-$side.txt"
done
while IFS='|' read -r fn sig_a; do
    sig_b=$(awk -F'|' -v f="$fn" '$1 == f {print $2}' "$WORK/sig-B.txt")
    if [ "$sig_a" != "$sig_b" ]; then
        SIGDIFF[$fn]=1
        echo "SIGNATURE DIFFERS: ecrm.$fn"
        echo "    A: $sig_a"
        echo "    B: $sig_b"
        echo "    (its operations still run if the calls work in both builds; compare with care)"
    fi
done <"$WORK/sig-A.txt"
[ ${#SIGDIFF[@]} -eq 0 ] && echo "signatures of upsert_customer, record_order, find_matches, recommend: the same in A and B"

# ---- the pgbench scripts
mkdir -p "$WORK/pgb" "$WORK/log" "$WORK/out"
cat >"$WORK/pgb/upsert_new.pgbench" <<'EOF'
\set a random(1, :known)
\set b random(1, :known)
\set r random(1, 999999999)
SELECT ecrm.upsert_customer(jsonb_build_object('first_name', a.first_name, 'last_name', b.last_name,
         'email', 'bench.new.' || :r || '@example.net', 'birth_date', date '1940-01-01' + :r % 23000,
         'postal_code', b.postal_code, 'city', b.city, 'country', b.country))
  FROM bench_known a, bench_known b WHERE a.n = :a AND b.n = :b;
EOF
cat >"$WORK/pgb/upsert_existing.pgbench" <<'EOF'
\set a random(1, :known)
\set r random(1, 999999999)
SELECT ecrm.upsert_customer(jsonb_build_object('email', k.email, 'first_name', k.first_name, 'last_name', k.last_name,
         'city', k.city, 'attributes', jsonb_build_object('bench_visit', :r::int)))
  FROM bench_known k WHERE k.n = :a;
EOF
cat >"$WORK/pgb/upsert_match.pgbench" <<'EOF'
\set a random(1, :known)
\set r random(1, 999999999)
SELECT ecrm.upsert_customer(jsonb_build_object('first_name', k.first_name, 'last_name', k.last_name || 'e',
         'email', 'bench.match.' || :r || '@example.net', 'birth_date', k.birth_date,
         'postal_code', k.postal_code, 'city', k.city, 'country', k.country))
  FROM bench_known k WHERE k.n = :a;
EOF
cat >"$WORK/pgb/record_order.pgbench" <<'EOF'
\set a random(1, :known)
\set p1 random(1, :products)
\set p2 random(1, :products)
SELECT ecrm.record_order(k.customer_id, jsonb_build_array(
         jsonb_build_object('product_id', p1.product_id, 'quantity', 1, 'unit_price', p1.price),
         jsonb_build_object('product_id', p2.product_id, 'quantity', 2, 'unit_price', p2.price)))
  FROM bench_known k, bench_product p1, bench_product p2 WHERE k.n = :a AND p1.n = :p1 AND p2.n = :p2;
EOF
cat >"$WORK/pgb/find_matches.pgbench" <<'EOF'
\set a random(1, :known)
SELECT count(*) FROM bench_known k, ecrm.find_matches(jsonb_build_object('first_name', k.first_name,
         'last_name', k.last_name || 'e', 'birth_date', k.birth_date, 'postal_code', k.postal_code, 'city', k.city,
         'country', k.country)) f
 WHERE k.n = :a;
EOF
cat >"$WORK/pgb/recommend.pgbench" <<'EOF'
\set a random(1, :buyers)
SELECT count(*) FROM bench_buyer b, ecrm.recommend(b.customer_id, 10) r WHERE b.n = :a;
EOF
declare -A FN_OF=([upsert_new]=upsert_customer [upsert_existing]=upsert_customer [upsert_match]=upsert_customer
                  [record_order]=record_order [find_matches]=find_matches [recommend]=recommend)
for op in "${OPS[@]}"; do
    [ -f "$WORK/pgb/$op.pgbench" ] || die "unknown operation $op (known: ${!FN_OF[*]})"
done

# ---- sanity: the lookup tables, and that the read paths return something in both builds
declare -A VARS=()
for side in A B; do
    read -r known buyers products fm rec < <(q "$side" -A -t -F' ' -c "
        SELECT (SELECT count(*) FROM bench_known), (SELECT count(*) FROM bench_buyer), (SELECT count(*) FROM bench_product),
               (SELECT count(*) FROM bench_known k, ecrm.find_matches(jsonb_build_object('first_name', k.first_name,
                        'last_name', k.last_name || 'e', 'birth_date', k.birth_date, 'postal_code', k.postal_code,
                        'city', k.city, 'country', k.country)) f WHERE k.n <= 20),
               (SELECT count(*) FROM bench_buyer b, ecrm.recommend(b.customer_id, 10) r WHERE b.n <= 20)")
    VARS[$side]="-D known=$known -D buyers=$buyers -D products=$products"
    echo "build $side: $known lookup customers, $buyers of them buyers, $products products;" \
         "find_matches of 20 typo'd copies: $fm rows, recommend for 20 buyers: $rec rows"
    [ "$fm" -gt 0 ] || echo "WARNING: find_matches returns nothing in build $side: its figures measure an empty path"
    [ "$rec" -gt 0 ] || echo "WARNING: recommend returns nothing in build $side: its figures measure an empty path"
done
[ "${VARS[A]}" = "${VARS[B]}" ] || echo "WARNING: the lookup tables differ between the builds: ${VARS[A]} / ${VARS[B]}"
q A -A -t -c "SELECT count(*) FROM ecrm.merge_event" >"$WORK/merges0-A.txt" 2>/dev/null || echo "?" >"$WORK/merges0-A.txt"
q B -A -t -c "SELECT count(*) FROM ecrm.merge_event" >"$WORK/merges0-B.txt" 2>/dev/null || echo "?" >"$WORK/merges0-B.txt"

# ---- measure
declare -A FAILED=()
run() {   # run SIDE OP ROUND SECONDS (ROUND 0 = warm-up)
    local side=$1 op=$2 round=$3 secs=$4 dir=CL_$1 rc=0
    # shellcheck disable=SC2086
    "$PGBENCH" -n -M prepared -c "$CLIENTS" -j "$THREADS" -T "$secs" --random-seed=$((SEED * 1000 + round)) \
        -h "${!dir}" -p 5432 -U postgres ${VARS[$side]} -l --log-prefix="$WORK/log/$side.$op.$round" \
        -f "$WORK/pgb/$op.pgbench" bench >"$WORK/out/$side.$op.$round.txt" 2>&1 || rc=$?
    if [ "$rc" -ne 0 ] || grep -q 'aborted\|error' "$WORK/out/$side.$op.$round.txt"; then
        FAILED[$op]="build $side, round $round: $(grep -m1 'ERROR\|error' "$WORK/out/$side.$op.$round.txt" || echo "pgbench exit $rc")"
        echo "FAILED: $op in build $side: ${FAILED[$op]}"
        return 1
    fi
}
ecrm_log "warm-up: every operation 1 s in each build (at ${SECONDS} s)"
for op in "${OPS[@]}"; do
    for side in A B; do run "$side" "$op" 0 1 || break; done
done
LOAD_MEASURE_START=$(loadavg)
T0=$(date +%s)
ecrm_log "measuring: $ROUNDS rounds, load average $LOAD_MEASURE_START (at ${SECONDS} s)"
for round in $(seq "$ROUNDS"); do
    if [ $((round % 2)) -eq 1 ]; then order="A B"; else order="B A"; fi
    for op in "${OPS[@]}"; do
        [ -z "${FAILED[$op]:-}" ] || continue
        for side in $order; do run "$side" "$op" "$round" "$SECS" || break; done
    done
    ecrm_log "round $round of $ROUNDS done (order $order), load average $(loadavg)"
done
LOAD_END=$(loadavg)
ELAPSED=$(($(date +%s) - T0))
for side in A B; do
    m0=$(cat "$WORK/merges0-$side.txt")
    m1=$(q "$side" -A -t -c "SELECT count(*) FROM ecrm.merge_event" 2>/dev/null || echo "?")
    if [[ "$m0$m1" =~ ^[0-9]+$ ]]; then
        echo "build $side: $((m1 - m0)) merges during the run (upsert_match merges into the customer or queues for review)"
    fi
done

# ---- report
FAILED_LIST=""
for op in "${!FAILED[@]}"; do FAILED_LIST+="$op=${FAILED[$op]}"$'\n'; done
export WORK OUT REF_A REF_B SHA_A SHA_B CUSTOMERS SEED ROUNDS SECS CLIENTS LOAD_START LOAD_MEASURE_START LOAD_END \
       ELAPSED FAILED_LIST
export OPS_LIST="${OPS[*]}" SIGDIFF_LIST="${!SIGDIFF[*]}"
/usr/bin/python3 - <<'PY'
import glob, json, os, statistics
env = os.environ
work, out = env["WORK"], env["OUT"]
ops = env["OPS_LIST"].split()
rounds, secs = int(env["ROUNDS"]), int(env["SECS"])
fn_of = {"upsert_new": "upsert_customer", "upsert_existing": "upsert_customer", "upsert_match": "upsert_customer",
         "record_order": "record_order", "find_matches": "find_matches", "recommend": "recommend"}
sigdiff = set(env["SIGDIFF_LIST"].split())
failed = dict(l.split("=", 1) for l in env["FAILED_LIST"].splitlines() if l)

def pct(xs, p):
    xs = sorted(xs)
    k = (len(xs) - 1) * p
    f = int(k)
    return xs[f] if f + 1 >= len(xs) else xs[f] + (xs[f + 1] - xs[f]) * (k - f)

rows = []
for op in ops:
    for side in "AB":
        for r in range(1, rounds + 1):
            logs = glob.glob(f"{work}/log/{side}.{op}.{r}.*")
            outf = f"{work}/out/{side}.{op}.{r}.txt"
            if not logs or not os.path.exists(outf):
                continue
            lat, bad = [], 0
            for fn in logs:
                for line in open(fn):
                    f = line.split()
                    if len(f) >= 3 and f[2].isdigit():
                        lat.append(int(f[2]) / 1000.0)
                    else:
                        bad += 1
            tps = None
            for line in open(outf):
                if line.startswith("tps = "):
                    tps = float(line.split()[2])
            if not lat:
                continue
            rows.append(dict(op=op, build=side, round=r, transactions=len(lat), failed=bad,
                             tps=tps if tps is not None else len(lat) / secs,
                             mean_ms=statistics.fmean(lat), p50_ms=pct(lat, 0.5), p95_ms=pct(lat, 0.95)))

with open(f"{out}/rounds.tsv", "w") as f:
    cols = ["op", "build", "round", "transactions", "failed", "tps", "mean_ms", "p50_ms", "p95_ms"]
    f.write("\t".join(cols) + "\n")
    for x in rows:
        f.write("\t".join(f"{x[c]:.4f}" if isinstance(x[c], float) else str(x[c]) for c in cols) + "\n")

med = statistics.median
summary = {}
print()
print(f"{'operation':16} {'A p50 ms (min-max)':>21} {'B p50 ms (min-max)':>21} {'B/A p50':>8} {'best':>6} {'paired (min-max)':>19}"
      f" {'A p95':>7} {'B p95':>7} {'B/A p95':>8} {'A tps':>7} {'B tps':>7} {'B/A tps':>8}")
for op in ops:
    st = {}
    for side in "AB":
        rs = [x for x in rows if x["op"] == op and x["build"] == side]
        if rs:
            st[side] = dict(rounds=len(rs), transactions=sum(x["transactions"] for x in rs),
                            p50_ms=med([x["p50_ms"] for x in rs]), p50_min=min(x["p50_ms"] for x in rs),
                            p50_max=max(x["p50_ms"] for x in rs), p95_ms=med([x["p95_ms"] for x in rs]),
                            p95_min=min(x["p95_ms"] for x in rs), p95_max=max(x["p95_ms"] for x in rs),
                            tps=med([x["tps"] for x in rs]), tps_min=min(x["tps"] for x in rs),
                            tps_max=max(x["tps"] for x in rs))
    entry = dict(function=fn_of[op], signature_differs=fn_of[op] in sigdiff, failed=failed.get(op), A=st.get("A"), B=st.get("B"))
    if "A" in st and "B" in st:
        a, b = st["A"], st["B"]
        pairs = []
        for r in range(1, rounds + 1):
            pa = [x for x in rows if x["op"] == op and x["build"] == "A" and x["round"] == r]
            pb = [x for x in rows if x["op"] == op and x["build"] == "B" and x["round"] == r]
            if pa and pb:
                pairs.append(pb[0]["p50_ms"] / pa[0]["p50_ms"])
        entry.update(ratio_p50=b["p50_ms"] / a["p50_ms"], ratio_best_p50=b["p50_min"] / a["p50_min"], ratio_p95=b["p95_ms"] / a["p95_ms"], ratio_tps=b["tps"] / a["tps"],
                     paired_ratio_p50=med(pairs) if pairs else None, paired_ratio_p50_min=min(pairs) if pairs else None,
                     paired_ratio_p50_max=max(pairs) if pairs else None)
        flag = " SLOWER >10%" if max(entry["ratio_p50"], 1 / entry["ratio_tps"]) > 1.10 else ""
        flag += " (signature differs)" if entry["signature_differs"] else ""
        flag += " FAILED later: " + failed[op] if op in failed else ""
        print(f"{op:16} {a['p50_ms']:7.3f} ({a['p50_min']:.2f}-{a['p50_max']:.2f}) {b['p50_ms']:7.3f} ({b['p50_min']:.2f}-{b['p50_max']:.2f})"
              f" {entry['ratio_p50']:8.3f} {entry['ratio_best_p50']:6.3f} {entry['paired_ratio_p50']:7.3f} ({entry['paired_ratio_p50_min']:.2f}-{entry['paired_ratio_p50_max']:.2f})"
              f" {a['p95_ms']:7.2f} {b['p95_ms']:7.2f} {entry['ratio_p95']:8.3f} {a['tps']:7.1f} {b['tps']:7.1f} {entry['ratio_tps']:8.3f}{flag}")
    else:
        print(f"{op:16} not measured in both builds: {failed.get(op, 'no data')}")
    summary[op] = entry

meta = dict(ref_a=env["REF_A"], sha_a=env["SHA_A"], ref_b=env["REF_B"], sha_b=env["SHA_B"],
            demo_customers=int(env["CUSTOMERS"]), seed=int(env["SEED"]), rounds=rounds, seconds_per_round=secs,
            clients=int(env["CLIENTS"]), cores=os.cpu_count(), loadavg_script_start=env["LOAD_START"],
            loadavg_measure_start=env["LOAD_MEASURE_START"], loadavg_end=env["LOAD_END"],
            measure_seconds=int(env["ELAPSED"]), demo_shop=open(f"{work}/demo-A.txt").read().splitlines())
with open(f"{out}/summary.json", "w") as f:
    json.dump(dict(meta=meta, operations=summary, rounds=rows), f, indent=1)
print()
print("p50/p95: median over the rounds of each round's percentile (from pgbench -l); tps: median over the rounds;")
print("B/A above 1 = B slower (latency), below 1 = B slower (tps); best = B/A of the lowest p50 of a round;")
print("paired = median (min-max) of the per-round B/A of p50; flagged when B/A p50 or A/B tps exceeds 1.10")
PY
echo "load average: $LOAD_START at the start, $LOAD_MEASURE_START when measuring began, $LOAD_END at the end" \
     "(measuring took ${ELAPSED} s, the whole run ${SECONDS} s)"
echo "summary: $OUT/summary.json, per round: $OUT/rounds.tsv"
[ ${#FAILED[@]} -eq 0 ] || exit 1
