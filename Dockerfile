# One image for every ncaforge service in docker-compose.yml: Ray head and workers, the
# shards job, the catalog and the trainer. CPU torch by default; for GPU nodes build with
#   docker compose build --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128
FROM python:3.11-slim
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
WORKDIR /ncaforge
COPY requirements.txt .
RUN pip install --no-cache-dir --extra-index-url "${TORCH_INDEX}" -r requirements.txt
COPY generator generator
COPY service service
COPY trainer trainer
# The image has no .git: datasets and runs record the commit given at build time
#   docker compose build --build-arg NCAFORGE_GIT_COMMIT=$(git rev-parse HEAD)
ARG NCAFORGE_GIT_COMMIT=unknown
ENV PYTHONUNBUFFERED=1 PYTHONPATH=/ncaforge NCAFORGE_GIT_COMMIT=${NCAFORGE_GIT_COMMIT}
