"""HTTP client of the chart server (``loopjam serve``): the read side of a store, plus upload.

- :class:`RemoteStore` — ``get``, ``list``, ``identify``, ``health``, and with a token ``put``,
  ``remove``;
- :class:`RemoteError` — the server is unreachable or refused (``status`` holds the HTTP code).

Every request has a timeout; connection failures, 429 and 5xx answers are retried a few times
with exponential back-off (all calls are idempotent: a chart's id is its content). Clients
send fingerprints, never audio.
"""
from __future__ import annotations

from dataclasses import dataclass

from chart_store.chart import Chart, Fingerprint
from chart_store.chartfile import ChartFormatError, dumps, loads
from chart_store.fingerprint import Match
from chart_store.local import ChartInfo, ChartNotFound

__all__ = ["RemoteStore", "RemoteError", "Uploaded"]


class RemoteError(RuntimeError):
    """The chart server could not be reached or answered with an error.

    ``status`` is the HTTP status (None when no answer came).
    """

    def __init__(self, message: str, *, status: int | None = None):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Uploaded:
    """What an upload did: the chart's id, and whether the server did not have it before."""

    chart_id: str
    created: bool


class RemoteStore:
    """A chart server reached over HTTP.

    Parameters
    ----------
    url : str
        Server base URL, e.g. ``http://127.0.0.1:8750``.
    token : str, optional
        Upload token (``loopjam serve --issue-token NAME`` prints one); reads need none.
    timeout_s : float
        Connect and read timeout of each attempt, seconds.
    retries : int
        Extra attempts after a connection error, 429 or 5xx answer.

    Examples
    --------
    >>> remote = RemoteStore("http://127.0.0.1:8750")       # doctest: +SKIP
    >>> remote.identify(fingerprint(y, sr))                 # doctest: +SKIP
    Match(chart_id='...', title='...', artist='...', offset_s=31.2, confidence=0.9)
    """

    def __init__(self, url: str, token: str | None = None, *, timeout_s: float = 5.0,
                 retries: int = 2):
        import requests
        from requests.adapters import HTTPAdapter
        from urllib3.util.retry import Retry

        if not url.startswith(("http://", "https://")):
            raise RemoteError(f"remote URL must start with http:// or https://, got {url!r}")
        self.url = url.rstrip("/")
        self.token = token
        self.timeout_s = timeout_s
        self._session = requests.Session()
        retry = Retry(total=retries, connect=retries, read=retries, status=retries,
                      backoff_factor=0.2, status_forcelist=(429, 500, 502, 503, 504),
                      allowed_methods=None, respect_retry_after_header=True,
                      raise_on_status=False)
        adapter = HTTPAdapter(max_retries=retry, pool_maxsize=16)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)

    def _request(self, method: str, path: str, *, auth: bool = False, **kwargs):
        import requests

        headers = kwargs.pop("headers", {})
        if auth:
            if not self.token:
                raise RemoteError("this request needs a token (--token or LOOPJAM_TOKEN)")
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            response = self._session.request(method, self.url + path, headers=headers,
                                             timeout=self.timeout_s, **kwargs)
        except requests.RequestException as error:
            raise RemoteError(f"cannot reach {self.url}: {type(error).__name__}") from None
        if response.status_code >= 400:
            try:
                detail = response.json().get("error", response.reason)
            except ValueError:
                detail = response.reason
            if response.status_code == 404:
                raise ChartNotFound(f"{self.url}: {detail}")
            raise RemoteError(f"{self.url}{path}: {response.status_code} {detail}",
                              status=response.status_code)
        return response

    def health(self) -> dict:
        """The server's health document ({"status": "ok", "charts": N, ...})."""
        return self._request("GET", "/health").json()

    def get(self, chart_id: str) -> Chart:
        """Fetch chart ``chart_id`` (read strictly); raises :class:`ChartNotFound`."""
        data = self._request("GET", f"/charts/{chart_id}").content
        try:
            return loads(data)
        except ChartFormatError as error:
            raise RemoteError(f"{self.url} sent an invalid chart {chart_id}: {error}") from None

    def list(self, query: str = "", *, limit: int = 100, offset: int = 0) -> list[ChartInfo]:
        """Charts whose title or artist contains ``query`` (all when empty), one page."""
        body = self._request("GET", "/charts", params={"q": query, "limit": limit,
                                                        "offset": offset}).json()
        return [ChartInfo(chart_id=c["chart_id"], title=c["title"], artist=c["artist"],
                          album=c["album"], duration_s=c["duration_s"], source=c["source"],
                          added_at=c["added_at"], origin=self.url) for c in body["charts"]]

    def identify(self, fp: Fingerprint) -> Match | None:
        """The server's match for fingerprint ``fp`` (a few seconds of audio), or None."""
        body = self._request("POST", "/identify", json={
            "items": [int(v) for v in fp.items], "algorithm": fp.algorithm}).json()
        match = body.get("match")
        return Match(**match) if match else None

    def put(self, chart: Chart, *, replaces: str | None = None) -> Uploaded:
        """Upload ``chart`` (needs the token). ``replaces`` names an older chart of this
        token's that the new one supersedes (it is removed)."""
        params = {"replaces": replaces} if replaces else None
        body = self._request("POST", "/charts", auth=True, data=dumps(chart), params=params,
                             headers={"Content-Type": "application/octet-stream"}).json()
        return Uploaded(body["chart_id"], bool(body.get("created", True)))

    def remove(self, chart_id: str) -> None:
        """Delete one of this token's charts."""
        self._request("DELETE", f"/charts/{chart_id}", auth=True)

    def close(self) -> None:
        self._session.close()
