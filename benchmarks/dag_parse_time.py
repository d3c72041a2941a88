"""Parse time of each DAG file, as the DAG processor sees it (budget: 100 ms per file).

    .venv/bin/python benchmarks/dag_parse_time.py

Airflow is imported first (the processor has it loaded); the first parse of each file
includes importing revleak (cold), later parses are warm. Writes
benchmarks/results/dag_parse_time.json.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
from pathlib import Path

HERE = Path(__file__).parent
DAGS = HERE.parent / "dags"
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="revleak-parse-"))
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"

from airflow.dag_processing.dagbag import DagBag  # noqa: E402


def parse_ms(path: Path) -> float:
    bag = DagBag(dag_folder=str(path))
    assert not bag.import_errors, bag.import_errors
    return sum(s.duration.total_seconds() for s in bag.dagbag_stats) * 1000


def main() -> None:
    figures = {}
    for path in sorted(DAGS.glob("*.py")):
        cold = parse_ms(path)
        warm = [parse_ms(path) for _ in range(5)]
        figures[path.stem] = {"cold_ms": round(cold, 1),
                              "warm_median_ms": round(statistics.median(warm), 1),
                              "within_100ms_budget": max(cold, *warm) <= 100}
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "dag_parse_time.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
