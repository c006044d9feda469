# nightscore image: the official Airflow image plus the pinned requirements, the
# nightscore package, and the DAGs and plugins. No secrets: configuration comes from the
# environment at run time (see docker-compose.yaml and .env.example).
FROM apache/airflow:3.3.2-python3.11

# The base image's `airflow` user (uid 50000, group 0); a numeric id so that hosts and
# Kubernetes can check it is not root. pip installs as this user, as Airflow documents.
USER 50000:0

# Dependencies first, so that code changes reuse this layer. requirements.txt pins
# apache-airflow==3.3.2, the base image's version, so pip does not replace Airflow.
COPY --chown=50000:0 requirements.txt /tmp/requirements.txt
RUN pip install --no-cache-dir -r /tmp/requirements.txt

# The platform package, installed normally (not editable); setuptools builds in the
# source folder, hence --chown and a scratch folder removed in the same layer.
COPY --chown=50000:0 pyproject.toml /tmp/nightscore/
COPY --chown=50000:0 include/ /tmp/nightscore/include/
RUN pip install --no-cache-dir --no-deps /tmp/nightscore && rm -rf /tmp/nightscore

# Astronomer layout under AIRFLOW_HOME (/opt/airflow in the base image).
COPY --chown=50000:0 dags/ ${AIRFLOW_HOME}/dags/
COPY --chown=50000:0 plugins/ ${AIRFLOW_HOME}/plugins/
COPY --chown=50000:0 include/ ${AIRFLOW_HOME}/include/
