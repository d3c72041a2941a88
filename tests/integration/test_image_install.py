"""The image's install, exercised without a container engine (issue 16): the Dockerfile's steps
run as written in a clean venv, so a broken image build shows up here.

- FROM apache/airflow:<version>-python<python>: the base image has that Airflow installed; it
  stands in here as a clean venv of this Python with `pip install apache-airflow==<version>`,
  constrained by requirements.lock (the image's own pins are not reproducible without it);
- WORKDIR and COPY: into a folder standing for the image's filesystem (/opt/revleak → image/opt/
  revleak), copied from this checkout;
- RUN: the `pip install` lines exactly as written (the venv's pip, same arguments, same
  constraints), from the working directory;
- ENV: the image's settings, paths moved into that folder.

Then, from the installed package only: the `revleak` entry point loads the demo company into a
throwaway database and runs a check end to end (the seeded leaks of the demo's manifest are its
findings), and the image's DAG folder imports with no errors.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from revleak.config import CHECK_IDS
from tests.unit.test_deployment import dockerfile_steps

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
CHECK = "billed_vs_collected_weekly"
BASE = re.compile(r"apache/airflow:(?P<airflow>[\d.]+)-python(?P<python>\d+\.\d+)$")


def run(cmd: list[str] | str, env: dict[str, str], cwd: Path, what: str,
        timeout: float = 1200) -> str:
    result = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True,
                            timeout=timeout, stdin=subprocess.DEVNULL, shell=isinstance(cmd, str))
    assert result.returncode == 0, f"{what} failed: {result.stdout[-2000:]}{result.stderr[-3000:]}"
    return result.stdout


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    """The image built by its Dockerfile's steps: (root folder, environment of a container)."""
    tmp = tmp_path_factory.mktemp("image")
    root, venv = tmp / "image", tmp / "venv"
    base = BASE.match(dockerfile_steps()[0][1])
    assert dockerfile_steps()[0][0] == "FROM" and base, "the image must build FROM apache/airflow"
    assert base["python"] == f"{sys.version_info.major}.{sys.version_info.minor}"
    pinned = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert f"apache-airflow=={base['airflow']}" in pinned

    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("AIRFLOW", "REVLEAK", "VIRTUAL_ENV", "PYTHON", "PIP_"))}
    env = {**clean, "PATH": f"{venv / 'bin'}{os.pathsep}{clean['PATH']}",
           "AIRFLOW_HOME": str(tmp / "airflow-home")}
    run(["pip", "install", "--quiet", f"apache-airflow=={base['airflow']}",
         "--constraint", str(ROOT / "requirements.lock")], env, tmp, "the base image stand-in")

    def at(path: str, workdir: Path) -> Path:
        return root / path.lstrip("/") if path.startswith("/") else workdir / path

    workdir = root
    for op, args in dockerfile_steps()[1:]:
        if op == "WORKDIR":
            workdir = at(args, workdir)
            workdir.mkdir(parents=True, exist_ok=True)
        elif op == "COPY":
            *sources, dest = [a for a in shlex.split(args) if not a.startswith("--")]
            for source in sources:
                src, to = ROOT / source, at(dest, workdir)
                if src.is_dir():
                    shutil.copytree(src, to, dirs_exist_ok=True)
                else:
                    target = to / src.name if dest.endswith("/") or len(sources) > 1 else to
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(src, target)
        elif op == "RUN":
            assert args.startswith("pip install "), (
                f"RUN {args[:60]}… is new: teach {Path(__file__).name} to run it")
            run(args, env, workdir, f"Dockerfile step RUN {args[:80]}")
        elif op == "ENV":
            for pair in shlex.split(args):
                name, _, value = pair.partition("=")
                env[name] = str(at(value, workdir)) if value.startswith("/") else value
        else:
            assert op == "USER", f"{op} is new in the Dockerfile: teach {Path(__file__).name}"
    return root, env


def test_revleak_is_installed_as_a_package_not_from_the_checkout(image, tmp_path):
    _, env = image
    where = run(["python", "-c", "import revleak; print(revleak.__file__)"], env, tmp_path,
                "import revleak")
    assert "site-packages" in where and str(ROOT) not in where
    assert "load" in run(["revleak", "--help"], env, tmp_path, "revleak --help")


def test_the_image_runs_a_check_end_to_end(image, pg_server, tmp_path):
    _, env = image
    with psycopg.connect(pg_server.get_uri(), autocommit=True) as admin:
        admin.execute("drop database if exists image_install with (force)")
        admin.execute("create database image_install")  # empty: the image migrates it
    env = {**env, "AIRFLOW_CONN_REVLEAK_WAREHOUSE": pg_server.get_uri("image_install")}
    books = tmp_path / "books"
    run(["revleak", "demo-data", str(books)], env, tmp_path, "revleak demo-data")
    run(["revleak", "migrate"], env, tmp_path, "revleak migrate")
    with psycopg.connect(env["AIRFLOW_CONN_REVLEAK_WAREHOUSE"]) as conn:
        applied = conn.execute("select count(*) from revleak_meta.schema_migrations").fetchone()
    assert applied[0] > 0, "revleak migrate applied no migration: the package ships no schema SQL"
    run(["revleak", "load", str(books)], env, tmp_path, "revleak load")
    manifest = json.loads((books / "manifest.json").read_text())
    as_of = manifest["runs"][CHECK]["as_of"]
    run(["revleak", "check", CHECK, "--as-of", as_of], env, tmp_path, "revleak check")
    out = run(["revleak", "findings", "--check", CHECK, "--as-of", as_of, "--format", "json"],
              env, tmp_path, "revleak findings")
    found = {(f["entity_id"], f["category"]): Decimal(str(f["gap_amount"]))
             for f in map(json.loads, out.splitlines()) if f["entity_type"] != "portfolio"}
    planted = {(leak["entity_id"], leak["category"]): leak for leak in manifest["leaks"]
               if leak["check"] == CHECK}
    assert planted and found.keys() == planted.keys()
    for key, leak in planted.items():  # the gap wherever the planter set it by construction
        assert "gap_amount" not in leak or found[key] == Decimal(leak["gap_amount"]), key


def test_the_images_dags_import(image, tmp_path):
    _, env = image
    out = run(["python", "-c",
               "import json; from airflow.dag_processing.dagbag import DagBag; b = DagBag();"
               " print(json.dumps({'dags': sorted(b.dag_ids), 'errors': b.import_errors}))"],
              env, tmp_path, "loading the image's DAG folder")
    bag = json.loads(out.strip().splitlines()[-1])
    assert bag["errors"] == {} and bag["dags"] == sorted(CHECK_IDS)
