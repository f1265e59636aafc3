#!/usr/bin/env bash
# Fetch real music for the identification benchmark's distractors: the tracks of a few
# Debian game-music packages (Ogg Vorbis/MP3/FLAC), unpacked with dpkg -x into
# ${LOOPJAM_DATA:-$HOME/.cache/loopjam-data}/distractors/<package>/. Prints that folder.
# Idempotent: packages already unpacked are skipped.
set -euo pipefail
dest=${1:-${LOOPJAM_DATA:-$HOME/.cache/loopjam-data}}/distractors
packages=(drascula-music hyperrogue-music singularity-music fretsonfire-songs-sectoid
          pushover-data asc-music planetblupi-music-ogg wesnoth-1.16-music colobot-common-sounds
          warzone2100-music hedgewars-data lincity-ng-data freeorion-data)
mkdir -p "$dest"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
updated=0
for pkg in "${packages[@]}"; do
  [ -d "$dest/$pkg" ] && continue
  if ! (cd "$tmp" && apt-get download "$pkg" >/dev/null 2>&1); then
    if [ "$updated" = 0 ]; then apt-get update >/dev/null; updated=1; fi
    (cd "$tmp" && apt-get download "$pkg" >/dev/null) || { echo "skipping $pkg" >&2; continue; }
  fi
  dpkg -x "$tmp"/"$pkg"_*.deb "$dest/$pkg.part" && mv "$dest/$pkg.part" "$dest/$pkg"
  rm -f "$tmp"/*.deb
done
echo "$dest"
