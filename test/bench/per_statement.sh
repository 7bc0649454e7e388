# test/bench/per_statement.sh — time one-statement queries with pgbench (source it; needs PGHOST etc.).
#
# per_statement ROUNDS SECONDS LO HI  LABEL1 SQL1  LABEL2 SQL2 ...
#   Runs every SQL as statements of their own (prepared; :id is a random id in LO..HI), 100 of them per
#   pipeline so that the client's round trip does not hide the server's time, for ROUNDS rounds of
#   SECONDS seconds each, the queries taking turns within a round (a shared machine's noise hits them
#   alike). Prints the best and the median microseconds per statement of each, and the ratio of each
#   median to the median of LABEL2 (the plain-SQL way, by convention).
per_statement() {
    local rounds=$1 seconds=$2 lo=$3 hi=$4
    shift 4
    local dir labels=() n=0 i r lat
    dir=$(mktemp -d)
    while [ $# -ge 2 ]; do
        labels+=("$1")
        {
            echo '\startpipeline'
            for i in $(seq 100); do
                echo "\\set id random($lo, $hi)"
                echo "$2"
            done
            echo '\endpipeline'
        } >"$dir/q$n.sql"
        : >"$dir/t$n"
        n=$((n + 1))
        shift 2
    done
    for r in $(seq "$rounds"); do
        for i in $(seq 0 $((n - 1))); do
            lat=$("$(ecrm_bindir)/pgbench" -n -M prepared -T "$seconds" -f "$dir/q$i.sql" 2>&1 \
                  | sed -nE 's/^latency average = ([0-9.]+) ms/\1/p')
            [ -n "$lat" ] || { echo "pgbench failed for ${labels[$i]}" >&2; "$(ecrm_bindir)/pgbench" -n -M prepared -t 1 -f "$dir/q$i.sql" >&2; rm -rf "$dir"; return 1; }
            echo "$lat" >>"$dir/t$i"
        done
    done
    printf '%-58s %10s %10s %8s\n' "one statement each (µs; $rounds rounds of ${seconds}s)" best median ratio
    local med0=""
    [ "$n" -ge 2 ] && med0=$(sort -g "$dir/t1" | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}')
    for i in $(seq 0 $((n - 1))); do
        sort -g "$dir/t$i" | awk -v label="${labels[$i]}" -v med0="$med0" '
            {a[NR]=$1}
            END {
                med = (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2
                ratio = (med0 != "" && med > 0) ? sprintf("%.2f", med0 / med) : "-"
                printf "%-58s %10.1f %10.1f %8s\n", label, a[1] * 10, med * 10, ratio
            }'
    done
    echo "(ratio: median time of the second line / median time of this line; above 1 = faster than it)"
    rm -rf "$dir"
}
