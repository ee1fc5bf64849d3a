# Inference on an NVIDIA GPU: onnxruntime-gpu (same version as the CPU build, never both) on CUDA 12 + cuDNN 9.
ARG CUDA_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04

FROM ${CUDA_IMAGE}
ENV DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1
# deadsnakes rebuilds its packages often; an exact pin would break the build within weeks.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends software-properties-common \
    && add-apt-repository -y ppa:deadsnakes/ppa \
    && apt-get update \
    && apt-get install -y --no-install-recommends python3.11 python3.11-venv \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY common ./common
COPY inference ./inference
COPY devnet ./devnet
COPY indexer ./indexer
COPY signer ./signer
COPY gateway ./gateway
RUN python3.11 -m venv /opt/venv \
    && /opt/venv/bin/pip install -c constraints.txt ".[inference-gpu]"
RUN groupadd --system --gid 10001 creatorpass \
    && useradd --system --uid 10001 --gid creatorpass --home-dir /data --create-home creatorpass
USER 10001:10001
WORKDIR /data
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 CMD ["python", "-m", "inference", "health-check"]
ENTRYPOINT ["python", "-m", "inference"]
