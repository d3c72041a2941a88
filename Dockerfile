# revleak on the official Airflow 3 image: the project installed as a package (not editable),
# its DAGs, plugins and config in place. Build: docker compose build
# CI runs these install steps as written in a clean venv (tests/integration/test_image_install.py).
FROM apache/airflow:3.3.2-python3.11

USER airflow
WORKDIR /opt/revleak
COPY --chown=airflow:root requirements.lock pyproject.toml README.md ./
# pyproject's dependencies at the versions the tests ran (requirements.lock as constraints);
# naming the image's Airflow keeps pip from moving it.
RUN pip install --no-cache-dir --constraint requirements.lock \
      "apache-airflow==3.3.2" "apache-airflow-providers-postgres" \
      "apache-airflow-providers-smtp" "apache-airflow-providers-celery" "celery[redis]" \
      "psycopg[binary]" "pgserver" "requests" "jinja2" "pyyaml" "matplotlib"
COPY --chown=airflow:root include ./include
COPY --chown=airflow:root config ./config
COPY --chown=airflow:root dags ./dags
COPY --chown=airflow:root plugins ./plugins
RUN pip install --no-cache-dir --no-deps .

ENV AIRFLOW__CORE__DAGS_FOLDER=/opt/revleak/dags \
    AIRFLOW__CORE__PLUGINS_FOLDER=/opt/revleak/plugins \
    AIRFLOW__CORE__LOAD_EXAMPLES=False \
    REVLEAK_CONFIG=/opt/revleak/config/revleak.yaml
