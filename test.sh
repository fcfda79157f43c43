#!/usr/bin/env bash
# The test command: makes .venv beside this file if needed, installs what the tests need, runs pytest.
# Arguments go to pytest (e.g. ./test.sh -k schedule). Set DIFFDIFF_WEBUI_URL to also run the live-WebUI tests.
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -x .venv/bin/python ]; then
    "${PYTHON:-python3}" -m venv .venv
fi
# torch only when missing: a CPU build is plenty for the tests, and reinstalling it would cost minutes
.venv/bin/python -c "import torch" 2>/dev/null || .venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q -r tests/requirements.txt
exec .venv/bin/python -m pytest "$@"
