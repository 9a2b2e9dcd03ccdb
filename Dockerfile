# vigil's image for the at-scale deployment (docker-compose.yml): the Python package only;
# Kafka, ClickHouse and the schema registry run as their own services there.
FROM python:3.11-slim

# the dependencies first, from the lock CI tests with: this layer is rebuilt only when the
# lock changes, not on every change to vigil's code
WORKDIR /app
COPY requirements.lock ./
RUN pip install --no-cache-dir -r requirements.lock

COPY pyproject.toml README.md ./
COPY vigil ./vigil
RUN pip install --no-cache-dir --no-deps . && pip check

RUN useradd --system --uid 10001 --home-dir /data --create-home vigil
USER vigil
ENV VIGIL_DATA_DIR=/data \
    HEALTH_URL=http://127.0.0.1:8420/health
VOLUME ["/data"]

# the API's /health, or the worker's and ingester's /metrics (compose sets HEALTH_URL per role)
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=4 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ['HEALTH_URL'], timeout=4)"]
CMD ["vigil", "--help"]
