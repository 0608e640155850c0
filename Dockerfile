# The project image for running the pipeline on a cluster (Kubernetes with dagster-k8s, or Dask
# workers): the package and its pinned dependencies, nothing else. Study files, the warehouse and
# the Dagster instance live outside the image (volumes and environment; see the README's scale-out
# section). Build from the checkout: docker build -t scaling-studies .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    SCALING_STUDIES=/studies SCALING_WAREHOUSE=/warehouse DAGSTER_HOME=/dagster_home
WORKDIR /app
COPY pyproject.toml README.md ./
COPY scaling ./scaling
COPY warehouse ./warehouse
COPY assets ./assets
COPY pipelines ./pipelines
RUN python -m pip install --no-cache-dir . && mkdir -p /studies /warehouse /dagster_home

# A Dask worker by default; Dagster's run launcher and executors override the command.
CMD ["dask", "worker", "--nthreads", "1"]
