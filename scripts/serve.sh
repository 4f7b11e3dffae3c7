#!/usr/bin/env bash
# Start the app as a shared classroom server: the one start command, used by the Docker image's
# ENTRYPOINT and by the README ("Run it for a class"). Server settings live in .streamlit/config.toml,
# which Streamlit reads from the working directory, hence the cd to the repository root.
#
#   PORT                  port to listen on (default 8501), on every network interface
#   TP_MAX_TRAINING_RUNS  training runs at once, the rest queue (read by app_lib/training_queue.py; default 2)
#   TP_USER_MODELS        folder for saved and uploaded models (read by app_lib/checkpoints.py; default user_models/)
#   MALLOC_ARENA_MAX      glibc malloc arenas (default here 2, glibc's own is 8 per core): every student's
#                         script thread would otherwise get an arena of its own, and the server's memory keeps
#                         growing with freed-but-fragmented blocks in each (benchmarks/RESULTS.md, "Load test")
#
# Extra arguments go to `streamlit run` (e.g. --server.baseUrlPath playground behind a proxy).
set -euo pipefail
cd "$(dirname "$0")/.."
PORT="${PORT:-8501}"
export MALLOC_ARENA_MAX="${MALLOC_ARENA_MAX:-2}"
if [ -n "${TP_USER_MODELS:-}" ]; then
  mkdir -p "$TP_USER_MODELS"
fi
echo "Transformer Playground: port $PORT, user models in ${TP_USER_MODELS:-user_models/}," \
     "at most ${TP_MAX_TRAINING_RUNS:-2 (default)} training runs at once" >&2
exec python3 -m streamlit run app.py --server.port "$PORT" "$@"
