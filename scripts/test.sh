#!/usr/bin/env bash
# Install what the tests need (LibreOffice included, when missing) and run the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
# python3-uno: the tests that edit a workbook cell by cell drive LibreOffice through UNO.
if ! command -v soffice >/dev/null 2>&1 || [ ! -f /usr/lib/python3/dist-packages/uno.py ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq libreoffice-calc-nogui \
    python3-uno >/dev/null
fi
python -m pip install -q -e ".[test]"
python -m pytest "$@"
