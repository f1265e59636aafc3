"""Where the companion gets charts: the local store first, then a chart server, offline-safe.

:class:`ChartResolver` answers ``identify(fp)`` and ``get(chart_id)`` from the
:class:`~chart_store.local.LocalStore`; only when the local store has no answer does it ask the
:class:`~chart_store.client.RemoteStore` (if one is configured), and it caches every chart it
fetches, so the next time the song plays it is found offline. A server that fails is left alone
for ``backoff_s`` seconds, so a live loop calling ``identify`` every second never waits on a
dead network more than once per back-off.
"""
from __future__ import annotations

import threading
import time

from chart_store.chart import Chart, Fingerprint
from chart_store.fingerprint import Match
from chart_store.local import ChartNotFound, LocalStore

__all__ = ["ChartResolver"]


class ChartResolver:
    """Local first, then remote; works with no remote and with a dead one.

    Parameters
    ----------
    local : LocalStore, optional
        Default ``LocalStore()`` (under ``LOOPJAM_HOME``).
    remote_url : str, optional
        Chart server to ask when the local store has no answer (None: local only).
    token : str, optional
        Server token (not needed for reads).
    timeout_s : float
        Per-request timeout for the server, seconds (short: the live loop is waiting).
    backoff_s : float
        After a server failure, seconds during which the server is not asked again.

    Examples
    --------
    >>> resolver = ChartResolver(remote_url="http://127.0.0.1:8750")   # doctest: +SKIP
    >>> match = resolver.identify(fingerprint(last_10_s, sr))          # doctest: +SKIP
    >>> chart = resolver.get(match.chart_id)   # cached locally by identify  # doctest: +SKIP
    """

    def __init__(self, local: LocalStore | None = None, *, remote_url: str | None = None,
                 token: str | None = None, timeout_s: float = 2.0, backoff_s: float = 30.0):
        self.local = local if local is not None else LocalStore()
        self.remote = None
        if remote_url:
            from chart_store.client import RemoteStore
            self.remote = RemoteStore(remote_url, token, timeout_s=timeout_s, retries=0)
        self.backoff_s = backoff_s
        #: Why the server last failed (None while it answers): "not found" and "not asked"
        #: are different answers for the user.
        self.remote_error: str | None = None
        self._down_until = 0.0
        self._lock = threading.Lock()

    def _remote_failed(self, error: Exception) -> None:
        self.remote_error = str(error) or type(error).__name__
        self._down_until = time.monotonic() + self.backoff_s

    @property
    def asks_remote(self) -> bool:
        """Whether :meth:`identify_remote` would ask the server now (one is configured and it
        is not backed off)."""
        return self.remote is not None and time.monotonic() >= self._down_until

    def identify(self, fp: Fingerprint) -> Match | None:
        """The chart ``fp`` comes from, or None; a remote match is fetched and cached first."""
        match = self.local.identify(fp)
        if match is not None or not self.asks_remote:
            return match
        return self.identify_remote(fp)

    def identify_remote(self, fp: Fingerprint) -> Match | None:
        """The server's match of ``fp`` (its chart fetched and cached locally first), or None,
        also when no server is configured or it fails (then it is backed off). Safe to call
        from another thread than the one using the local store: each thread has its own
        database connection."""
        from chart_store.client import RemoteError

        if self.remote is None:
            return None
        try:
            match = self.remote.identify(fp)
            self.remote_error = None
            if match is not None and match.chart_id not in self.local:
                self._cache(match.chart_id)
        except (RemoteError, ChartNotFound) as error:
            self._remote_failed(error)
            return None
        return match

    def get(self, chart_id: str) -> Chart:
        """Chart ``chart_id`` from the local store, else the server (then cached locally).

        Raises :class:`~chart_store.local.ChartNotFound` when neither has it (or the server is
        unreachable).
        """
        from chart_store.client import RemoteError

        try:
            return self.local.get(chart_id)
        except ChartNotFound:
            if not self.asks_remote:
                raise
        try:
            return self._cache(chart_id)
        except RemoteError as error:
            self._remote_failed(error)
            raise ChartNotFound(f"chart {chart_id} is not local and the server failed: "
                                f"{error}") from None

    def _cache(self, chart_id: str) -> Chart:
        with self._lock:
            chart = self.remote.get(chart_id)
            self.local.put(chart, origin=self.remote.url)
            return chart
