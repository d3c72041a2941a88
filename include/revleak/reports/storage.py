"""Where reports live: a local folder by default, or any ObjectStoragePath URL (s3://, gs://,
file://, …) set as ``reports.location``; one stable name per check and window."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from urllib.parse import unquote, urlsplit

from revleak.config import PROJECT_ROOT, Config
from revleak.errors import RevleakError


def file_name(check: str, as_of: date, kind: str) -> str:
    """``<check>/<check>_<as-of>.<html|csv>``: the as-of date names the check's window."""
    return f"{check}/{check}_{as_of.isoformat()}.{kind}"


def root(config: Config, location: str | None = None):
    """The report store: a local folder as a Path (a plain path or file://), any other URL as
    an ObjectStoragePath (Airflow is imported only then: it costs a second)."""
    from revleak.warehouse import revleak_home

    where = location or config.reports.location or str(revleak_home() / "reports")
    if where.startswith("file://"):
        where = unquote(urlsplit(where).path)
    if "://" not in where:
        path = Path(where).expanduser()
        return (path if path.is_absolute() else PROJECT_ROOT / path).resolve()

    def remote():
        from airflow.sdk import ObjectStoragePath

        return ObjectStoragePath(where)

    return _checked(remote, f"reports.location {where}")


def _checked(call, what: str):
    try:
        return call()
    except (ValueError, ImportError) as e:
        raise RevleakError(f"{what}: {e}; use a folder, or a URL whose Airflow provider is "
                           "installed (s3 → apache-airflow-providers-amazon, gs → "
                           "apache-airflow-providers-google)") from None
    except OSError as e:
        raise RevleakError(f"{what}: {e.strerror or e}") from None


def write(target, chunks) -> str:
    """Write text chunks to a report file (parent folders made as needed); return where."""

    def put():
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("w", encoding="utf-8", newline="") as fh:
            for chunk in chunks:
                fh.write(chunk)

    _checked(put, f"cannot write the report {target}")
    return describe(target)


def describe(target) -> str:
    """Where a report (or the store) is, as a reader would type it: a path or a URL."""
    return str(target)


def read(target) -> bytes | None:
    """A stored report's bytes, or None when it was never written."""
    return _checked(lambda: target.read_bytes() if target.exists() else None,
                    f"cannot read the report {target}")
