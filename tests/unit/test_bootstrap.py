"""bootstrap.py, the newcomer's first command: it knows demo, ui, stop and test, and hands
demo, ui and stop to `revleak` in the same process (exec), so Ctrl-C reaches `revleak ui`
directly and it can stop every Airflow component it started."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def bootstrap(monkeypatch):
    spec = importlib.util.spec_from_file_location("bootstrap", ROOT / "bootstrap.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "setup", lambda: None)  # the venv is there already
    execs = []

    def execv(exe, argv):  # the real one never returns: this process becomes revleak
        execs.append((exe, argv))
        raise SystemExit(0)

    monkeypatch.setattr(module.os, "execv", execv)
    monkeypatch.setattr(module.os, "chdir", lambda path: None)
    return module, execs


@pytest.mark.parametrize("argv", [["demo"], ["demo", "--fresh"], ["ui", "--port", "8081"],
                                  ["stop"]])
def test_revleak_takes_over_the_process(bootstrap, monkeypatch, argv):
    module, execs = bootstrap
    monkeypatch.setattr(sys, "argv", ["bootstrap.py", *argv])
    with pytest.raises(SystemExit):
        module.main()
    revleak = str(ROOT / ".venv" / "bin" / "revleak")
    assert [(str(exe), argv_) for exe, argv_ in execs] == [(revleak, [revleak, *argv])]


def test_an_unknown_verb_prints_the_usage():
    result = subprocess.run([sys.executable, str(ROOT / "bootstrap.py"), "deploy"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    for verb in ("demo", "ui", "stop", "test", "--fresh"):
        assert verb in result.stdout
