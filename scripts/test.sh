#!/usr/bin/env bash
# Install what the tests need (LibreOffice included, when missing) and run the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v soffice >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq libreoffice-calc-nogui >/dev/null
fi
python -m pip install -q -e ".[test]"
python -m pytest "$@"
