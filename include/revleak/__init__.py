"""revleak: revenue-leakage detection on Airflow 3 and PostgreSQL."""

__version__ = "0.1.0"
