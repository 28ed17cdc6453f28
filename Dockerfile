# Operator image: charging-analytics operator (Kopf), non-root, no build tools at runtime.
#   docker build -t charging-analytics-operator:0.1.0 .
# The Helm chart (charts/charging-analytics-operator) runs it read-only as UID/GID 10001.

ARG PYTHON_IMAGE=python:3.11.7-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY docker/constraints.txt ./constraints.txt
COPY pyproject.toml ./
COPY operator/ ./operator/
# the SQL templates: package data (operator/charging_analytics/sql links here), shipped in the wheel
COPY sql/ ./sql/
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --constraint constraints.txt .

FROM ${PYTHON_IMAGE}
ARG UID=10001
ARG GID=10001
RUN groupadd --system --gid "${GID}" cha \
    && useradd --system --uid "${UID}" --gid "${GID}" --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin cha
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:${PATH} \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CHA_LOG_FORMAT=json
USER 10001:10001
# 8080: Kopf liveness (/healthz); 9090: Prometheus metrics.
EXPOSE 8080 9090
ENTRYPOINT ["charging-analytics", "operator"]
