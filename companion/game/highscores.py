"""Best results per chart and difficulty, kept in ``loopjam_home()/highscores.json``.

The file maps ``"<chart_id>/<difficulty>"`` to a list of entries (best first, at most
:data:`KEEP`), each a :class:`~companion.game.engine.Results` as a dict plus ``player`` and
``date``. Writes go through a temporary file and a rename, so a crash never leaves half a file.
"""
from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path

from companion.game.engine import Results

__all__ = ["HighScores", "HighScoreError", "KEEP"]

KEEP = 10


class HighScoreError(ValueError):
    """The high-score file exists but is not readable as one."""


class HighScores:
    """The local high-score table.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from companion.game.engine import Results
    >>> table = HighScores(Path(tempfile.mkdtemp()) / "highscores.json")
    >>> run = Results(score=5200, accuracy=0.93, hits=52, misses=4, perfect=30, great=15,
    ...               good=7, max_combo=31, notes=56, sustains_held=3, sustains=5)
    >>> table.submit("abc123", "expert", run)          # the first entry is the best
    True
    >>> table.best("abc123", "expert")["score"]
    5200
    """

    def __init__(self, path: str | Path | None = None):
        if path is None:
            from chart_store.home import loopjam_home
            path = loopjam_home() / "highscores.json"
        self.path = Path(path)

    def _load(self) -> dict:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as error:
            raise HighScoreError(f"{self.path}: {error}") from None
        if not isinstance(data, dict):
            raise HighScoreError(f"{self.path}: expected a JSON object")
        return data

    def top(self, chart_id: str, difficulty: str) -> list[dict]:
        """Entries for one chart and difficulty, best first."""
        return list(self._load().get(f"{chart_id}/{difficulty}", []))

    def best(self, chart_id: str, difficulty: str) -> dict | None:
        entries = self.top(chart_id, difficulty)
        return entries[0] if entries else None

    def submit(self, chart_id: str, difficulty: str, results: Results, *,
               player: str = "keyboard") -> bool:
        """Record ``results``; returns True when it is the new best (highest score)."""
        data = self._load()
        key = f"{chart_id}/{difficulty}"
        entries = data.get(key, [])
        entry = {**dataclasses.asdict(results), "player": player,
                 "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        is_best = not entries or results.score > entries[0]["score"]
        entries.append(entry)
        entries.sort(key=lambda e: (-e["score"], -e["accuracy"]))
        data[key] = entries[:KEEP]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
        os.replace(tmp, self.path)
        return is_best
