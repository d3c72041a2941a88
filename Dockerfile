# revleak on the official Airflow 3 image: the project installed as a package, its DAGs,
# SQL and config in place. Build: docker compose build
FROM apache/airflow:3.3.2-python3.11

USER airflow
WORKDIR /opt/revleak
COPY --chown=airflow:root requirements.lock pyproject.toml README.md ./
# The image already pins Airflow and its providers; add only what revleak needs on top.
RUN pip install --no-cache-dir \
      "psycopg[binary]==3.3.9" "tenacity==9.2.1" "jinja2" "pyyaml" "python-dateutil" \
      "matplotlib" "apache-airflow-providers-postgres" "apache-airflow-providers-smtp"
COPY --chown=airflow:root include ./include
COPY --chown=airflow:root sql ./sql
COPY --chown=airflow:root config ./config
COPY --chown=airflow:root dags ./dags
COPY --chown=airflow:root plugins ./plugins
RUN pip install --no-cache-dir --no-deps -e /opt/revleak

ENV AIRFLOW__CORE__DAGS_FOLDER=/opt/revleak/dags \
    AIRFLOW__CORE__PLUGINS_FOLDER=/opt/revleak/plugins \
    AIRFLOW__CORE__LOAD_EXAMPLES=False \
    REVLEAK_CONFIG=/opt/revleak/config/revleak.yaml
