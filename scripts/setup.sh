#!/usr/bin/env bash
# Install what LoopJam needs on a Debian/Ubuntu machine, idempotently, printing what it does.
#   usage: scripts/setup.sh [main|test]
#     main  system packages for running LoopJam + a .venv with loopjam and its runtime extras
#     test  the same plus what the test suite starts (PulseAudio, Xvfb, PostgreSQL, demucs, torch CPU)
# Re-running does only what is missing. Needs root or sudo for apt-get.
set -euo pipefail
mode=${1:-main}
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
say() { printf '[setup] %s\n' "$*" >&2; }

# --- system packages -------------------------------------------------------------------------
apt_main=(libchromaprint1 libchromaprint-tools ffmpeg libsndfile1 pulseaudio pulseaudio-utils
          libgl1-mesa-dri libglu1-mesa python3-venv python3-tk)
apt_test=(xvfb xauth x11-utils postgresql imagemagick sox portaudio19-dev shellcheck)
wanted=("${apt_main[@]}")
[ "$mode" = test ] && wanted+=("${apt_test[@]}")
missing=()
for pkg in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  say "apt-get install ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  say "system packages present"
fi

# --- Python environment ----------------------------------------------------------------------
python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  say "creating .venv with $($python --version)"
  $python -m venv .venv
fi
pip=(quiet_pip .venv/bin/python -m pip install -q --disable-pip-version-check)
# Some machines' pip configuration names local indexes that may be absent: drop those warnings.
quiet_pip() { "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2); }
# Re-install only when the dependency declarations changed.
stamp=".venv/.loopjam-$mode-$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  if [ "$mode" = test ]; then
    # torch's CPU build first: a bare requirement would pull a multi-GB CUDA build.
    say "pip install torch==2.13.0 (CPU) and demucs (separation extra, tested with a tiny model)"
    "${pip[@]}" torch==2.13.0
    "${pip[@]}" "demucs==4.1.0"
    say "pip install -e .[server,pyaudio,test]"
    "${pip[@]}" -e ".[server,pyaudio,test]"
  else
    say "pip install -e .[server]"
    "${pip[@]}" -e ".[server]"
  fi
  # basic-pitch's wheel ships the ONNX model we run with onnxruntime; its TensorFlow pin is not needed.
  say "pip install --no-deps basic-pitch"
  "${pip[@]}" --no-deps "basic-pitch>=0.4"
  rm -f .venv/.loopjam-"$mode"-*
  touch "$stamp"
else
  say "Python packages up to date (.venv)"
fi
say "ready: $repo/.venv/bin/loopjam"
