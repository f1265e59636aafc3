#!/usr/bin/env bash
# LoopJam for Linux: a virtual environment (or pipx), a desktop entry, optional autostart, and
# the audio routing (`loopjam setup-audio`: the "LoopJam" null sink on PulseAudio/PipeWire).
#
#   installers/linux/install.sh [--pipx] [--autostart] [--no-audio] [--prefix DIR]
#
# Default prefix: ~/.local/share/loopjam (venv) with the `loopjam` command linked into
# ~/.local/bin. Re-running upgrades in place. Undo: installers/linux/install.sh --uninstall
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PREFIX="${XDG_DATA_HOME:-$HOME/.local/share}/loopjam"
BIN="$HOME/.local/bin"
APPS="${XDG_DATA_HOME:-$HOME/.local/share}/applications"
AUTOSTART_DIR="${XDG_CONFIG_HOME:-$HOME/.config}/autostart"
USE_PIPX=0 AUTOSTART=0 AUDIO=1 UNINSTALL=0

while [ $# -gt 0 ]; do
  case "$1" in
    --pipx) USE_PIPX=1 ;;
    --autostart) AUTOSTART=1 ;;
    --no-audio) AUDIO=0 ;;
    --prefix) PREFIX="$2"; shift ;;
    --uninstall) UNINSTALL=1 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

if [ "$UNINSTALL" = 1 ]; then
  command -v loopjam >/dev/null && loopjam setup-audio --remove || true
  rm -f "$APPS/loopjam.desktop" "$AUTOSTART_DIR/loopjam.desktop" "$BIN/loopjam"
  if command -v pipx >/dev/null && pipx list 2>/dev/null | grep -q loopjam; then pipx uninstall loopjam; fi
  rm -rf "$PREFIX"
  echo "LoopJam removed (your charts in the LoopJam data folder are kept)."
  exit 0
fi

python=$(command -v python3 || true)
[ -n "$python" ] || { echo "install.sh: python3 (3.10 or newer) is required" >&2; exit 1; }
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
  || { echo "install.sh: python3 must be 3.10 or newer" >&2; exit 1; }
for lib in libchromaprint ffmpeg; do
  if ! ldconfig -p 2>/dev/null | grep -q "$lib" && ! command -v "$lib" >/dev/null; then
    echo "note: $lib not found; install it (Debian/Ubuntu: sudo apt install libchromaprint1 ffmpeg)"
  fi
done

mkdir -p "$BIN" "$APPS"
if [ "$USE_PIPX" = 1 ]; then
  command -v pipx >/dev/null || { echo "install.sh: pipx not found" >&2; exit 1; }
  pipx install --force "$HERE"
  LOOPJAM="$(command -v loopjam || echo "$BIN/loopjam")"
else
  # The tray menu needs GObject (AppIndicator/GTK); pip cannot build it without headers, so
  # reuse the distribution's python3-gi when it is there. Without it the tray still runs
  # (X11 icon, click to start/pause) but has no menu.
  if "$python" -c 'import gi' 2>/dev/null; then
    "$python" -m venv --system-site-packages "$PREFIX/venv"
  else
    echo "note: for the tray menu install python3-gi and an AppIndicator typelib"
    echo "      (Debian/Ubuntu: sudo apt install python3-gi gir1.2-ayatanaappindicator3-0.1)"
    "$python" -m venv "$PREFIX/venv"
  fi
  "$PREFIX/venv/bin/pip" install --upgrade pip >/dev/null
  "$PREFIX/venv/bin/pip" install --upgrade "$HERE"
  ln -sf "$PREFIX/venv/bin/loopjam" "$BIN/loopjam"
  LOOPJAM="$PREFIX/venv/bin/loopjam"
fi

cat > "$APPS/loopjam.desktop" <<DESKTOP
[Desktop Entry]
Type=Application
Name=LoopJam
Comment=Play along with the music you are listening to
Exec=$LOOPJAM tray
Icon=media-playback-start
Categories=Game;Audio;
Terminal=false
DESKTOP

if [ "$AUTOSTART" = 1 ]; then
  mkdir -p "$AUTOSTART_DIR"
  cp "$APPS/loopjam.desktop" "$AUTOSTART_DIR/loopjam.desktop"
  echo "LoopJam will start when you log in."
fi

if [ "$AUDIO" = 1 ]; then
  if command -v pactl >/dev/null; then
    "$LOOPJAM" setup-audio || echo "note: 'loopjam setup-audio' failed; run it again once your sound server runs."
  else
    echo "note: pactl not found (PulseAudio or PipeWire-pulse needed); run 'loopjam setup-audio' later."
  fi
fi

echo "LoopJam installed: run 'loopjam' (tray) or find LoopJam in your applications menu."
case ":$PATH:" in *":$BIN:"*) ;; *) echo "note: add $BIN to your PATH." ;; esac
