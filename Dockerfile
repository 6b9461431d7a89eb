# syntax=docker/dockerfile:1
# One image for all four services; the command picks one, e.g. `python -m services.visits`.

# Base image pinned to a patch release and Debian release: a rebuild gets the same interpreter.
FROM python:3.11.14-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /build
COPY requirements.lock deploy/docker/runtime_requirements.py ./
# Install only the runtime part of the lock (dev tools such as pytest, mypy and ruff are dropped),
# exactly as pinned (--no-deps) and only files whose sha256 is in the lock (--require-hashes), then let
# pip check prove that nothing needed was left out.
RUN python runtime_requirements.py requirements.lock > requirements.runtime.txt \
 && python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-deps --require-hashes -r requirements.runtime.txt \
 && /opt/venv/bin/pip check

FROM python:3.11.14-slim-bookworm
LABEL org.opencontainers.image.title="hss-platform" \
      org.opencontainers.image.description="Home–school–society cooperation platform services"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HSS_ENV=production
RUN groupadd --system --gid 10001 hss \
 && useradd --system --uid 10001 --gid hss --no-create-home --home-dir /app --shell /usr/sbin/nologin hss
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY shared/ shared/
COPY services/ services/
# Bytecode compiled at build time: faster start, and nothing to write on a read-only root filesystem.
RUN python -m compileall -q shared services
USER 10001:10001
EXPOSE 8101 8102 8103 8104
CMD ["python", "-m", "services.committees"]
