"""The HTTP client, the local-then-remote resolver and the store/identify commands."""
from __future__ import annotations

import http.server
import json
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import soundfile as sf

from chart_store.chart import Fingerprint
from chart_store.client import RemoteError, RemoteStore, Uploaded
from chart_store.local import ChartNotFound, LocalStore
from chart_store.resolver import ChartResolver
from chart_store.stems import StemStore
from tests.fixtures.chart_server import issue_token, start_server, stop_server
from tests.fixtures.songs import song_chart, synth_song

SR = 22050


@pytest.fixture(scope="module")
def charts():
    return [song_chart(seed) for seed in (11, 12, 13)]


def _excerpt(chart, start=40, n=40):
    return Fingerprint(chart.fingerprint.items[start:start + n])


def test_remote_store_round_trip(chart_server, charts):
    remote = RemoteStore(chart_server.url, chart_server.token)
    assert remote.put(charts[0]) == Uploaded(charts[0].id, created=True)
    assert remote.put(charts[0]) == Uploaded(charts[0].id, created=False)   # it was there
    assert remote.get(charts[0].id) == charts[0]
    assert [c.chart_id for c in remote.list("song 11")] == [charts[0].id]
    match = remote.identify(_excerpt(charts[0]))
    assert match.chart_id == charts[0].id and match.title == "Song 11"
    assert remote.identify(_excerpt(charts[1])) is None
    assert remote.health()["charts"] == 1
    with pytest.raises(ChartNotFound):
        remote.get(charts[1].id)
    remote.remove(charts[0].id)
    assert remote.health()["charts"] == 0


def test_remote_store_refusals(chart_server, charts):
    with pytest.raises(RemoteError, match="token"):
        RemoteStore(chart_server.url).put(charts[0])
    with pytest.raises(RemoteError) as error:
        RemoteStore(chart_server.url, "not-a-token").put(charts[0])
    assert error.value.status == 401
    with pytest.raises(RemoteError):
        RemoteStore("ftp://example")


def _silent_server():
    """A socket that accepts connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    return sock


def test_timeouts_and_unreachable_servers_raise_quickly():
    sock = _silent_server()
    try:
        remote = RemoteStore(f"http://127.0.0.1:{sock.getsockname()[1]}", timeout_s=0.3,
                             retries=1)
        start = time.monotonic()
        with pytest.raises(RemoteError, match="cannot reach"):
            remote.health()
        assert time.monotonic() - start < 3
    finally:
        sock.close()
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(RemoteError, match="cannot reach"):
        RemoteStore(f"http://127.0.0.1:{port}", timeout_s=0.5, retries=1).health()


class _Flaky(http.server.BaseHTTPRequestHandler):
    failures_left = 2

    def do_GET(self):
        cls = type(self)
        if cls.failures_left > 0:
            cls.failures_left -= 1
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = json.dumps({"status": "ok", "charts": 0}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_5xx_answers_are_retried():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        assert RemoteStore(url, retries=3).health()["status"] == "ok"
        _Flaky.failures_left = 5
        with pytest.raises(RemoteError) as error:
            RemoteStore(url, retries=1).health()
        assert error.value.status == 503
    finally:
        server.shutdown()
        server.server_close()


def test_resolver_local_first_then_remote_cached_then_offline(tmp_path, charts):
    db = f"sqlite:///{tmp_path / 'server.sqlite3'}"
    token = issue_token(db, "t")
    proc, url = start_server(db)
    local = LocalStore(tmp_path / "local")
    local.put(charts[0])
    try:
        RemoteStore(url, token).put(charts[1])
        resolver = ChartResolver(local, remote_url=url)
        assert resolver.identify(_excerpt(charts[0])).chart_id == charts[0].id
        match = resolver.identify(_excerpt(charts[1]))
        assert match.chart_id == charts[1].id
        assert charts[1].id in local  # cached by identify
        assert resolver.identify(_excerpt(charts[2])) is None
    finally:
        stop_server(proc)
    # The server is gone: everything cached still works, nothing waits on the network.
    offline = ChartResolver(LocalStore(tmp_path / "local"), remote_url=url, backoff_s=60)
    start = time.monotonic()
    assert offline.identify(_excerpt(charts[1])).chart_id == charts[1].id
    assert offline.get(charts[1].id) == charts[1]
    assert offline.identify(_excerpt(charts[2])) is None  # remote fails once, then backs off
    with pytest.raises(ChartNotFound):
        offline.get(charts[2].id)
    assert time.monotonic() - start < 5


def test_resolver_without_remote(tmp_path, charts):
    resolver = ChartResolver(LocalStore(tmp_path))
    assert resolver.identify(_excerpt(charts[0])) is None
    with pytest.raises(ChartNotFound):
        resolver.get(charts[0].id)


def _loopjam(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "companion", *args], capture_output=True,
                          text=True, timeout=timeout)


def test_identify_command(tmp_path, charts):
    LocalStore().put(charts[2])  # the test's LOOPJAM_HOME, which the command inherits
    y = synth_song(13, duration_s=30.0, sr=SR)
    sf.write(tmp_path / "clip.wav", y[int(9.0 * SR):int(15.0 * SR)] * 0.3, SR)
    done = _loopjam("identify", str(tmp_path / "clip.wav"), "--json")
    assert done.returncode == 0, done.stderr
    match = json.loads(done.stdout)["match"]
    assert set(match) == {"chart_id", "title", "artist", "offset_s", "confidence"}
    assert match["chart_id"] == charts[2].id and abs(match["offset_s"] - 9.0) <= 0.13
    done = _loopjam("identify", str(tmp_path / "clip.wav"))
    assert done.stdout.startswith(f"{charts[2].meta.artist} - {charts[2].meta.title}  "
                                  f"[{charts[2].id}]  at ") and done.stderr == ""
    sf.write(tmp_path / "other.wav", synth_song(99, duration_s=8.0, sr=SR), SR)
    done = _loopjam("identify", str(tmp_path / "other.wav"), "--json")
    assert json.loads(done.stdout) == {"match": None} and done.stderr == ""
    # A clip too short to tell says so (the answer on stdout stays the contract's).
    sf.write(tmp_path / "blip.wav", y[int(9.0 * SR):int(10.5 * SR)], SR)
    done = _loopjam("identify", str(tmp_path / "blip.wav"), "--json")
    assert json.loads(done.stdout) == {"match": None} and done.stderr == (
        f"loopjam: identify: {tmp_path / 'blip.wav'} is only 1.5 s of audio: 5 s or more "
        "identifies reliably\n")
    done = _loopjam("identify", str(tmp_path / "missing.wav"))
    assert done.returncode == 1 and done.stderr.startswith("loopjam: ")
    # "Unknown song" and "the server did not answer" are different answers.
    done = _loopjam("identify", str(tmp_path / "other.wav"), "--remote", "http://127.0.0.1:9")
    assert done.stdout == "no match\n" and "the chart server http://127.0.0.1:9 failed" in (
        done.stderr)
    done = _loopjam("identify", str(tmp_path / "other.wav"), "--remote", "127.0.0.1:9")
    assert done.returncode == 2 and "--remote: must start with http://" in done.stderr


def test_store_commands_push_pull(tmp_path, charts, monkeypatch):
    for chart in charts[:2]:
        LocalStore().put(chart)
    listed = [json.loads(line) for line in _loopjam("store", "list", "--json").stdout.split("\n")
              if line]
    assert {c["chart_id"] for c in listed} == {charts[0].id, charts[1].id}
    StemStore().put(charts[1].id, "guitar", np.zeros(44100, np.float32), 44100)
    stats = json.loads(_loopjam("store", "stats", "--json").stdout)
    assert stats["charts"] == 2 and stats["stem_bytes"] > 1000   # stems count on the disk too
    db = f"sqlite:///{tmp_path / 'server.sqlite3'}"
    token = issue_token(db, "pusher")
    proc, url = start_server(db)
    try:
        done = _loopjam("store", "push", "--remote", url)
        assert done.returncode == 1 and "token" in done.stderr
        # The server and the token can live in the config instead of the command line.
        for key, value in (("store.remote_url", url), ("store.token", token)):
            assert _loopjam("config", "set", key, value).returncode == 0
        done = _loopjam("store", "push")
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("pushed 2 new chart(s)")
        done = _loopjam("store", "push", "--json")            # a second push uploads nothing new
        assert [json.loads(line)["action"] for line in done.stdout.splitlines()] == [
            "already there", "already there"]
        assert RemoteStore(url).health()["charts"] == 2
        # Another machine (another LOOPJAM_HOME) pulls them.
        monkeypatch.setenv("LOOPJAM_HOME", str(tmp_path / "other-home"))
        done = _loopjam("store", "pull", "--remote", url, "--json")
        assert done.returncode == 0, done.stderr
        assert len(done.stdout.splitlines()) == 2
        assert {c.chart_id for c in LocalStore().list()} == {charts[0].id, charts[1].id}
        assert all(c.origin == url for c in LocalStore().list())
        done = _loopjam("store", "pull", "--remote", url, charts[0].id, "--json")
        assert json.loads(done.stdout) == {"chart_id": charts[0].id, "action": "already here"}
    finally:
        stop_server(proc)
    StemStore().put(charts[0].id, "guitar", np.zeros(4410, np.float32), 44100)
    prefix = charts[0].id[:8]
    assert _loopjam("store", "remove", prefix).returncode == 0
    assert charts[0].id not in LocalStore()
    assert StemStore().names(charts[0].id) == ()
    done = _loopjam("store", "remove", "ffffffffff")
    assert done.returncode == 1 and "no chart" in done.stderr
