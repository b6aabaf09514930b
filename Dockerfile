# One image for every worker: Python 3.11 with the runtime and the `ray` and `gpu` extras at the versions locked in
# uv.lock, as `make setup` installs them (nothing for tests or benchmarks), run as a non-root user. The `gpu` extra
# is TensorFlow's CUDA route: CUDA and cuDNN come as wheels, so the host needs only the NVIDIA driver and the NVIDIA
# Container Toolkit (`docker run --gpus`). Data and experiments are volumes, so many containers (one per GPU, on one
# or many machines) share one experiments folder; RUNNING.json claims keep two off the same task.
#
#   docker build --build-arg CODE_COMMIT="$(git rev-parse HEAD)" -t decorrelating-neurons .
#   # one worker per GPU, pulling the sweep's unfinished tasks from the shared experiments folder:
#   docker run -d --gpus device=0 -v "$PWD/data:/app/data" -v "$PWD/experiments:/app/experiments" \
#       decorrelating-neurons worker configs/paper/mnist_corrected.json
#   # or a Ray worker node joining a cluster (driver: scripts/run_sweep.py SWEEP --executor ray --address HEAD:6379):
#   docker run -d --gpus device=1 --network host -v ... decorrelating-neurons worker --address HEAD:6379
#
# `worker` is scripts/docker-entrypoint.sh; any other command runs as given (e.g. `python3 scripts/sweep_status.py`).
# A worker whose container sees no GPU TensorFlow can use stops with an error (scripts/run_sweep.py --allow-cpu).
FROM python:3.11-slim-bookworm

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TF_FORCE_GPU_ALLOW_GROWTH=true \
    TF_CPP_MIN_LOG_LEVEL=2

SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /app

# Dependencies first (a layer that changes only with the lock): uv exports the lock's selection with its hashes,
# pip installs exactly that (the installers' versions are the Makefile's).
COPY pyproject.toml uv.lock ./
RUN python3 -m pip install --no-cache-dir pip==26.3 uv==0.13.9 \
    && uv export --quiet --frozen --no-emit-project --extra ray --extra gpu -o /tmp/locked.txt \
    && python3 -m pip install --no-cache-dir --require-hashes -r /tmp/locked.txt \
    && python3 -m pip uninstall --yes uv \
    && rm /tmp/locked.txt

# The code is used in place (PYTHONPATH), not installed: nothing to build, and scripts run from /app.
COPY . .
# The image has no .git: the commit it was built from, for each run's DONE.json (model.runs.provenance).
ARG CODE_COMMIT=
ENV PYTHONPATH=/app \
    CODE_COMMIT=${CODE_COMMIT}
RUN useradd --create-home --uid 1000 runner \
    && chmod 1777 /home/runner \
    && mkdir -p data experiments \
    && chown runner data experiments

USER 1000
VOLUME ["/app/data", "/app/experiments"]
ENTRYPOINT ["scripts/docker-entrypoint.sh"]
CMD ["--help"]
