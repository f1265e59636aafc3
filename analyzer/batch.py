"""Analyze many files: folder scanning, worker processes, skipping what is done, resuming.

API
---
- :func:`find_audio` — the audio files under some paths, recursively, in a stable order, and
  the song folders (Frets on Fire / Clone Hero) left out (:class:`Found`).
- :func:`source_hash` — content hash of a file (what "already analyzed" means);
  :func:`source_file` — the file a chart was analyzed from, if it is still where it was seen.
- :func:`analyze_one` — one file → :class:`BatchResult` (what each worker runs).
- :func:`run_batch` — every file, ``jobs`` worker processes, a callback per finished file.
- :class:`BatchResult` — one input's outcome (the ``loopjam analyze --json`` line).

Each file is one independent job, stored as soon as it is done, so a killed batch resumes where it
stopped: the next run finds each finished file's content hash in the local store and skips it.
A failing file is reported and the batch goes on. Stems separated from the file (Demucs) that the
chart's notes come from are kept beside the store (:class:`chart_store.stems.StemStore`, Ogg
Vorbis, never uploaded) for stem cancellation while playing.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from analyzer.decode import AUDIO_EXTENSIONS, DecodeError
from chart_store.chart import DEFAULT_LANES

__all__ = ["find_audio", "Found", "source_hash", "source_file", "analyze_one", "run_batch",
           "BatchResult", "out_names"]


@dataclass(frozen=True)
class Found:
    """What :func:`find_audio` found: the audio files to analyze, the song folders it left out
    (each holds a human chart, notes.mid or notes.chart, and its audio files are the stems of
    one song: ``loopjam import`` takes them), and the paths given that do not exist."""

    audio: list[Path]
    song_folders: list[Path]
    missing: list[Path] = field(default_factory=list)


@dataclass(frozen=True)
class BatchResult:
    """What became of one input.

    ``chart_path`` is the chart file written (``--out``) or the store's copy; ``notes`` counts the
    notes per difficulty; ``skipped`` is True when the store already had a chart of this file;
    ``error`` is a one-line reason naming the file when it failed (then the chart fields are None).
    """

    input: str
    chart_id: str | None = None
    chart_path: str | None = None
    duration_s: float | None = None
    notes: dict[str, int] = field(default_factory=dict)
    elapsed_s: float = 0.0
    skipped: bool = False
    error: str | None = None

    def to_json(self) -> dict:
        """The ``--json`` line: the contract's keys, plus ``skipped``; ``error`` on failure."""
        if self.error is not None:
            return {"input": self.input, "error": self.error, "elapsed_s": self.elapsed_s}
        return {"input": self.input, "chart_id": self.chart_id, "chart_path": self.chart_path,
                "duration_s": self.duration_s, "notes": self.notes,
                "elapsed_s": self.elapsed_s, "skipped": self.skipped}


def find_audio(paths: Iterable, *, extensions=AUDIO_EXTENSIONS) -> Found:
    """Audio files named by ``paths``: files as given, folders searched recursively.

    Files inside folders count when their extension is in ``extensions`` (hidden files and folders
    are left out; links to folders are followed, each folder once); a file named directly is
    always taken (decoding will say if it is not audio).
    A song folder (one ``loopjam import`` takes: a notes.chart, or a notes.mid with its
    song.ini) is left out with what is under it: its files are stems (song.ogg, guitar.ogg...),
    not songs, and its chart is a human one. Duplicates are dropped; the order is the order
    given, each folder sorted by path. A path that does not exist (a typo, a dangling link) is
    listed in ``missing``: the others are still found.
    """
    from analyzer.formats.folder import is_song_folder, walk

    found: dict[Path, None] = {}
    songs: dict[Path, None] = {}
    missing: dict[Path, None] = {}
    for path in map(Path, paths):
        if path.is_dir():
            for root, dirs, files in walk(path):
                if is_song_folder(files):
                    songs.setdefault(Path(root))
                    dirs[:] = []
                    continue
                for name in sorted(files):
                    if not name.startswith(".") and Path(name).suffix.lower() in extensions:
                        found.setdefault(Path(root) / name)
        elif path.exists():
            found.setdefault(path)
        else:
            missing.setdefault(path)
    return Found(list(found), list(songs), list(missing))


def source_hash(path, *, block_bytes: int = 1 << 20) -> str:
    """``"sha256:<hex>"`` of the file's bytes, read in blocks (any size, bounded memory)."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while block := file.read(block_bytes):
            digest.update(block)
    return f"sha256:{digest.hexdigest()}"


def source_file(chart_id: str) -> Path | None:
    """The audio file ``chart_id`` was analyzed from, where :func:`analyze_one` last saw it, if
    it is still there unchanged (the same :func:`source_hash`); else None."""
    from chart_store.local import LocalStore

    store = LocalStore()
    try:
        files = store.source_files(chart_id)
    finally:
        store.close()
    for digest, path in files:
        try:
            if path.is_file() and source_hash(path) == digest:
                return path
        except OSError:  # unreadable now: as good as gone
            continue
    return None


def out_names(inputs: list[Path], out_dir) -> dict[Path, Path]:
    """Chart file names in ``out_dir`` for ``inputs``: ``<stem>.chart``, ``<stem>-2.chart``...
    when stems repeat (decided up front, so parallel workers never race for a name)."""
    from chart_store.chartfile import SUFFIX
    names, used = {}, set()
    for path in inputs:
        candidate, n = path.stem, 1
        while candidate.lower() in used:
            n += 1
            candidate = f"{path.stem}-{n}"
        used.add(candidate.lower())
        names[path] = Path(out_dir) / f"{candidate}{SUFFIX}"
    return names


def analyze_one(path, *, stems: str = "auto", lanes: int = DEFAULT_LANES, store: bool = True,
                out_path=None, skip_done: bool = True,
                progress: Callable[[str], None] | None = None) -> BatchResult:
    """Analyze one file and save the chart; never raises for a bad file.

    Parameters
    ----------
    path : path-like
    stems, lanes
        As in :func:`analyzer.pipeline.analyze_file`.
    store : bool
        Use the local store: put the chart there with the file's content hash and path, and its
        separated stems in the local stem store (:attr:`analyzer.pipeline.Analysis.stems`), and
        (with ``skip_done``) reuse the chart it already has for this content. False: leave it
        alone.
    out_path : path-like, optional
        Also write the chart file here.
    skip_done : bool
        Reuse the stored chart when the store already has one for this file's content. False
        analyzes it again (other lanes or stems), and the new chart replaces the one the store
        had made from this file.
    progress : callable, optional
        Passed to :func:`analyzer.pipeline.analyze_file` (called with each stage's name).
    """
    from chart_store.chartfile import write_chart
    from chart_store.local import LocalStore

    start = time.perf_counter()
    name = str(path)
    local = None
    try:
        digest = source_hash(path)
        local = LocalStore() if store else None
        known = local.chart_for_source(digest) if store else None
        chart = None
        if skip_done and known is not None and local.path(known).is_file():
            chart, chart_id, skipped = local.get(known), known, True
            local.saw_source(digest, chart_id, path)     # the file may have moved
        if chart is None:
            from analyzer.pipeline import analyze
            analysis = analyze(path, stems=stems, lanes=lanes, progress=progress)
            chart, chart_id, skipped = analysis.chart, analysis.chart.id, False
            if store:
                _keep_stems(chart_id, analysis)
                chart_id = local.put(chart, source_hash=digest, source_path=path)
                if known is not None and known != chart_id:
                    _forget(local, known)  # one generated chart a song: identify picks it
        chart_path = None
        if out_path is not None:
            Path(out_path).parent.mkdir(parents=True, exist_ok=True)
            write_chart(chart, out_path)
            chart_path = str(out_path)
        elif store:
            chart_path = str(local.path(chart_id))
        return BatchResult(name, chart_id, chart_path, round(chart.meta.duration_s, 3),
                           {d: len(track) for d, track in chart.difficulties.items()},
                           round(time.perf_counter() - start, 3), skipped)
    except DecodeError as error:
        reason = str(error)
    except OSError as error:
        reason = f"{Path(name).name}: {error.strerror or error}"
    except Exception as error:  # a bug must not sink the batch: report it with its type
        reason = f"{Path(name).name}: {type(error).__name__}: {error}"
    finally:
        if local is not None:
            local.close()
    return BatchResult(name, elapsed_s=round(time.perf_counter() - start, 3), error=reason)


def _forget(local, chart_id: str) -> None:
    """Remove an earlier chart made from the same file (and its stems), unless it is human."""
    from chart_store.chart import Source
    from chart_store.local import ChartNotFound
    from chart_store.stems import StemStore

    try:  # the catalogue row says where it came from: no need to read the chart file
        if local.info(chart_id).source == Source.IMPORTED_HUMAN.value:
            return
        local.remove(chart_id)
    except ChartNotFound:
        return
    StemStore().remove(chart_id)


def _keep_stems(chart_id: str, analysis) -> None:
    """Put the analysis' separated stems in the local stem store, under ``chart_id``; before the
    chart itself, so that a stored chart always has its stems (a killed run redoes both)."""
    from chart_store.stems import StemStore
    stems = StemStore()
    for name, y in analysis.stems.items():
        stems.put(chart_id, name, y, analysis.sr)


#: What stops a batch (Ctrl-C, a service manager's stop).
_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


@contextlib.contextmanager
def _stop_signals_held():
    """Take Ctrl-C and SIGTERM only once the block ends. A stop while a worker starts would cut
    the start-up data it reads from this process, and it would die with a traceback of its own.

    A stop that comes meanwhile is remembered and handed to the handler that was there before
    (any thread may have received it); the signals are also blocked on this thread, so the
    workers it starts inherit the block and lift it in :func:`_init_worker`, once they can
    take them. Off the main thread nothing is held (signals are not handled there)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    previous = {sig: signal.signal(sig, lambda sig, frame: caught.append((sig, frame)))
                for sig in _STOP_SIGNALS}
    blocks = hasattr(signal, "pthread_sigmask")
    if blocks:
        signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    try:
        yield
    finally:
        if blocks:   # what this thread held now reaches the restored handlers
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if caught:
            sig, frame = caught[0]
            if callable(previous[sig]):
                previous[sig](sig, frame)        # Ctrl-C's KeyboardInterrupt, say
            elif previous[sig] == signal.SIG_DFL:
                signal.raise_signal(sig)


def _init_worker(threads: int) -> None:
    # Each worker gets its share of the cores (numpy, onnxruntime and torch read these at import).
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)
    # Ctrl-C in a terminal reaches the whole process group: the parent decides (it stops the
    # workers), instead of each worker dying with a traceback of its own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):   # blocked while the parent started the workers
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)


def run_batch(paths: Iterable, *, jobs: int = 1, stems: str = "auto",
              lanes: int = DEFAULT_LANES, store: bool = True, skip_done: bool = True,
              out_dir=None,
              on_result: Callable[[BatchResult], None] | None = None,
              on_stage: Callable[[Path, str], None] | None = None) -> list[BatchResult]:
    """Analyze every audio file under ``paths`` (as :func:`find_audio` finds them: song folders
    left out) with ``jobs`` worker processes.

    Parameters
    ----------
    paths : iterable of path-like
        Files and folders (see :func:`find_audio`).
    jobs : int
        Worker processes; 1 runs in this process.
    stems, lanes, store, skip_done
        As in :func:`analyze_one`.
    out_dir : path-like, optional
        Also write each chart file here (names from :func:`out_names`).
    on_result : callable, optional
        Called in this process with each :class:`BatchResult` as it finishes.
    on_stage : callable, optional
        Called with (file, stage name) as each analysis stage starts; only with ``jobs=1``
        (workers' stages are not reported back).

    Returns
    -------
    list of BatchResult
        In completion order. Failures are results with ``error`` set, never exceptions.
    """
    found = find_audio(paths)
    inputs = found.audio
    targets = out_names(inputs, out_dir) if out_dir is not None else {}
    options = dict(stems=stems, lanes=lanes, store=store, skip_done=skip_done)
    results = []

    def finished(result):
        results.append(result)
        if on_result is not None:
            on_result(result)

    for path in found.missing:  # the rest of the batch goes on
        finished(BatchResult(str(path), error=f"{path}: no such file or folder"))

    if jobs <= 1 or len(inputs) <= 1:
        for path in inputs:
            stage = (lambda name, path=path: on_stage(path, name)) if on_stage else None
            finished(analyze_one(path, out_path=targets.get(path), progress=stage, **options))
        return results

    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed
    jobs = min(jobs, len(inputs))
    threads = max(1, (os.cpu_count() or 1) // jobs)
    # spawn: workers start clean (no inherited threads or locks), the same on every OS.
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"),
                             initializer=_init_worker, initargs=(threads,)) as pool:
        try:
            with _stop_signals_held():   # submit starts the workers
                futures = {pool.submit(analyze_one, path, out_path=targets.get(path),
                                       **options): path for path in inputs}
            for future in as_completed(futures):
                try:
                    finished(future.result())
                except Exception as error:  # the worker died (killed, out of memory)
                    finished(BatchResult(str(futures[future]), error=(
                        f"{futures[future].name}: worker failed: {type(error).__name__}")))
        except BaseException:  # Ctrl-C: finished files are already stored; stop the rest now
            # The files in the workers' hands (and the one queued ahead) would run to the end;
            # ProcessPoolExecutor has no public way to stop them before Python 3.14.
            workers = list((getattr(pool, "_processes", None) or {}).values())
            pool.shutdown(wait=False, cancel_futures=True)
            for process in workers:
                process.terminate()
            raise
    return results
