# RAT in one container: the server, its worker processes and the `rat` CLI (backup, restore).
# Build: docker build -t rat .   Run with Postgres and MinIO: docker compose up (compose.yaml).

FROM python:3.12-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /app
# Dependencies first, so code changes do not reinstall them.
COPY pyproject.toml README.md ./
RUN mkdir -p src/rat && touch src/rat/__init__.py && pip install . && pip uninstall -y rat
COPY src ./src
COPY migrations ./migrations
COPY templates ./templates
COPY static ./static
# Editable: migrations, templates and static files are found next to src/ (see rat.config).
RUN pip install --no-deps -e .

FROM python:3.12-slim-bookworm
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    RAT_HOST=0.0.0.0 \
    RAT_PORT=8080 \
    RAT_DATA_DIR=/data \
    RAT_LOG_FORMAT=json
# bubblewrap: the OS sandbox around pipeline code (docs/sandbox.md).
RUN apt-get update && apt-get install -y --no-install-recommends bubblewrap \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 rat \
    && useradd --system --uid 10001 --gid rat --home-dir /data --no-create-home rat \
    && mkdir -p /data && chown rat:rat /data
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
WORKDIR /app
USER rat:rat
VOLUME ["/data"]
EXPOSE 8080
# SIGTERM drains: no new runs are claimed, running ones get RAT_SHUTDOWN_GRACE_SECONDS (30 s)
# and are then requeued; give the container a longer stop timeout than that.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; r = urllib.request.urlopen('http://127.0.0.1:8080/health/ready', timeout=4); sys.exit(0 if r.status == 200 else 1)"]
CMD ["rat", "serve"]
