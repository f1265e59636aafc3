#!/usr/bin/env bash
# Install LoopJam (system packages + .venv) and start its main job on the embedded defaults
# (local SQLite store under LOOPJAM_HOME, no server).
#   usage: scripts/start.sh
# With a desktop session and a sound server this runs the Linux installer (desktop entry, audio
# routing) and starts the tray companion (`loopjam`). Without
# them (a server, a container, CI) it says so in one line and runs the same live path offline on
# a real song: import a human-made chart, then `loopjam play` the mix block by block exactly as
# live, with a player that misses every note, so the missed guitar drops out of out.wav.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
bash scripts/setup.sh main
loopjam=.venv/bin/loopjam

if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ] && pactl info >/dev/null 2>&1; then
  # A desktop: the Linux installer adds the menu entry and routes audio through "LoopJam".
  echo "[start] installers/linux/install.sh (desktop entry, audio routing)" >&2
  bash installers/linux/install.sh
  echo "[start] starting the tray companion: play music in any app" >&2
  exec "${XDG_DATA_HOME:-$HOME/.local/share}/loopjam/venv/bin/loopjam" tray
fi

echo "[start] no desktop session or sound server here: running the live path offline on a real song instead" >&2
songs=$(bash "$repo/scripts/fetch-demo-song.sh")
demo=${LOOPJAM_DEMO_DIR:-$repo/out/demo}
mkdir -p "$demo"
song="$songs/chaos_god"
if [ ! -f "$demo/mix.ogg" ]; then
  echo "[start] mixing $song/song.ogg + guitar.ogg -> $demo/mix.ogg" >&2
  ffmpeg -loglevel error -y -i "$song/song.ogg" -i "$song/guitar.ogg" \
    -filter_complex amix=inputs=2:normalize=0 -c:a libvorbis -q:a 5 "$demo/mix.ogg"
fi
echo "[start] loopjam import $song" >&2
"$loopjam" import "$song"
echo "[start] loopjam play $demo/mix.ogg --sink $demo/out.wav --player miss-all --no-overlay --speed max" >&2
"$loopjam" play "$demo/mix.ogg" --sink "$demo/out.wav" --player miss-all --no-overlay --speed max \
  --log "$demo/play.jsonl"
echo "[start] events: $demo/play.jsonl   audio with the missed guitar removed: $demo/out.wav" >&2
tail -n 1 "$demo/play.jsonl"
