#!/usr/bin/env bash
# Fetch one of Debian's Frets on Fire song packages (real songs with human charts and a separate
# guitar stem) into ${LOOPJAM_DATA:-~/.cache/loopjam-data} and print its songs folder. Idempotent.
#   usage: fetch-demo-song.sh [muldjord|sectoid]
# muldjord (default) holds the 4 benchmark songs; sectoid holds 4 other songs, the development set
# that tuning uses so the benchmark figures stay measured on music the tuning never saw.
set -euo pipefail
set_name=${1:-muldjord}
case "$set_name" in
  muldjord|sectoid) ;;
  *) echo "fetch-demo-song.sh: unknown song set '$set_name' (muldjord or sectoid)" >&2; exit 2 ;;
esac
dest=${LOOPJAM_DATA:-$HOME/.cache/loopjam-data}
pkg=fretsonfire-songs-$set_name
songs="$dest/$pkg/usr/share/games/fretsonfire/data/songs/$set_name"
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
