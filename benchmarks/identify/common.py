"""Shared pieces of the identification benchmarks: the real recordings, their fingerprints
(cached), and the degradations streaming applies to audio.

Recordings: the 4 human-charted songs of Debian's fretsonfire-songs-muldjord (mix = song.ogg +
guitar.ogg; ``/work/shared/scripts/fetch-fof-songs.sh``) and the distractors of
``benchmarks/identify/fetch_distractors.sh`` (tracks of Debian game-music packages, 30 s or
longer, near-duplicates dropped).
"""
from __future__ import annotations

import hashlib
import json
import os
import pathlib
import subprocess
import tempfile
from dataclasses import dataclass

import numpy as np
import soundfile as sf

from analyzer.decode import load, probe
from chart_store.fingerprint import fingerprint

DATA = pathlib.Path(os.environ.get("LOOPJAM_DATA", pathlib.Path.home() / ".cache/loopjam-data"))
SONGS = DATA / "fretsonfire-songs-muldjord/usr/share/games/fretsonfire/data/songs/muldjord"
DISTRACTORS = DATA / "distractors"
CACHE = DATA / "fingerprints"
AUDIO_SUFFIXES = (".ogg", ".opus", ".mp3", ".flac")
# All about 96 kbps (libvorbis refuses a fixed 96k for mono: its quality 3 is ~96-112 kbps).
CODECS = {"mp3": (["-c:a", "libmp3lame", "-b:a", "96k"], "mp3"),
          "aac": (["-c:a", "aac", "-b:a", "96k"], "m4a"),
          "opus": (["-c:a", "libopus", "-b:a", "96k"], "opus"),
          "vorbis": (["-c:a", "libvorbis", "-q:a", "3"], "ogg")}


@dataclass(frozen=True)
class Recording:
    name: str
    paths: tuple[str, ...]  # mixed together (a Frets on Fire song is backing + guitar)

    def audio(self, offset_s: float = 0.0, duration_s: float | None = None
              ) -> tuple[np.ndarray, int]:
        """(channels, n) float32 and the sample rate of the mix (or of a slice of it)."""
        parts, sr = [], None
        for path in self.paths:  # at the first stem's rate
            parts.append(load(path, sr=sr, mono=False, offset_s=offset_s, duration_s=duration_s))
            sr = parts[-1][1]
        n = min(y.shape[-1] for y, _ in parts)
        ch = max(y.shape[0] for y, _ in parts)
        mix = np.zeros((ch, n), np.float32)
        for y, _ in parts:
            mix += y[:, :n] if y.shape[0] == ch else y[:1, :n]
        return mix, sr

    def items(self) -> np.ndarray:
        """Chromaprint items of the whole mix at its own rate, cached on disk."""
        key = hashlib.sha1("|".join(self.paths).encode()).hexdigest()
        cached = CACHE / f"{key}.npy"
        if cached.exists():
            return np.load(cached)
        y, sr = self.audio()
        items = fingerprint(y, sr).items
        CACHE.mkdir(parents=True, exist_ok=True)
        np.save(cached, items)
        return items


def benchmark_songs(folder=None) -> list[Recording]:
    """The songs of ``folder`` (default: the 4 benchmark songs, ``benchmarks.data.songs_dir``;
    ``benchmarks.data.dev_songs_dir()`` gives the development set; any folder of Frets on Fire /
    Clone Hero / YARG songs), each with every stem mixed (here song + guitar)."""
    from analyzer.formats import read_song_folder
    from benchmarks.data import song_folders, songs_dir

    root = songs_dir(folder) if folder else SONGS
    if not root.is_dir():
        raise SystemExit("run /work/shared/scripts/fetch-fof-songs.sh first")
    songs = [read_song_folder(d) for d in song_folders(root)]
    return [Recording(song.folder.name, tuple(str(p) for p in song.stems.values()))
            for song in songs if song.stems]


def distractors(min_duration_s: float = 30.0) -> list[Recording]:
    """Distractor tracks, sorted by path (Frets on Fire folders mixed like the songs)."""
    if not DISTRACTORS.is_dir():
        raise SystemExit("run benchmarks/identify/fetch_distractors.sh first")
    packages = hashlib.sha1(" ".join([*sorted(p.name for p in DISTRACTORS.iterdir()),
                                      *AUDIO_SUFFIXES]).encode())
    listing = CACHE / f"distractors-{min_duration_s:g}s-{packages.hexdigest()[:8]}.json"
    if listing.exists():  # probing every file takes minutes on a busy machine
        return [Recording(name, tuple(paths)) for name, paths in json.loads(listing.read_text())]
    found = []
    for path in sorted(DISTRACTORS.rglob("*")):
        if path.suffix.lower() not in AUDIO_SUFFIXES or path.name == "guitar.ogg":
            continue
        if path.name == "song.ogg" and (path.parent / "guitar.ogg").exists():
            paths = (str(path), str(path.parent / "guitar.ogg"))
        else:
            paths = (str(path),)
        try:  # libsndfile reads the header in-process; ffprobe is the slow fallback
            duration_s = sf.info(str(path)).duration
        except (RuntimeError, ValueError):
            try:
                duration_s = probe(path).duration_s
            except ValueError:
                continue
        if duration_s < min_duration_s:
            continue
        found.append(Recording(str(path.relative_to(DISTRACTORS)), paths))
    CACHE.mkdir(parents=True, exist_ok=True)
    listing.write_text(json.dumps([[r.name, list(r.paths)] for r in found]))
    return found


def unique(recordings: list[Recording], *, max_ber: float = 0.15) -> list[Recording]:
    """``recordings`` without near-duplicates (the same music packaged twice): a track whose
    middle 10 s matches an earlier kept track below ``max_ber`` is dropped. Cached on disk, so
    the benchmarks' splits do not move when the index's matching is tuned."""
    from chart_store.index import FingerprintIndex

    names = "|".join(rec.name for rec in recordings) + f"|{max_ber}"
    listing = CACHE / f"unique-{hashlib.sha1(names.encode()).hexdigest()[:16]}.json"
    if listing.exists():
        keep = set(json.loads(listing.read_text()))
        return [rec for rec in recordings if rec.name in keep]
    index = FingerprintIndex(accept_ber=max_ber)
    kept = []
    for rec in recordings:
        items = rec.items()
        mid = len(items) // 2
        if not index.search(items[max(0, mid - 40):mid + 40]):
            kept.append(rec)
            index.add(rec.name, items)
    CACHE.mkdir(parents=True, exist_ok=True)
    listing.write_text(json.dumps([rec.name for rec in kept]))
    return kept


def degrade(y: np.ndarray, sr: int, *, codec: str, gain_db: float, out_sr: int, channels: int,
            fade_s: float = 0.0) -> tuple[np.ndarray, int]:
    """What a stream does to audio: gain, a fade-in, lossy coding at 96 kbps, resampling and
    down-mixing, through ffmpeg. ``y`` is (channels, n); returns (channels, n) float32."""
    y = np.atleast_2d(y) * 10 ** (gain_db / 20)
    if fade_s > 0:
        y = y * np.minimum(1.0, np.arange(y.shape[-1]) / (fade_s * sr))
    args, suffix = CODECS[codec]
    with tempfile.TemporaryDirectory() as tmp:
        src, enc, dst = (os.path.join(tmp, n) for n in ("in.wav", f"enc.{suffix}", "out.wav"))
        sf.write(src, np.clip(y, -1, 1).T, sr, subtype="FLOAT")
        subprocess.run(["ffmpeg", "-nostdin", "-y", "-loglevel", "error", "-i", src, *args,
                        "-ac", str(channels), enc], check=True)
        subprocess.run(["ffmpeg", "-nostdin", "-y", "-loglevel", "error", "-i", enc, "-ar",
                        str(out_sr), "-c:a", "pcm_f32le", dst], check=True)
        out, rate = sf.read(dst, dtype="float32", always_2d=True)
    return out.T, rate


def random_degradation(rng: np.random.Generator) -> dict:
    """One random streaming condition (codec, gain ±10 dB, 44.1/48 kHz, mono/stereo, fade)."""
    return {"codec": str(rng.choice(list(CODECS))), "gain_db": float(rng.uniform(-10, 10)),
            "out_sr": int(rng.choice([44100, 48000])), "channels": int(rng.choice([1, 2])),
            "fade_s": float(rng.choice([0.0, 0.5]))}


def percentiles(values, qs=(50, 95, 99)) -> dict:
    values = np.asarray(values, float)
    if not values.size:
        return {}
    return {f"p{q}": round(float(np.percentile(values, q)), 4) for q in qs} | {
        "max": round(float(values.max()), 4), "mean": round(float(values.mean()), 4)}


def split_distractors(rng, left_out: int, *, songs: list[Recording] = ()
                      ) -> tuple[list[Recording], list[Recording]]:
    """The de-duplicated distractors split at random into (indexed, left out): left-out ones
    measure false accepts on songs the index does not know. Distractors that are one of
    ``songs`` (the development songs are also a distractor package) are dropped."""
    same = {tuple(pathlib.Path(p).parts[-3:]) for rec in songs for p in rec.paths}
    others = [rec for rec in unique(distractors())
              if tuple(pathlib.Path(rec.paths[0]).parts[-3:]) not in same]
    order = rng.permutation(len(others))
    return [others[i] for i in order[left_out:]], [others[i] for i in order[:left_out]]
