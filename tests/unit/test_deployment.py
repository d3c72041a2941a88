"""The deployment files agree with the code: docker-compose.yml validates with `docker compose
config` (or the standalone docker-compose) for both the default and the celery profile; the
image installs exactly pyproject's dependencies; every setting the code reads has its line in
.env.example (or the image or compose sets it), and every line there has a reader."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CODE = [*(ROOT / "include").rglob("*.py"), *(ROOT / "dags").glob("*.py"),
        *(ROOT / "plugins").glob("*.py")]
# settings the code reads that a deployment rightly leaves unset, and why
OPTIONAL = {
    "REVLEAK_HOME": "the embedded PostgreSQL's folder; a deployment names its warehouse",
    "REVLEAK_SQL_DIR": "a development override of the packaged SQL",
}


def dockerfile_steps(path: Path = ROOT / "Dockerfile") -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (INSTRUCTION, arguments), comments dropped and
    continued lines joined, as Docker reads them."""
    lines = [line for line in path.read_text().splitlines()
             if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    steps = []
    for line in joined.splitlines():
        if line.strip():
            op, _, args = line.strip().partition(" ")
            steps.append((op.upper(), " ".join(args.split())))
    return steps


def env_example() -> dict[str, str]:
    pairs = (line.split("=", 1) for line in (ROOT / ".env.example").read_text().splitlines()
             if line.strip() and not line.lstrip().startswith("#"))
    return {k.strip(): v for k, v in pairs}


def compose() -> list[str] | None:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"],
                                 capture_output=True).returncode == 0:
        return [docker, "compose"]
    standalone = shutil.which("docker-compose")
    return [standalone] if standalone else None


@pytest.mark.parametrize("profile", [[], ["--profile", "celery"]])
def test_compose_file_is_valid(tmp_path, profile):
    cmd = compose()
    if cmd is None:
        pytest.skip("neither `docker compose` nor docker-compose is here (.ci/run installs it)")
    # a deployment folder as an operator makes it: the compose file and .env from the example
    shutil.copy(ROOT / "docker-compose.yml", tmp_path)
    shutil.copy(ROOT / ".env.example", tmp_path / ".env")
    result = subprocess.run([*cmd, *profile, "config", "--services"], capture_output=True,
                            text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    services = set(result.stdout.split())
    assert {"metadata", "warehouse", "airflow-apiserver", "airflow-scheduler",
            "airflow-dag-processor", "airflow-triggerer"} <= services
    if profile:
        assert {"redis", "airflow-worker"} <= services


def test_image_installs_pyprojects_dependencies_pinned_by_the_lock():
    def name(requirement: str) -> str:
        return re.split(r"[\[<>=!~ ;]", requirement, maxsplit=1)[0].lower()

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    installs = [shlex.split(args) for op, args in dockerfile_steps()
                if op == "RUN" and args.startswith("pip install")]
    deps, package = installs
    assert deps[deps.index("--constraint") + 1] == "requirements.lock"
    assert {name(a) for a in deps[2:] if not a.startswith("-") and a != "requirements.lock"} \
        == {name(r) for r in project["dependencies"]}
    assert "apache-airflow==3.3.2" in deps and "apache-airflow==3.3.2" in project["dependencies"]
    assert package[-2:] == ["--no-deps", "."] and "-e" not in package  # not editable


def test_every_setting_the_code_reads_is_in_the_env_example():
    code = "\n".join(p.read_text() for p in CODE)
    conn_ids = set(re.findall(r'(?:CONN_ID\s*=\s*|conn_id=)"(\w+)"', code))
    assert {"revleak_warehouse", "revleak_tickets", "revleak_alerts"} <= conn_ids
    read = {f"AIRFLOW_CONN_{c.upper()}" for c in conn_ids} | set(re.findall(
        r'os\.(?:environ\.get\(|environ\[|getenv\()\s*"(REVLEAK_\w+)"', code))
    assert "REVLEAK_CONFIG" in read
    image = {k for op, args in dockerfile_steps() if op == "ENV"
             for k, _, _ in (kv.partition("=") for kv in shlex.split(args))}
    compose_file = (ROOT / "docker-compose.yml").read_text()
    missing = sorted(n for n in read - set(OPTIONAL) - image
                     if n not in env_example() and not re.search(rf"^\s+{n}:", compose_file,
                                                                 re.M))
    assert not missing, f"add {', '.join(missing)} to .env.example"
    assert set(OPTIONAL) <= read, f"no longer read, drop from OPTIONAL: {set(OPTIONAL) - read}"


def test_every_env_example_line_has_a_reader():
    compose_file = (ROOT / "docker-compose.yml").read_text()
    uncommented = "\n".join(line for line in compose_file.splitlines()
                            if not line.lstrip().startswith("#"))
    code = "\n".join(p.read_text() for p in CODE)
    for name in env_example():
        airflow_reads = name.startswith(("AIRFLOW__", "AIRFLOW_CONN_"))
        assert airflow_reads or re.search(rf"\b{name}\b", uncommented) \
            or f'"{name}"' in code, f"{name} in .env.example is read by nothing"
    for name in re.findall(r"\$\{(\w+)", compose_file):  # compose's own substitutions
        assert name in env_example(), f"docker-compose.yml uses ${{{name}}}: add it to .env.example"
