#!/usr/bin/env bash
# The browser tests drive Debian's chromium (Playwright's own browser download is not used).
# Installs it with apt when it is missing and we may; otherwise says how, and fails.
set -euo pipefail
CHROMIUM="${TICKETBOT_CHROMIUM:-/usr/bin/chromium}"
has_cjk_font() { command -v fc-list >/dev/null && [ -n "$(fc-list :lang=zh 2>/dev/null | head -1)" ]; }
packages=()
[ -x "$CHROMIUM" ] || packages+=(chromium)
# the pages are Chinese: without a CJK font, screenshots of a failing test show boxes
has_cjk_font || packages+=(fonts-wqy-microhei)
if [ ${#packages[@]} -eq 0 ]; then
    exit 0
fi
if [ -x "$CHROMIUM" ] && [ "$(id -u)" != "0" ] && ! { command -v sudo >/dev/null && sudo -n true 2>/dev/null; }; then
    echo "ensure-chromium: no CJK font found; screenshots will show boxes (apt-get install fonts-wqy-microhei)" >&2
    exit 0
fi
if [ ! -x "$CHROMIUM" ] && [ "${TICKETBOT_CHROMIUM:-}" != "" ]; then
    echo "ensure-chromium: TICKETBOT_CHROMIUM=$CHROMIUM is not an executable" >&2
    exit 1
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
        echo "ensure-chromium: $CHROMIUM is missing; install Debian's chromium package (apt-get install chromium)" \
             "or point TICKETBOT_CHROMIUM at a Chromium binary" >&2
        exit 1
    fi
fi
echo "ensure-chromium: installing ${packages[*]} from Debian for the browser tests (once)"
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get install -y -q --no-install-recommends "${packages[@]}" >/dev/null; then
    $SUDO apt-get update -q >/dev/null
    $SUDO apt-get install -y -q --no-install-recommends "${packages[@]}" >/dev/null
fi
test -x "$CHROMIUM"
