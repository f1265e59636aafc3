#!/usr/bin/env bash
# LoopJam for macOS: a virtual environment, a BlackHole check, and a launch agent (optional).
#
#   installers/macos/install.sh [--launch-agent] [--prefix DIR] [--uninstall]
#
# Audio: LoopJam records what your player sends to "BlackHole 2ch" and plays the game's audio
# to your speakers. Install BlackHole (brew install blackhole-2ch), then choose it as the
# output of your player (or a Multi-Output Device) and run `loopjam devices` to check.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PREFIX="$HOME/Library/Application Support/LoopJam"
AGENT="$HOME/Library/LaunchAgents/org.loopjam.tray.plist"
LAUNCH_AGENT=0 UNINSTALL=0
while [ $# -gt 0 ]; do
  case "$1" in
    --launch-agent) LAUNCH_AGENT=1 ;;
    --prefix) PREFIX="$2"; shift ;;
    --uninstall) UNINSTALL=1 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

if [ "$UNINSTALL" = 1 ]; then
  launchctl unload "$AGENT" 2>/dev/null || true
  rm -f "$AGENT" /usr/local/bin/loopjam 2>/dev/null || true
  rm -rf "$PREFIX/venv"
  echo "LoopJam removed (charts kept)."
  exit 0
fi

command -v python3 >/dev/null || { echo "install.sh: python3 3.10+ is required (brew install python)" >&2; exit 1; }
python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))' || { echo "install.sh: python3 must be 3.10+" >&2; exit 1; }
command -v fpcalc >/dev/null || echo "note: Chromaprint not found: brew install chromaprint"
command -v ffmpeg >/dev/null || echo "note: ffmpeg not found (mp3/m4a analysis): brew install ffmpeg"

mkdir -p "$PREFIX"
python3 -m venv "$PREFIX/venv"
"$PREFIX/venv/bin/pip" install --upgrade pip >/dev/null
"$PREFIX/venv/bin/pip" install --upgrade "$HERE"
LOOPJAM="$PREFIX/venv/bin/loopjam"

if system_profiler SPAudioDataType 2>/dev/null | grep -qi blackhole; then
  echo "BlackHole found: set your player's output to 'BlackHole 2ch' (or a Multi-Output Device)."
else
  echo "BlackHole is not installed. LoopJam needs it to hear your player:"
  echo "  brew install blackhole-2ch     (or https://existential.audio/blackhole/)"
fi

if [ "$LAUNCH_AGENT" = 1 ]; then
  mkdir -p "$(dirname "$AGENT")"
  cat > "$AGENT" <<PLIST
<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0"><dict>
  <key>Label</key><string>org.loopjam.tray</string>
  <key>ProgramArguments</key><array><string>$LOOPJAM</string><string>tray</string></array>
  <key>RunAtLoad</key><true/>
  <key>KeepAlive</key><false/>
</dict></plist>
PLIST
  launchctl unload "$AGENT" 2>/dev/null || true
  launchctl load "$AGENT"
  echo "LoopJam will start when you log in."
fi
echo "LoopJam installed: $LOOPJAM (run '$LOOPJAM' for the tray)."
