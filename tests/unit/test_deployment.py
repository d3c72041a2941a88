"""The deployment files: docker-compose.yml validates with `docker compose config` (or the
standalone docker-compose) for both the default and the celery profile."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


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
