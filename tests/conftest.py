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
