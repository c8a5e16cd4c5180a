# One image for every ncaforge service in docker-compose.yml: Ray head and workers, the
# shards job and the catalog. CPU torch by default; for GPU nodes build with
#   docker compose build --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128
FROM python:3.11-slim
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
WORKDIR /ncaforge
COPY requirements.txt .
RUN pip install --no-cache-dir --extra-index-url "${TORCH_INDEX}" -r requirements.txt
COPY generator generator
COPY service service
ENV PYTHONUNBUFFERED=1 PYTHONPATH=/ncaforge
