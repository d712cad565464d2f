#!/usr/bin/env bash
# Runs a test-only Python script with the .venv of scripts/peer-venv.sh.
# Missing venv: exit 77 (ctest skip) outside CI, failure in CI.
PY=${YOLOC_PEER_PYTHON:-"$(dirname "$0")/../../.venv/bin/python"}
if [ ! -x "$PY" ]; then
  if [ "${CI:-}" = true ]; then echo "FAIL (CI): no $PY (scripts/peer-venv.sh makes it)"; exit 1; fi
  echo "SKIP: no $PY (run scripts/peer-venv.sh)"; exit 77
fi
exec "$PY" "$@"
