# nightscore image: the official Airflow image plus the pinned requirements, the
# nightscore package, the DAGs and plugins. docker-compose.yaml runs every Airflow
# component from it, and the MLflow server and the Evidently UI too (same pinned
# versions as the tasks that talk to them). No secrets: configuration comes from the
# environment at run time (see docker-compose.yaml and .env.example).
FROM apache/airflow:3.3.2-python3.11

# The base image's `airflow` user (uid 50000, group 0), by number so that hosts and
# Kubernetes can check it is not root. pip installs as this user, as Airflow documents.
USER 50000:0

# Dependencies first, so that code changes reuse this layer. requirements.txt is the
# runtime lock only (pyproject.toml's [project.dependencies]; the dev tools and the local
# stack's packages are in requirements-dev.txt, never here). It pins
# apache-airflow==3.3.2, the base image's version, so pip does not replace Airflow.
COPY --chown=50000:0 requirements.txt /tmp/requirements.txt
RUN pip install --no-cache-dir -r /tmp/requirements.txt && rm /tmp/requirements.txt

# The platform package, installed normally (not editable): what pyproject.toml needs to
# build it (its readme included), in a scratch folder removed in the same layer. Only
# include/nightscore: include/dev (nightscore-dev, the local stack) stays out.
COPY --chown=50000:0 pyproject.toml README.md /tmp/nightscore/
COPY --chown=50000:0 include/nightscore/ /tmp/nightscore/include/nightscore/
RUN pip install --no-cache-dir --no-deps /tmp/nightscore && rm -rf /tmp/nightscore

# Astronomer layout under AIRFLOW_HOME (/opt/airflow in the base image). Tasks import
# the installed package; include/nightscore is there for reference and for its data.
COPY --chown=50000:0 dags/ ${AIRFLOW_HOME}/dags/
COPY --chown=50000:0 plugins/ ${AIRFLOW_HOME}/plugins/
COPY --chown=50000:0 include/nightscore/ ${AIRFLOW_HOME}/include/nightscore/
# What the compose stack's airflow-init service runs once before the others start.
COPY --chown=50000:0 docker/airflow/init.sh ${AIRFLOW_HOME}/scripts/init.sh
COPY --chown=50000:0 docker/airflow/init-users.sh ${AIRFLOW_HOME}/scripts/init-users.sh

# Folders that compose mounts volumes on. Made here, owned by airflow, so that a new
# named volume takes their owner and the non-root services can write to it.
#   state      the UI's passwords file; also the store's root when NIGHTSCORE_STORE_URL
#              is unset (compose sets it to the object store: landing zone, Data Docs,
#              reports and the Evidently workspace are there)
#   mlflow-artifacts   what the MLflow server stores and serves
#   mlflow-auth        the MLflow server's users (its basic-auth app's SQLite database);
#                      not below mlflow-artifacts, which the server serves
#   logs       task logs, which the API server reads from the same volume
RUN mkdir -p "${AIRFLOW_HOME}/state" "${AIRFLOW_HOME}/mlflow-artifacts" \
    "${AIRFLOW_HOME}/mlflow-auth" "${AIRFLOW_HOME}/logs"
ENV NIGHTSCORE_STATE_DIR=/opt/airflow/state \
    DO_NOT_TRACK=1 \
    MLFLOW_DISABLE_TELEMETRY=true

# Last, so that a new commit does not rebuild the layers above: the commit each training
# run records (the image has no .git). CI passes --build-arg NIGHTSCORE_GIT_COMMIT.
ARG NIGHTSCORE_GIT_COMMIT=unknown
ENV NIGHTSCORE_GIT_COMMIT=${NIGHTSCORE_GIT_COMMIT}
LABEL org.opencontainers.image.title="nightscore" \
      org.opencontainers.image.description="Airflow batch scoring platform: DAGs, plugins and the nightscore package" \
      org.opencontainers.image.revision="${NIGHTSCORE_GIT_COMMIT}"
