#!/usr/bin/env bash
# The version lives in ecrm.control; META.json, the CHANGELOG and the installed extension must agree with it.
set -euo pipefail
cd "$(dirname "$0")/../.."
v=$(sed -n "s/^default_version *= *'\([^']*\)'.*/\1/p" ecrm.control)
fail=0
check() { if [ "$2" = "$v" ]; then echo "ok: $1 says $v"; else echo "FAIL: $1 says '$2', ecrm.control says '$v'"; fail=1; fi; }
check "META.json version" "$(/usr/bin/python3 -c 'import json;print(json.load(open("META.json"))["version"])')"
check "META.json provides" "$(/usr/bin/python3 -c 'import json;print(json.load(open("META.json"))["provides"]["ecrm"]["version"])')"
check "CHANGELOG.md" "$(grep -m1 -oE '^## [0-9]+\.[0-9]+\.[0-9]+' CHANGELOG.md | cut -c4-)"
check "the installed extension" "$(psql -X -At -d postgres -c "SELECT default_version FROM pg_available_extensions WHERE name = 'ecrm'")"
exit $fail
