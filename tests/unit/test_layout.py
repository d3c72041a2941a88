"""The tests mirror the package: every module of ``include/revleak`` (a package such as
``reports`` counts once) has a test file named after it somewhere under ``tests/`` —
``test_<module>.py``, for a package also ``test_<one of its modules>.py`` — or, for the few
tested by behaviour through Airflow or PostgreSQL, the files named in ``BY_BEHAVIOUR``."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "include" / "revleak"
TESTS = ROOT / "tests"
BY_BEHAVIOUR = {  # module → the tests that exercise it, named for what they show
    "airflow_dags": ("tests/dags/test_dag_integrity.py",),
    "assets": ("tests/e2e/test_price_change_asset.py",),
    "findings": ("tests/integration/test_findings_lifecycle.py",),
    "showcase": ("tests/integration/test_newcomer.py",),
    "sources": ("tests/integration/test_freshness.py",),
    "warehouse": ("tests/integration/test_warehouse_hook.py",),
}


def modules() -> dict[str, set[str]]:
    """Each module or package of revleak → the test file names that mirror it."""
    found = {p.stem: {f"test_{p.stem}.py"} for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    for init in PACKAGE.glob("*/__init__.py"):
        package = init.parent
        found[package.name] = {f"test_{package.name}.py"} | {
            f"test_{p.stem}.py" for p in package.glob("*.py") if p.stem != "__init__"}
    return found


def test_the_package_is_found():
    assert {"registry", "statements", "reports", "tickets", "demo"} <= set(modules())


def test_every_module_has_a_test_named_after_it_or_by_its_behaviour():
    test_files = {p.name for p in TESTS.rglob("test_*.py")}
    missing = sorted(m for m, names in modules().items()
                     if not names & test_files and m not in BY_BEHAVIOUR)
    assert not missing, (f"no test for {', '.join(missing)}: add tests/unit/test_<module>.py "
                         "(or, if only PostgreSQL or Airflow can show it, a behaviour-named "
                         "test and an entry in BY_BEHAVIOUR)")


def test_the_behaviour_map_is_short_current_and_points_at_real_files():
    test_files = {p.name for p in TESTS.rglob("test_*.py")}
    mods = modules()
    for module, files in BY_BEHAVIOUR.items():
        assert module in mods, f"{module} is no longer a module of revleak"
        assert not mods[module] & test_files, f"{module} has a test named after it now"
        for file in files:
            assert (ROOT / file).is_file(), file
