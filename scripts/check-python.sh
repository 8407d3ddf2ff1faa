#!/usr/bin/env bash
# Fails early, in one line, when the interpreter is too old for oathdesk.
set -euo pipefail
py="${1:-python3}"
command -v "$py" >/dev/null || { echo "error: $py not found; install Python 3.11 or newer, or run make PYTHON=/path/to/python3.11" >&2; exit 1; }
"$py" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || {
  echo "error: oathdesk needs Python 3.11 or newer ($py is $("$py" -V 2>&1)); run make PYTHON=/path/to/python3.11" >&2; exit 1; }
