#!/usr/bin/env bash
# Property test of merge and unmerge (test/shell/merge_property.py): fixed seeds in the suite, so a failure
# reproduces; run more by hand with random seeds:  /usr/bin/python3 test/shell/merge_property.py --seeds 20
# Needs PGHOST/PGPORT/PGUSER (test/run.sh sets them).  ECRM_PROPERTY_SEEDS / ECRM_PROPERTY_STEPS override.
set -euo pipefail
cd "$(dirname "$0")"
args=()
for s in ${ECRM_PROPERTY_SEEDS:-1 2 3}; do args+=(--seed "$s"); done
exec /usr/bin/python3 merge_property.py "${args[@]}" --steps "${ECRM_PROPERTY_STEPS:-150}"
