#!/usr/bin/env bash
# Screenshot of a comparison report in headless Chromium (Debian: apt-get install -y chromium):
#   bash scripts/screenshot_report.sh outputs/evaluate/<time>/report.html report.png
# The flags keep Chromium off the network (the report is self-contained) and out of the user's profile.
set -euo pipefail
report=$(realpath "$1")
out=$(realpath -m "$2")
browser=${CHROMIUM:-/usr/bin/chromium}
[ -x "$browser" ] || { echo "error: $browser not found; install it with: apt-get install -y chromium" >&2; exit 2; }
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
"$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
  --disable-component-update --disable-sync --user-data-dir="$profile" --window-size=1400,2200 \
  --screenshot="$out" "file://$report" 2>/dev/null
[ -s "$out" ] || { echo "error: no screenshot written to $out" >&2; exit 1; }
echo "$out"
