"""Airflow UI plugin: a "Revenue leakage" page (revleak's FastAPI app under /revleak, linked
from the navigation), reading the warehouse through the revleak_warehouse connection, behind
Airflow's login and its authorization: a reader sees the checks whose DAG they may read."""

from airflow.plugins_manager import AirflowPlugin

from revleak.ui import create_app


class RevenueLeakagePlugin(AirflowPlugin):
    name = "revenue_leakage"
    fastapi_apps = [{"app": create_app(), "url_prefix": "/revleak", "name": "Revenue leakage"}]
    external_views = [{"name": "Revenue leakage", "href": "/revleak/", "destination": "nav",
                       "category": "browse", "url_route": "revenue-leakage"}]
