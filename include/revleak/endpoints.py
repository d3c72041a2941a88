"""HTTP endpoints named by Airflow connections, other than the ticket system: price signals
(``revleak_price_signals``) and Airflow's own REST API (``revleak_airflow_api``)."""

from __future__ import annotations

from revleak import connections
from revleak.errors import RevleakError
from revleak.tickets.base import Destination


def destination(conn_id: str, name: str, example: str) -> Destination | None:
    """Where the connection points (``scheme://host[:port][/path]``, its login, password and
    extras; ``extra.timeout`` in seconds, 10 by default), or None when it is defined nowhere.
    ``example`` is the connection written right, for the message when it names no host."""
    c = connections.lookup(conn_id)
    if c is None:
        return None
    if not c.host:
        raise RevleakError(f"connection {conn_id} names no host; write "
                           f"{connections.env_var(conn_id)}='{example}'")
    host = c.host
    if "://" not in host:
        host = f"{c.conn_type if c.conn_type in ('http', 'https') else 'https'}://{host}"
    url = host.rstrip("/") + (f":{c.port}" if c.port else "") + (f"/{c.schema}" if c.schema
                                                                  else "")
    return Destination(name, url, c.login, c.password, dict(c.extra),
                       float(c.extra.get("timeout", 10)))
