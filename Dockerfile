# vigil's image for the at-scale deployment (docker-compose.yml): the Python package only;
# Kafka, ClickHouse and the schema registry run as their own services there.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY vigil ./vigil
RUN pip install --no-cache-dir .
ENV VIGIL_DATA_DIR=/data
VOLUME ["/data"]
CMD ["vigil", "--help"]
