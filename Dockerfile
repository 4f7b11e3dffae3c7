# Transformer Playground for a classroom: one container, CPU only, the shipped checkpoints inside.
#
#   docker build -t transformer-playground .
#   docker run -p 8501:8501 -v tp-models:/data/user_models transformer-playground
#
# Knobs (docker run -e NAME=value): PORT, TP_MAX_TRAINING_RUNS, TP_USER_MODELS (see README, "Run it for a class").
# tests/test_deploy.py reads this file and runs its ENTRYPOINT and HEALTHCHECK without Docker.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# torch first, from PyTorch's CPU index: PyPI's torch is a multi-GB CUDA build. The second install then
# finds torch==2.13.0 already satisfied (2.13.0+cpu) and takes the rest of requirements.txt from PyPI.
COPY requirements.txt ./
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0 \
 && pip install -r requirements.txt

# A non-root user, and the folder for the models students save or upload (mount a volume on it).
RUN useradd --create-home --uid 1000 --shell /usr/sbin/nologin playground \
 && mkdir -p /data/user_models \
 && chown playground:playground /data/user_models

# The app and the shipped checkpoints, owned by root: the app only reads them.
COPY .streamlit/ ./.streamlit/
COPY app.py ./
COPY app_lib/ ./app_lib/
COPY explain/ ./explain/
COPY pages/ ./pages/
COPY viz/ ./viz/
COPY static/ ./static/
COPY model/ ./model/
COPY data/ ./data/
COPY checkpoints/ ./checkpoints/
COPY scripts/serve.sh ./scripts/serve.sh

ENV PORT=8501 \
    TP_USER_MODELS=/data/user_models \
    TP_MAX_TRAINING_RUNS=2

USER playground
VOLUME ["/data/user_models"]
EXPOSE 8501

# slim has no curl: ask Streamlit's health endpoint with Python. Exit 0 only when it answers "ok".
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python3", "-c", "import os, sys, urllib.request; url = 'http://localhost:%s/_stcore/health' % os.environ.get('PORT', '8501'); sys.exit(urllib.request.urlopen(url, timeout=4).read() != b'ok')"]

# The one start command, shared with the README's non-Docker instructions. Extra `docker run` arguments
# are passed on to `streamlit run` (e.g. --server.baseUrlPath playground).
ENTRYPOINT ["bash", "scripts/serve.sh"]
