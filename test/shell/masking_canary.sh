#!/usr/bin/env bash
# Canary test for masking: a canary in every text, JSON and array column of every customer table, and
# no canary in anything an ecrm_analyst login can read, call or provoke as an error (see the .py file).
# Needs PGHOST/PGPORT/PGUSER.
set -euo pipefail
exec /usr/bin/python3 "$(dirname "$0")/masking_canary.py"
