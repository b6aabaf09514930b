#!/bin/sh
# Entry point of the Docker image (see the Dockerfile and the README's "Docker"). Thin: it only picks what to run.
#   worker SWEEP.json [run_sweep.py options]  one worker on this container's GPU(s), or CPUs when none, training
#                                             the sweep's unfinished tasks in the shared experiments folder;
#                                             `docker stop` checkpoints, releases the claims and exits 0
#   worker --address HOST:PORT                join a Ray cluster as a worker node (blocks until stopped)
#   prepare-mnist [prepare_mnist.py options]  MNIST into data/mnist, then the MNIST zoo's initial weights
#   download-pgdl [download_pgdl.py options]  the paper's PGDL task1_v4 members into data/pgdl
#   status SWEEP.json [sweep_status.py options]  per cell: done, running (host, heartbeat age), failed
#   --help                                    this text
#   anything else                             runs as given, e.g. python3 scripts/make_report.py ...
set -eu

# A folder the container must write to: say what to do when it cannot (the usual cause: the volume belongs to
# another user than the container runs as).
writable() {
  [ -w "$1" ] && return 0
  echo "error: $(pwd)/$1 is not writable by this container's user (uid $(id -u), gid $(id -g)); run the container as" \
       "the owner of the folder you mount there: docker run --user \"\$(id -u):\$(id -g)\" ..., or give that user" \
       "write access (chown/chmod the folder on the host)" >&2
  exit 2
}

case "${1:-}" in
  worker)
    shift
    if [ "${1:-}" = "--address" ]; then
      [ $# -ge 2 ] || { echo "worker --address: expected HOST:PORT" >&2; exit 2; }
      exec ray start --address "$2" --block
    fi
    [ $# -ge 1 ] || { echo "worker: expected a sweep file (e.g. configs/paper/mnist_corrected.json)" >&2; exit 2; }
    writable experiments
    exec python3 scripts/run_sweep.py "$@" --executor local
    ;;
  prepare-mnist)
    shift
    writable data
    python3 scripts/prepare_mnist.py "$@"
    exec python3 scripts/make_mnist_zoo.py
    ;;
  download-pgdl)
    shift
    writable data
    exec python3 scripts/download_pgdl.py "$@"
    ;;
  status)
    shift
    exec python3 scripts/sweep_status.py "$@"
    ;;
  ""|-h|--help)
    sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
    ;;
  *)
    exec "$@"
    ;;
esac
