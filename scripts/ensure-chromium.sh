#!/usr/bin/env bash
# The browser check needs Chromium: Debian's `chromium`, installed with apt-get when it is missing.
# RRGKIT_CHROMIUM may name another Chromium or Chrome binary instead. Fails with one line when neither works.
set -euo pipefail
if [ -n "${RRGKIT_CHROMIUM:-}" ]; then
  [ -x "$RRGKIT_CHROMIUM" ] && exit 0
  echo "ensure-chromium: RRGKIT_CHROMIUM=$RRGKIT_CHROMIUM is not an executable file" >&2
  exit 1
fi
command -v chromium >/dev/null 2>&1 && exit 0
log=$(mktemp "${TMPDIR:-/tmp}/chromium-apt.XXXXXX")
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo -n"
echo "installing Debian's chromium for the browser check (apt-get, about a minute) ..."
if ! { command -v apt-get && $sudo apt-get update -qq \
       && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; } >"$log" 2>&1 \
   || ! command -v chromium >/dev/null 2>&1; then
  echo "ensure-chromium: could not install chromium with apt-get (log: $log); install Debian's chromium or set RRGKIT_CHROMIUM to a Chromium binary" >&2
  exit 1
fi
rm -f "$log"
