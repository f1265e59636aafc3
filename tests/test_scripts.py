"""The shell scripts a newcomer runs (set-up, tests, CI, the installers) parse and pass ShellCheck.

They run once on a fresh machine, where a quoting slip or an unchecked ``cd`` does the most harm
and is the hardest to see; ShellCheck catches those statically.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = sorted([*REPO.glob("scripts/*.sh"), *REPO.glob("installers/*/*.sh"),
                  *REPO.glob("benchmarks/**/*.sh"), REPO / ".ci" / "run"])


def test_the_scripts_are_found():
    names = {p.relative_to(REPO).as_posix() for p in SCRIPTS}
    assert {"scripts/setup.sh", "scripts/test.sh", ".ci/run", "installers/linux/install.sh",
            "installers/macos/install.sh"} <= names


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.relative_to(REPO).as_posix())
def test_script_passes_shellcheck(script):
    assert shutil.which("shellcheck"), "shellcheck is installed by scripts/setup.sh test"
    out = subprocess.run(["shellcheck", "-S", "warning", "-s", "bash", str(script)],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout
