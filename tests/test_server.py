"""The chart server, for real: uvicorn on 127.0.0.1 over SQLite and over PostgreSQL."""
from __future__ import annotations

import io
import json
import zipfile
from urllib.parse import quote

import numpy as np
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings

from chart_store.chart import Source
from chart_store.chartfile import dumps
from tests.fixtures.chart_server import issue_token, start_server, stop_server
from tests.fixtures.songs import song_chart, synth_song


@pytest.fixture(scope="module")
def charts():
    y = synth_song(4, duration_s=30.0, sr=22050)
    return {"a": song_chart(1), "b": song_chart(2),
            "analyzed": song_chart(4, y=y, title="Generated"),
            "human": song_chart(4, y=y, title="Human", source=Source.IMPORTED_HUMAN)}


def _auth(token):
    return {"Authorization": f"Bearer {token}"}


def _upload(server, chart, token=None, **params):
    return requests.post(server.url + "/charts", data=dumps(chart), params=params,
                         headers=_auth(token or server.token), timeout=10)


def _identify(server, items):
    return requests.post(server.url + "/identify", json={"items": [int(i) for i in items]},
                         timeout=10)


def _count(server):
    return requests.get(server.url + "/health", timeout=10).json()["charts"]


def test_upload_fetch_search_identify(chart_server, charts):
    a = charts["a"]
    response = _upload(chart_server, a)
    assert response.status_code == 201 and response.json() == {"chart_id": a.id, "created": True}
    assert _upload(chart_server, a).status_code == 200  # same content: nothing new
    fetched = requests.get(f"{chart_server.url}/charts/{a.id}", timeout=10)
    assert fetched.status_code == 200 and fetched.content == dumps(a)
    info = requests.get(f"{chart_server.url}/charts/{a.id}/info", timeout=10).json()
    assert info["title"] == "Song 1" and info["source"] == "analyzed"
    found = requests.get(chart_server.url + "/charts", params={"q": "SONG"}, timeout=10).json()
    assert [c["chart_id"] for c in found["charts"]] == [a.id]
    match = _identify(chart_server, a.fingerprint.items[40:80]).json()["match"]
    assert match["chart_id"] == a.id and abs(match["offset_s"] - 40 * a.fingerprint.item_s) < 0.13
    rng = np.random.default_rng(0)
    assert _identify(chart_server, rng.integers(0, 2**32, 40)).json() == {"match": None}
    health = requests.get(chart_server.url + "/health", timeout=10).json()
    assert health["status"] == "ok" and health["charts"] == 1
    assert health["database"] in ("sqlite", "postgresql")


def test_human_chart_outranks_generated(chart_server, charts):
    _upload(chart_server, charts["analyzed"])
    _upload(chart_server, charts["human"])
    match = _identify(chart_server, charts["human"].fingerprint.items[60:100]).json()["match"]
    assert match["chart_id"] == charts["human"].id


def test_tokens_own_their_charts(chart_server, charts):
    a, b = charts["a"], charts["b"]
    other = chart_server.other_token
    assert _upload(chart_server, a).status_code == 201
    # Another token can neither replace nor delete it.
    response = _upload(chart_server, b, token=other, replaces=a.id)
    assert response.status_code == 403 and "another token" in response.json()["error"]
    response = requests.delete(f"{chart_server.url}/charts/{a.id}", headers=_auth(other),
                               timeout=10)
    assert response.status_code == 403
    assert _count(chart_server) == 1
    # The owner can replace it.
    response = _upload(chart_server, b, replaces=a.id)
    assert response.status_code == 201
    assert requests.get(f"{chart_server.url}/charts/{a.id}", timeout=10).status_code == 404
    assert requests.delete(f"{chart_server.url}/charts/{b.id}", headers=_auth(chart_server.token),
                           timeout=10).status_code == 204
    assert _count(chart_server) == 0


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"},
                                     {"Authorization": "Basic dXNlcjpwdw=="},
                                     {"Authorization": "Bearer ' OR 1=1 --"}])
def test_missing_or_wrong_token_is_401(chart_server, charts, headers):
    response = requests.post(chart_server.url + "/charts", data=dumps(charts["a"]),
                             headers=headers, timeout=10)
    assert response.status_code in (401, 403) and "error" in response.json()
    assert _count(chart_server) == 0


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buffer.getvalue()


HOSTILE = {
    "empty": b"",
    "random": bytes(np.random.default_rng(1).integers(0, 256, 5000, dtype=np.uint8)),
    "json": json.dumps({"format": "loopjam-chart"}).encode(),
    "traversal": _zip({"../../etc/passwd": b"x", "chart.json": b"{}"}),
    "bomb": _zip({"chart.json": b"{" + b" " * (8 * 2**20) + b"}"}),
    "bad-json": _zip({"chart.json": b"{not json"}),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_chart_files_are_refused(chart_server, charts, name):
    _upload(chart_server, charts["a"])
    response = requests.post(chart_server.url + "/charts", data=HOSTILE[name],
                             headers=_auth(chart_server.token), timeout=10)
    assert response.status_code == 422, response.text
    assert response.json()["error"].startswith("invalid chart file")
    assert _count(chart_server) == 1


def test_truncated_chart_is_refused(chart_server, charts):
    data = dumps(charts["a"])
    response = requests.post(chart_server.url + "/charts", data=data[:len(data) // 2],
                             headers=_auth(chart_server.token), timeout=10)
    assert response.status_code == 422 and _count(chart_server) == 0


def test_oversized_bodies_are_413(chart_server):
    big = b"\0" * (17 * 2**20)
    response = requests.post(chart_server.url + "/charts", data=big,
                             headers=_auth(chart_server.token), timeout=30)
    assert response.status_code == 413
    chunks = (b"\0" * 2**20 for _ in range(20))  # chunked: no Content-Length to trust
    response = requests.post(chart_server.url + "/charts", data=chunks,
                             headers=_auth(chart_server.token), timeout=30)
    assert response.status_code == 413
    response = requests.post(chart_server.url + "/identify", json={"items": [1] * 100_000},
                             timeout=30)
    assert response.status_code == 413 and _count(chart_server) == 0


@pytest.mark.parametrize("body", [b"{bad json", b"[]", b'{"items": []}', b'{"items": [-1]}',
                                  b'{"items": [4294967296]}', b'{"items": ["x"]}',
                                  b'{"items": [1], "algorithm": 1}', b'{"items": [1], "x": 1}',
                                  b'{"items": [1.5]}', b"\xff\xfe"])
def test_malformed_identify_is_422(chart_server, body):
    response = requests.post(chart_server.url + "/identify", data=body,
                             headers={"Content-Type": "application/json"}, timeout=10)
    assert response.status_code == 422, response.text
    assert set(response.json()) == {"error"} and "Traceback" not in response.text
    assert response.json()["error"].startswith("invalid request: body")


def test_identify_error_says_where(chart_server):
    response = requests.post(chart_server.url + "/identify", json={"items": [1, 2, 2**32]},
                             timeout=10)
    assert response.status_code == 422
    assert response.json()["error"].startswith("invalid request: body.items.2: ")


def test_identification_index_is_replaced_whole(tmp_path, charts):
    """The server's index changes only by refresh(), which builds a new one aside: a search
    never waits for a rebuild, and sees changes (from any process) after the next refresh."""
    from chart_store.server.storage import ServerStore

    db = f"sqlite:///{tmp_path / 'refresh.sqlite3'}"
    store, other = ServerStore(db), ServerStore(db)
    owner = store.token_id(store.issue_token("t"))
    a, b = charts["a"], charts["b"]
    store.upload(a, owner=owner)
    assert store.refresh() and not store.refresh()  # built once, then nothing changed
    first = store.index
    assert a.id in first and store.identify(a.fingerprint.items[40:80]).chart_id == a.id
    other.upload(b, owner=owner)  # another worker: seen at the next refresh only
    assert store.identify(b.fingerprint.items[40:80]) is None and store.index is first
    assert store.refresh() and store.identify(b.fingerprint.items[40:80]).chart_id == b.id
    assert store.index is not first and b.id not in first  # the old index never changed
    store.delete(b.id, owner=owner)
    assert store.refresh() and store.identify(b.fingerprint.items[40:80]) is None


@pytest.mark.parametrize("text", ["'; DROP TABLE charts; --", "%", "_", "\\", "\" OR 1=1",
                                  "Robert'); DROP TABLE tokens;--", "\u0000", "?", "%s"])
def test_sql_ish_strings_change_nothing(chart_server, charts, text):
    _upload(chart_server, charts["a"])
    response = requests.get(chart_server.url + "/charts", params={"q": text}, timeout=10)
    assert (response.status_code, response.json().get("charts")) in ((200, []), (422, None))
    quoted = quote(text, safe="")
    for path in (f"/charts/{quoted}", f"/charts/{quoted}/info"):
        assert requests.get(chart_server.url + path, timeout=10).status_code == 404
    assert requests.delete(f"{chart_server.url}/charts/{quoted}",
                           headers=_auth(chart_server.token), timeout=10).status_code == 404
    assert _count(chart_server) == 1
    assert _upload(chart_server, charts["b"]).status_code == 201  # tokens table intact


def test_nul_in_chart_text_is_refused(chart_server):
    chart = song_chart(6, title="evil\u0000title")
    response = _upload(chart_server, chart)
    assert response.status_code == 422 and _count(chart_server) == 0


def test_issue_token_from_the_command_line(tmp_path, charts):
    import subprocess
    import sys

    db = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    done = subprocess.run([sys.executable, "-m", "companion", "serve", "--db", db,
                           "--issue-token", "alice"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and len(done.stdout.strip()) >= 40
    again = subprocess.run([sys.executable, "-m", "companion", "serve", "--db", db,
                            "--issue-token", "alice"], capture_output=True, text=True, timeout=60)
    assert again.returncode == 1 and "already exists" in again.stderr
    from chart_store.server.storage import ServerStore
    assert ServerStore(db).token_id(done.stdout.strip()) is not None
    nameless = subprocess.run([sys.executable, "-m", "companion", "serve", "--db", db,
                               "--issue-token", ""], capture_output=True, text=True, timeout=60)
    assert nameless.returncode == 1 and "--issue-token needs a name" in nameless.stderr


def test_a_port_in_use_is_a_one_line_error(tmp_path):
    import socket
    import subprocess
    import sys

    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "companion", "serve", "--port", str(port),
                               "--db", f"sqlite:///{tmp_path / 'p.sqlite3'}"],
                              capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr == f"loopjam: cannot listen on 127.0.0.1:{port}: Address already in use\n"


def test_a_token_can_follow_its_option_on_a_command_line(tmp_path):
    # "--token -abc" reads as a missing argument: no token may start with "-" (a bare URL-safe
    # one did 1 time in 64; 500 tokens would show one with 99.96 % probability).
    from chart_store.server.storage import ServerStore
    store = ServerStore(f"sqlite:///{tmp_path / 'tokens.sqlite3'}")
    tokens = [store.issue_token(f"user{i}") for i in range(500)]
    assert all(token.startswith("lj_") for token in tokens) and len(set(tokens)) == 500


def test_unknown_chart_is_404(chart_server):
    response = requests.get(chart_server.url + "/charts/" + "0" * 24, timeout=10)
    assert response.status_code == 404 and response.json() == {"error": f"no chart {'0' * 24}"}


def test_writes_are_rate_limited_per_token(tmp_path, charts):
    db = f"sqlite:///{tmp_path / 'limited.sqlite3'}"
    token, other = issue_token(db, "fast"), issue_token(db, "other")
    proc, url = start_server(db, extra_args=["--writes-per-s", "0.1"])
    try:
        statuses = [requests.post(url + "/charts", data=dumps(charts["a"]), headers=_auth(token),
                                  timeout=10).status_code for _ in range(25)]
        assert statuses[0] == 201 and statuses[-1] == 429 and statuses.count(429) >= 4
        limited = requests.post(url + "/charts", data=dumps(charts["a"]), headers=_auth(token),
                                timeout=10)
        assert int(limited.headers["Retry-After"]) >= 1
        # Another token is not affected.
        assert requests.post(url + "/charts", data=dumps(charts["b"]), headers=_auth(other),
                             timeout=10).status_code == 201
    finally:
        stop_server(proc)


# -- fuzzing from the OpenAPI document -------------------------------------------------------

@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory, charts):
    db = f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'server.sqlite3'}"
    token = issue_token(db, "fuzzer")
    proc, url = start_server(db, extra_args=["--writes-per-s", "1000"])
    requests.post(url + "/charts", data=dumps(charts["a"]), headers=_auth(token), timeout=10)
    yield url, token
    stop_server(proc)


def test_api_conforms_to_its_openapi_document(fuzz_server, charts):
    """Every operation, fed examples generated from the OpenAPI document (valid and not),
    answers as documented, never with a server error, and leaves the seeded chart intact."""
    from hypothesis import given

    url, token = fuzz_server
    document = requests.get(url + "/openapi.json", timeout=10).json()
    body = document["paths"]["/identify"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"]["properties"]["items"]["maxItems"] == 2048  # fuzzed by its schema
    schema = schemathesis.openapi.from_url(url + "/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.label for op in operations} >= {"POST /identify", "POST /charts", "GET /health"}
    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck),
                  database=None)
        def check(case):
            response = case.call(headers=_auth(token), timeout=10)
            # A chart upload is "any bytes" to OpenAPI, but only real chart files are valid.
            skip = ([schemathesis.checks.positive_data_acceptance]
                    if operation.label == "POST /charts" else [])
            case.validate_response(response, excluded_checks=skip)
            assert response.status_code < 500 and "Traceback" not in response.text

        check()
    fetched = requests.get(f"{url}/charts/{charts['a'].id}", timeout=10)
    assert fetched.content == dumps(charts["a"])
