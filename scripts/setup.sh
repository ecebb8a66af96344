#!/usr/bin/env bash
# Installs what the kiosk and its tests need on a fresh Debian 12 machine, only when missing:
# Debian packages (apt-get) and a venv (.venv) with the pinned Python dependencies.
# Idempotent and quiet when everything is already there. Sourced by scripts/demo and scripts/test.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# Binary or library -> Debian package that provides it.
DEB_PACKAGES=(
  python3 python3-venv  # Debian's Python 3.11 and its venv module (ensurepip)
  python3-dev gcc libc6-dev  # pyscard is built from source
  xvfb             # a real X server for the Kivy window in tests and headless demos
  xauth
  pcscd            # PC/SC daemon: pyscard talks to readers through it
  vsmartcard-vpcd  # virtual reader driver: the virtual CCCD chip plugs into it over TCP
  libpcsclite-dev  # headers to build pyscard
  swig             # pyscard's build needs it
  libzbar0         # pyzbar's decoder
  mosquitto        # MQTT broker for tests and the local demo
  mosquitto-clients
  libmosquitto1    # the C MQTT client the fleet bench's simulated kiosks publish with (ctypes)
  libmtdev1 libgl1 libegl1  # Kivy's SDL2/GL at runtime
  qrencode         # an independent QR encoder for tests
  fonts-dejavu-core
  libusb-1.0-0     # pyusb: USB thermal printers through python-escpos
  tesseract-ocr tesseract-ocr-vie  # OCR of printed tickets and screens in tests (a peer we do not control)
  postgresql-15    # initdb/pg_ctl for the throwaway PostgreSQL cluster the fleet tests start themselves
  chromium         # headless browser the fleet's browser tests drive (Playwright, never its own download)
  espeak-ng sox    # offline Vietnamese speech (hall display, kiosk voice) and checks of the audio
)

missing=()
for pkg in "${DEB_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}" >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null || PY=python3
VENV="$ROOT/.venv"
STAMP="$VENV/.requirements.lock.sha"
want="$(sha256sum "$ROOT/requirements.lock" | cut -d' ' -f1)"
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]; then
  echo "setup: preparing Python venv in $VENV" >&2
  [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check --upgrade pip >/dev/null
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$ROOT/requirements.lock"
  echo "$want" > "$STAMP"
fi
