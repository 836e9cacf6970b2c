#!/usr/bin/env bash
# Install encours and run the demo: a realistic portfolio in the embedded SQLite database.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
exec .venv/bin/encours demo "$@"
