# One image for every worker: TensorFlow's GPU image (its TensorFlow is requirements.txt's pin) plus the same pinned
# dependencies as `make setup`, run as a non-root user. Data and experiments are volumes, so many containers (one
# per GPU, on one or many machines) share one experiments folder; RUNNING.json claims keep two off the same task.
#
#   docker build -t decorrelating-neurons .
#   # one worker per GPU, pulling the sweep's unfinished tasks from the shared experiments folder:
#   docker run -d --gpus device=0 -v "$PWD/data:/app/data" -v "$PWD/experiments:/app/experiments" \
#       decorrelating-neurons worker configs/paper/mnist_corrected.json
#   # or a Ray worker node joining a cluster (driver: scripts/run_sweep.py SWEEP --executor ray --address HEAD:6379):
#   docker run -d --gpus device=1 --network host -v ... decorrelating-neurons worker --address HEAD:6379
#
# `worker` is scripts/docker-entrypoint.sh; any other command runs as given (e.g. `python3 scripts/sweep_status.py`).
ARG TF_VERSION=2.21.0
FROM tensorflow/tensorflow:${TF_VERSION}-gpu

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_BREAK_SYSTEM_PACKAGES=1 \
    TF_FORCE_GPU_ALLOW_GROWTH=true \
    TF_CPP_MIN_LOG_LEVEL=2

SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /app

# Dependencies first (a layer that changes only with requirements.txt), then the code.
COPY requirements.txt ./
RUN python3 -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ needed, the base image has " + sys.version' \
    && python3 -m pip install --no-cache-dir -r requirements.txt

# The code is used in place (PYTHONPATH), not installed: nothing to build, and scripts run from /app.
COPY . .
ENV PYTHONPATH=/app
RUN useradd --create-home --uid 1000 runner \
    && chmod 1777 /home/runner \
    && mkdir -p data experiments \
    && chown runner data experiments

USER 1000
VOLUME ["/app/data", "/app/experiments"]
ENTRYPOINT ["scripts/docker-entrypoint.sh"]
CMD ["--help"]
