"""Shared test set-up. Fixtures that start real components (PulseAudio, Xvfb, PostgreSQL, a
chart server) live one module each under tests/fixtures/ and are loaded here."""
import os
import pathlib

import pytest

pytest_plugins = sorted(
    f"tests.fixtures.{p.stem}" for p in (pathlib.Path(__file__).parent / "fixtures").glob("*.py")
    if not p.stem.startswith("_"))


@pytest.fixture(autouse=True)
def loopjam_home(tmp_path, monkeypatch):
    """Every test gets its own empty LOOPJAM_HOME, so no test sees the user's store."""
    home = tmp_path / "loopjam-home"
    monkeypatch.setenv("LOOPJAM_HOME", str(home))
    return home


_skipped: list[str] = []


def pytest_runtest_logreport(report):
    if report.skipped and not hasattr(report, "wasxfail"):
        _skipped.append(report.nodeid)


def pytest_sessionfinish(session, exitstatus):
    """On CI every real component is installed by the set-up script, so a skip means a missing
    install step: fail rather than pass with parts untested."""
    if os.environ.get("CI") and _skipped and session.exitstatus == 0:
        session.config.get_terminal_writer().line(
            f"CI: {len(_skipped)} test(s) skipped, e.g. {_skipped[0]}: a set-up step is missing",
            red=True)
        session.exitstatus = 1
