# The PageForge API for the server deployment (docker-compose.yml): Neo4j and Qdrant run as their own
# containers, so this image needs neither Java nor Maven.
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
WORKDIR /srv/pageforge
COPY requirements-bootstrap.lock requirements.lock pyproject.toml README.md ./
RUN python -m pip install --no-cache-dir --require-hashes -r requirements-bootstrap.lock \
 && uv pip sync --system --require-hashes requirements.lock
COPY app ./app
COPY graph ./graph
COPY vectors ./vectors
COPY ingest ./ingest
COPY render ./render
RUN uv pip install --system --no-deps --no-build-isolation .
EXPOSE 8000
CMD ["pageforge", "serve", "--host", "0.0.0.0", "--port", "8000"]
