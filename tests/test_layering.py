"""The architecture holds: chart_store <- analyzer <- companion, and importing is free of side
effects (no heavy libraries behind the top-level packages and the CLI, no sockets anywhere)."""
from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("chart_store", "analyzer", "companion")
#: What each package may not import: nothing imports upward.
FORBIDDEN = {"chart_store": {"analyzer", "companion"}, "analyzer": {"companion"}, "companion": set()}
#: Imported only inside the functions (or the modules only imported when used) that need them.
HEAVY = ("soundcard", "pyglet", "torch", "onnxruntime", "fastapi", "uvicorn", "librosa", "demucs",
         "pystray", "basic_pitch", "pyaudio", "psycopg")
#: Optional extras a module may need; a module that fails to import for want of one is skipped.
OPTIONAL = {"torch", "torchaudio", "demucs", "pyaudio", "psycopg", "fastapi", "uvicorn",
            "basic_pitch"}


def imported_modules(path: Path) -> set[str]:
    """Absolute names of every module ``path`` imports, anywhere in the file."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                names.add(".".join(base + ([node.module] if node.module else [])))
            else:
                names.add(node.module)
    return names


def test_relative_imports_are_resolved():
    source = ROOT / "companion" / "cli" / "chart.py"
    assert "companion.cli" in imported_modules(source)


@pytest.mark.parametrize("package", PACKAGES)
def test_no_upward_imports(package):
    offences = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for name in imported_modules(path):
            if name.split(".")[0] in FORBIDDEN[package]:
                offences.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not offences, "\n".join(offences)


# Run in a fresh interpreter: records sockets through an audit hook, then reports as JSON.
PROBE = textwrap.dedent("""
    import json, sys
    sockets = []
    def hook(event, args):
        if event in ("socket.__new__", "socket.connect", "socket.bind", "socket.getaddrinfo"):
            sockets.append(event)
    sys.addaudithook(hook)
    {body}
    print(json.dumps({{"sockets": sockets, "modules": sorted(sys.modules), **report}}))
""")


def probe(body: str) -> dict:
    code = PROBE.format(body=textwrap.indent(textwrap.dedent(body), "").strip())
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=ROOT, timeout=240)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


def test_top_level_packages_and_the_cli_import_nothing_heavy():
    report = probe("""
        import chart_store, analyzer, companion, companion.cli
        companion.cli.build_parser()     # imports every command module, as `loopjam --help` does
        report = {}
    """)
    heavy = [m for m in report["modules"] if m.split(".")[0] in HEAVY]
    assert not heavy, f"imported at start-up: {heavy}"
    assert not report["sockets"]


@pytest.mark.xvfb
def test_importing_every_module_opens_no_socket(xvfb):
    # With a display (pyglet connects to the X server when pyglet.gl is imported; the overlay
    # modules that do so are only imported when a window opens). __main__ modules run.
    report = probe("""
        import importlib, pkgutil
        failed, skipped = {}, []
        for top in ("chart_store", "analyzer", "companion"):
            package = importlib.import_module(top)
            for info in pkgutil.walk_packages(package.__path__, top + "."):
                if info.name.endswith(".__main__"):
                    continue
                try:
                    importlib.import_module(info.name)
                except ModuleNotFoundError as error:
                    if (error.name or "").split(".")[0] in %r:
                        skipped.append(info.name)
                    else:
                        failed[info.name] = repr(error)
                except BaseException as error:
                    failed[info.name] = repr(error)
        report = {"failed": failed, "skipped": skipped}
    """ % (OPTIONAL,))
    assert not report["failed"], report["failed"]
    assert not report["sockets"], f"sockets opened at import: {report['sockets']}"


def test_the_probe_sees_sockets_and_modules():
    report = probe("""
        import socket, colorsys
        socket.socket().close()
        report = {}
    """)
    assert "socket.__new__" in report["sockets"] and "colorsys" in report["modules"]
