#!/bin/sh
# Entry point of the Docker image (see the Dockerfile). Thin: it only picks what to run.
#   worker SWEEP.json [run_sweep.py options]  one worker on this container's GPU(s), or CPUs when none, training
#                                             the sweep's unfinished tasks in the shared experiments folder
#   worker --address HOST:PORT                join a Ray cluster as a worker node (blocks until stopped)
#   --help                                    this text
#   anything else                             runs as given, e.g. python3 scripts/sweep_status.py SWEEP.json
set -eu
case "${1:-}" in
  worker)
    shift
    if [ "${1:-}" = "--address" ]; then
      [ $# -ge 2 ] || { echo "worker --address: expected HOST:PORT" >&2; exit 2; }
      exec ray start --address "$2" --block
    fi
    [ $# -ge 1 ] || { echo "worker: expected a sweep file (e.g. configs/paper/mnist_corrected.json)" >&2; exit 2; }
    exec python3 scripts/run_sweep.py "$@" --executor local
    ;;
  ""|-h|--help)
    sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'
    ;;
  *)
    exec "$@"
    ;;
esac
