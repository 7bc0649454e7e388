#!/usr/bin/env bash
# idset and segment benchmarks on a throwaway cluster: bash test/bench/idset.sh [segments]
# (ECRM_PGROOT as for test/run.sh). Figures vary with the machine's load: quote them from a quiet machine.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
cd "$ECRM_TOP"
ecrm_build_install
ecrm_cluster_start
trap ecrm_cluster_stop EXIT
psql -q -X -c 'CREATE EXTENSION ecrm'
psql -X -f test/bench/idset.sql
if [ "${1:-}" = segments ]; then
    psql -X -f test/bench/segments.sql
fi
