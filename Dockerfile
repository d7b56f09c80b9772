# syntax=docker/dockerfile:1
# credentials-consumer: the worker, installed from the hash-checked lock (requirements/).
#
#   docker build -t credentials-consumer .              # on python:3.11-slim-bookworm
#   docker run --read-only credentials-consumer --version
#
# BASE_IMAGE is any Debian-like image with Python 3.11 and its venv module (`make image` passes
# a local bookworm base built from Debian's packages, see dev/image). The final stage holds the
# base, one virtual environment and nothing to build with: no compiler, no pip, no setuptools.
# It runs as a numeric non-root user and writes nothing to its root filesystem.
ARG BASE_IMAGE=python:3.11-slim-bookworm

# ---------------------------------------------------------------------------- build
FROM ${BASE_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_ROOT_USER_ACTION=ignore
WORKDIR /src
COPY requirements/build.txt requirements/runtime.txt requirements/
# A throw-away environment holds the locked build backend; the runtime environment gets the
# locked dependencies (wheels only: nothing is compiled) and never has pip of its own.
RUN python3 -m venv /opt/build \
 && /opt/build/bin/pip install --require-hashes --only-binary :all: -r requirements/build.txt \
 && python3 -m venv --without-pip /opt/venv \
 && /opt/build/bin/pip --python /opt/venv/bin/python install \
      --require-hashes --only-binary :all: -r requirements/runtime.txt
COPY pyproject.toml README.md ./
COPY consumer/ consumer/
RUN /opt/build/bin/pip wheel --no-deps --no-build-isolation --wheel-dir /tmp/wheels . \
 && /opt/build/bin/pip --python /opt/venv/bin/python install --no-deps /tmp/wheels/*.whl \
 && /opt/build/bin/pip --python /opt/venv/bin/python check

# ---------------------------------------------------------------------------- runtime
FROM ${BASE_IMAGE}
ARG BASE_IMAGE
ARG VERSION=unknown
ARG REVISION=unknown
ARG CREATED=""
LABEL org.opencontainers.image.title="credentials-consumer" \
      org.opencontainers.image.description="Keeps Open edX Credentials in step with the LMS and Studio by consuming the Open edX event bus on Kafka." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="AGPL-3.0-only" \
      org.opencontainers.image.base.name="${BASE_IMAGE}"

RUN groupadd --gid 10001 consumer \
 && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin consumer
COPY --from=build /opt/venv /opt/venv
# Bytecode was compiled at install time; nothing may be written at run time (read-only root).
ENV PATH=/opt/venv/bin:$PATH \
    LANG=C.UTF-8 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

USER 10001:10001
# /metrics, /healthz, /readyz (CONSUMER_METRICS_PORT).
EXPOSE 9100
# The worker drains and commits on SIGTERM (give it CONSUMER_DRAIN_TIMEOUT_SECONDS and more).
STOPSIGNAL SIGTERM
ENTRYPOINT ["credentials-consumer"]
CMD ["run"]
