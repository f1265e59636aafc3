#!/usr/bin/env bash
# Fetch Debian's fretsonfire-songs-muldjord (real songs with human charts and separate stems)
# into ${LOOPJAM_DATA:-~/.cache/loopjam-data} and print its songs folder. Idempotent.
set -euo pipefail
dest=${LOOPJAM_DATA:-$HOME/.cache/loopjam-data}
pkg=fretsonfire-songs-muldjord
songs="$dest/$pkg/usr/share/games/fretsonfire/data/songs/muldjord"
if [ ! -d "$songs" ]; then
  mkdir -p "$dest/$pkg"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  if ! (cd "$tmp" && apt-get download "$pkg" >/dev/null 2>&1); then
    apt-get update -qq >/dev/null
    (cd "$tmp" && apt-get download "$pkg" >/dev/null)
  fi
  dpkg -x "$tmp"/"$pkg"_*.deb "$dest/$pkg"
fi
echo "$songs"
