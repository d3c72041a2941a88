"""Set up revleak on a fresh machine with only Python 3.11, then run the demo or the tests.

    python3 bootstrap.py demo    # the main job: demo company → load → every DAG via Airflow
                                 #   (run it again any time; --fresh starts over)
    python3 bootstrap.py ui      # the Airflow UI on the embedded server; Ctrl-C stops it
    python3 bootstrap.py stop    # stop the embedded PostgreSQL
    python3 bootstrap.py test    # lint and the whole test suite

Creates .venv from the pinned requirements.lock (reinstalls only when the lock changes).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / "bin"
UV = "uv==0.13.9"


def python311() -> str:
    if sys.version_info[:2] == (3, 11):
        return sys.executable
    found = shutil.which("python3.11")
    if not found:
        sys.exit("bootstrap: revleak needs Python 3.11; install it and rerun with python3.11")
    return found


def run(*cmd: str | Path, **kw) -> None:
    subprocess.run([str(c) for c in cmd], check=True, **kw)


def setup() -> None:
    lock = ROOT / "requirements.lock"
    stamp = VENV / ".revleak-installed"
    digest = hashlib.sha256(lock.read_bytes() + (ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == digest:
        return
    if not (BIN / "python").exists():
        print("bootstrap: creating .venv", flush=True)
        run(python311(), "-m", "venv", VENV)
    print("bootstrap: installing pinned dependencies (requirements.lock)", flush=True)
    run(BIN / "python", "-m", "pip", "install", "--quiet", "--disable-pip-version-check", UV)
    env = {**os.environ, "VIRTUAL_ENV": str(VENV)}
    run(BIN / "uv", "pip", "install", "--quiet", "--python", BIN / "python", "-r", lock, env=env)
    run(BIN / "uv", "pip", "install", "--quiet", "--python", BIN / "python", "--no-deps",
        "-e", ROOT, env=env)
    stamp.write_text(digest)


def main() -> int:
    what = sys.argv[1] if len(sys.argv) > 1 else ""
    if what not in ("demo", "ui", "stop", "test"):
        print(__doc__)
        return 2
    setup()
    if what != "test":  # revleak takes over this process: Ctrl-C and its exit code are its own
        os.chdir(ROOT)
        os.execv(BIN / "revleak", [str(BIN / "revleak"), what, *sys.argv[2:]])
    lint = subprocess.call([BIN / "ruff", "check", "."], cwd=ROOT)
    code = subprocess.call([BIN / "python", "-m", "pytest", *sys.argv[2:]], cwd=ROOT)
    if code == 5:
        print("bootstrap: pytest collected no tests; that is a failure", file=sys.stderr)
        return 1
    return code or lint


if __name__ == "__main__":
    sys.exit(main())
