"""A deterministic demo company: one CSV per contract table (§2) plus ``manifest.json``.

The same seed, scale and as-of date always give byte-identical files. ``company`` builds the
normal books (clean under the checks' rules), ``leaks`` plants the leaks and the decoys that
look like leaks, ``manifest`` states what was planted and where each check looks. The checks'
rules are not copied here: the tests hold an independent oracle that judges these books.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

from revleak.demo import manifest
from revleak.demo.company import BASE_CURRENCY, CURRENCIES, DEFAULT_AS_OF, INBOUND_TEAM, SCALES
from revleak.demo.leaks import DECOYS, LEAKS, ZONE_STATES, ZONES, Seeded


def generate(out_dir: Path, seed: int = 7, scale: str = "small", as_of: date = DEFAULT_AS_OF,
             progress: Callable[[str, int], None] | None = None) -> dict:
    """Write one <table>.csv per contract table plus manifest.json into out_dir.

    Returns the manifest (also written as ``manifest.json``).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    company = Seeded(out_dir, seed, scale, as_of, progress)
    company.run()
    planted = manifest.build(company, company.leaks + company.zone_leaks(), company.decoys)
    manifest.write(out_dir, planted)
    return planted


__all__ = ["BASE_CURRENCY", "CURRENCIES", "DECOYS", "DEFAULT_AS_OF", "INBOUND_TEAM", "LEAKS",
           "SCALES", "ZONES", "ZONE_STATES", "generate"]
