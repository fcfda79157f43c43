#!/usr/bin/env bash
# The test command: makes .venv beside this file if needed, installs what the tests need, runs the JavaScript unit
# tests (node --test) and pytest.
# Arguments go to pytest (e.g. ./test.sh -k schedule). Set DIFFDIFF_WEBUI_URL to also run the live-WebUI tests.
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -x .venv/bin/python ]; then
    "${PYTHON:-python3}" -m venv .venv
fi
# torch only when missing: a CPU build is plenty for the tests, and reinstalling it would cost minutes
.venv/bin/python -c "import torch" 2>/dev/null || .venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q -r tests/requirements.txt
# the browser code's pure logic (javascript/diffdiff_core.js), with node's own test runner; no npm packages
if command -v node >/dev/null 2>&1; then
    node --test tests/js/
else
    echo "node not found: the JavaScript unit tests (tests/js) did not run" >&2
fi
exec .venv/bin/python -m pytest "$@"
