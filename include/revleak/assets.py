"""Airflow Assets for the tables whose changes start a check (``CheckSpec.triggered_by``: the
price tables start ``pricing_drift_on_change``). Their URIs are declared here once, for the
DAGs and for ``revleak load``, which tells Airflow when a load really changed one of them.

A file load that inserts or updates rows of such a table notes the change in its own
transaction (``revleak.asset_changes``); an unchanged reload or a file skipped by its checksum
notes nothing. After the load every change not yet told is posted to Airflow's REST API as an
Asset event (``POST /api/v2/assets/events``, the asset looked up by its URI, a token from
``/auth/token``) through the connection ``revleak_airflow_api``
(``http://user:password@host:port``). Without that connection the change is loaded and only
reported; when Airflow cannot be told, the load stays committed, ``AirflowNotTold`` says why
in one line and the change waits for the next ``revleak load``.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg

from revleak import connections, endpoints
from revleak.errors import RevleakError
from revleak.registry import CHECKS

CONN_ID = "revleak_airflow_api"
ENV_VAR = connections.env_var(CONN_ID)
EXAMPLE = "http://<user>:<password>@<airflow host>:8080"
WATCHED = {t: tuple(c for c, spec in CHECKS.items() if t in spec.triggered_by)
           for spec in CHECKS.values() for t in spec.triggered_by}  # table → checks it starts
log = logging.getLogger(__name__)


def uri(table: str) -> str:
    """The Asset URI of a warehouse table."""
    return f"revleak://warehouse/{table}"


class AirflowNotTold(RevleakError):
    """A change was loaded, but Airflow could not be told (it waits for the next load)."""


def note_change(conn: psycopg.Connection, table: str, load_id: int, inserted: int,
                updated: int) -> None:
    """In the file's load transaction: remember that a watched table really changed."""
    if table in WATCHED and (inserted or updated):
        conn.execute(
            "insert into revleak.asset_changes (table_name, load_id, rows_inserted,"
            " rows_updated) values (%s, %s, %s, %s)", (table, load_id, inserted, updated))


def tell_airflow(conn: psycopg.Connection) -> str | None:
    """Post one Asset event per change not yet told. Returns the line to show when Airflow is
    not configured (None otherwise); raises ``AirflowNotTold`` when it could not be told."""
    with conn.transaction():
        changes = conn.execute(
            "select change_id, table_name, load_id, rows_inserted, rows_updated"
            " from revleak.asset_changes where status = 'pending' order by change_id"
            " for update skip locked").fetchall()
        if not changes:
            return None
        tables = ", ".join(dict.fromkeys(c[1] for c in changes))
        checks = ", ".join(dict.fromkeys(x for c in changes for x in WATCHED.get(c[1], ())))
        api = endpoints.destination(CONN_ID, "Airflow", EXAMPLE)
        if api is None:
            conn.execute("update revleak.asset_changes set status = 'not_told'"
                         " where change_id = any(%s)", ([c[0] for c in changes],))
            return (f"{tables} changed and loaded, but Airflow was not told (no connection "
                    f"{CONN_ID}): set {ENV_VAR}='{EXAMPLE}' so {checks} runs on such changes")
        problem = _post(conn, api, changes)
    if problem:
        raise AirflowNotTold(
            f"{tables} changed and loaded, but Airflow was not told: {problem}; fix the "
            f"connection {CONN_ID} (or start Airflow), then run `revleak load` again: the change "
            f"waits and goes out then (or trigger {checks} by hand)")
    return None


def _post(conn: psycopg.Connection, api, changes: list[tuple]) -> str | None:
    """Post the changes in order; the first that fails stops the rest (one line why)."""
    from revleak.tickets.base import DeliveryError, RejectedError

    try:
        airflow = _Airflow(api)
    except (DeliveryError, RejectedError, RevleakError) as e:
        return str(e)
    try:
        for change_id, table, load_id, inserted, updated in changes:
            try:
                event = airflow.asset_event(uri(table), {
                    "table": table, "rows_changed": inserted + updated,
                    "rows_inserted": inserted, "rows_updated": updated, "load_id": load_id,
                    "source": "revleak load"})
            except (DeliveryError, RejectedError, RevleakError) as e:
                conn.execute("update revleak.asset_changes set attempts = attempts + 1,"
                             " last_error = %s where change_id = %s", (str(e), change_id))
                return str(e)
            conn.execute("update revleak.asset_changes set status = 'told', told_at = now(),"
                         " attempts = attempts + 1, last_error = null, asset_event_id = %s"
                         " where change_id = %s", (event, change_id))
            log.info("told Airflow: %s changed (load %s, asset event %s)", table, load_id, event)
    finally:
        airflow.close()
    return None


class _Airflow:
    """Airflow's REST API v2 with a token for the connection's user."""

    def __init__(self, api):
        from revleak.tickets.transport import Bearer, Transport, basic_auth

        try:
            user, password = basic_auth(api, f"the connection {CONN_ID}")
        except ValueError as e:
            raise RevleakError(f"{e}; write {ENV_VAR}='{EXAMPLE}'") from None
        login = Transport(api, "Airflow")
        try:
            token = login.json("POST", "/auth/token", {"username": user, "password": password})
        finally:
            login.close()
        if not isinstance(token, dict) or not token.get("access_token"):
            raise RevleakError("Airflow POST /auth/token gave no access_token")
        self.http = Transport(api, "Airflow", auth=Bearer(token["access_token"]))
        self.assets: dict[str, int] = {}

    def close(self) -> None:
        self.http.close()

    def asset_event(self, asset_uri: str, extra: dict[str, Any]) -> int:
        """Post an event of the asset with this URI; its id."""
        if asset_uri not in self.assets:
            found = self.http.json("GET", "/api/v2/assets",
                                   params={"uri_pattern": asset_uri, "limit": 100})
            ids = [a["id"] for a in found.get("assets", []) if a.get("uri") == asset_uri]
            if not ids:
                raise RevleakError(f"Airflow knows no asset {asset_uri}: deploy the DAGs "
                                   f"scheduled on it (dags/) and let Airflow parse them")
            self.assets[asset_uri] = ids[0]
        event = self.http.json("POST", "/api/v2/assets/events",
                               {"asset_id": self.assets[asset_uri], "extra": extra})
        return event["id"]
