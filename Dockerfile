# One image for every worker: Python 3.11 with the runtime and the `ray`, `gpu` and `tensorboard` extras at the
# versions locked in uv.lock, as `make setup` installs them (nothing for tests or benchmarks), in a virtual
# environment (/opt/venv). The `gpu` extra is TensorFlow's CUDA route: CUDA and cuDNN come as wheels (4.2 GB), so
# the host needs only the NVIDIA driver and the NVIDIA Container Toolkit (`docker run --gpus`). Data and experiments
# are volumes, so many containers (one per GPU, on one or many machines) share one experiments folder; RUNNING.json
# claims keep two off the same task. The full recipe (data, workers, status, report) is the README's "Docker".
#
#   docker build --build-arg CODE_COMMIT="$(git rev-parse HEAD)" -t decorrelating-neurons .
#   docker build --build-arg EXTRAS="ray tensorboard" -t decorrelating-neurons:cpu .   # CPU only: no CUDA wheels
#
# Build arguments: BASE_IMAGE, any Debian-like image with Python 3.11 and its venv module (default the official
# python:3.11-slim-bookworm; a mirror's copy, or one made from Debian's packages: .ci/base-image.sh); EXTRAS, the
# pyproject extras to install besides the runtime; CODE_COMMIT, recorded in every DONE.json (the image has no .git).
# Behind a TLS-inspecting proxy or with a private index, pip's CA bundle and configuration go in as BuildKit
# secrets, never into a layer: DOCKER_BUILDKIT=1 docker build --secret id=ca_bundle,src=/etc/ssl/certs/ca-certificates.crt
# [--secret id=pip_conf,src=/etc/pip.conf] ...
#
# `scripts/docker-entrypoint.sh` picks what to run (worker, prepare-mnist, download-pgdl, status, or any command).
# Any `--user` works: every write goes to the two volumes or to /tmp (HOME, numba's and matplotlib's caches).
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TF_FORCE_GPU_ALLOW_GROWTH=true \
    TF_CPP_MIN_LOG_LEVEL=2 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    HOME=/tmp \
    NUMBA_CACHE_DIR=/tmp/numba-cache \
    MPLCONFIGDIR=/tmp/matplotlib

SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /app

# Dependencies first (a layer that changes only with the lock and EXTRAS): uv exports the lock's selection with its
# hashes, pip installs exactly that (the installers' versions are the Makefile's).
ARG EXTRAS="ray gpu tensorboard"
COPY pyproject.toml uv.lock ./
# SC2046: splitting EXTRAS into one `--extra NAME` per word is the point
# hadolint ignore=SC2046
RUN --mount=type=secret,id=ca_bundle --mount=type=secret,id=pip_conf \
    if [ -s /run/secrets/ca_bundle ]; then export PIP_CERT=/run/secrets/ca_bundle; fi \
    && if [ -s /run/secrets/pip_conf ]; then export PIP_CONFIG_FILE=/run/secrets/pip_conf; fi \
    && python3 -m venv /opt/venv \
    && python3 -m pip install --no-cache-dir pip==26.3 uv==0.13.9 \
    && uv export --quiet --frozen --no-emit-project $(printf -- '--extra %s ' ${EXTRAS}) -o /tmp/locked.txt \
    && python3 -m pip install --no-cache-dir --require-hashes -r /tmp/locked.txt \
    && python3 -m pip uninstall --yes uv \
    && rm /tmp/locked.txt

# The code is used in place (PYTHONPATH), not installed: nothing to build, and scripts run from /app.
COPY . .
# The image has no .git: the commit it was built from, for each run's DONE.json (model.runs.provenance).
ARG CODE_COMMIT=
ENV PYTHONPATH=/app \
    CODE_COMMIT=${CODE_COMMIT}
RUN mkdir -p data experiments \
    && chown 1000:1000 data experiments

# The default user (any other works: `docker run --user "$(id -u):$(id -g)"`, as the README's commands do).
USER 1000
VOLUME ["/app/data", "/app/experiments"]
ENTRYPOINT ["scripts/docker-entrypoint.sh"]
CMD ["--help"]
