"""The floor of a load: every ``<table>.csv`` of a folder streamed with a raw COPY into a table
of the same column types as revleak's, without keys, checks, indexes or foreign keys.

    REVLEAK_BENCH_DSN='host=... dbname=...' .venv/bin/python benchmarks/peers/copy_load.py DIR

The tables are created in schema ``revleak_raw`` (``like revleak.<table>``: names, types and
NOT NULL only), so the database must hold revleak's schema. Python streams each file in 1 MiB
blocks; PostgreSQL parses and types every value. Prints the rows copied.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import psycopg
from psycopg import sql

BLOCK = 1 << 20


def main() -> None:
    folder = Path(sys.argv[1])
    rows = 0
    with psycopg.connect(os.environ["REVLEAK_BENCH_DSN"]) as conn:
        conn.execute("create schema if not exists revleak_raw")
        for path in sorted(folder.glob("*.csv")):
            table = sql.Identifier("revleak_raw", path.stem)
            conn.execute(sql.SQL("drop table if exists {t}").format(t=table))
            conn.execute(sql.SQL("create table {t} (like {canonical})").format(
                t=table, canonical=sql.Identifier("revleak", path.stem)))
            with open(path, "rb") as fh:
                header = fh.readline().decode().strip().split(",")
                fh.seek(0)
                copy = sql.SQL("copy {t} ({cols}) from stdin (format csv, header true)").format(
                    t=table, cols=sql.SQL(", ").join(map(sql.Identifier, header)))
                with conn.cursor() as cur:
                    with cur.copy(copy) as stream:
                        while block := fh.read(BLOCK):
                            stream.write(block)
                    rows += cur.rowcount
            conn.commit()
    print(rows)


if __name__ == "__main__":
    main()
