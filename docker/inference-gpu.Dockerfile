# Inference on an NVIDIA GPU: onnxruntime-gpu (same version as the CPU build, never both).
# The base image's CUDA major must be the wheel's: onnxruntime-gpu 1.31.1's CUDA provider links
# libcudart.so.13, libcublas.so.13, libcublasLt.so.13, libcurand.so.10 and (TensorRT provider) libcudnn.so.9,
# so this is CUDA 13 + cuDNN 9; tools/check_compose.py enforces the pairing. The host needs an NVIDIA
# driver that supports CUDA 13 and the NVIDIA container toolkit.
# TensorRT (libnvinfer.so.10, libnvonnxparser.so.10) is not in this image: NVIDIA ships it from its own
# package index, so the image runs the CUDA provider (INFERENCE_PROVIDERS=cuda,cpu).
ARG CUDA_IMAGE=nvidia/cuda:13.0.1-cudnn-runtime-ubuntu24.04

FROM ${CUDA_IMAGE}
ARG APP_UID=10004
ENV DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 SERVICE=inference \
    INFERENCE_PROVIDERS=cuda,cpu INFERENCE_REQUIRE_GPU=true INFERENCE_DATA_DIR=/data/cache
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
# /data (and its cache/ for engines) is the only place inference writes; a named volume copies this owner.
RUN groupadd --system --gid ${APP_UID} creatorpass \
    && useradd --system --uid ${APP_UID} --gid creatorpass --no-create-home --home-dir /data creatorpass \
    && install -d -o ${APP_UID} -g ${APP_UID} -m 0750 /data /data/cache
COPY docker/entrypoint.sh /usr/local/bin/creatorpass-entrypoint
USER ${APP_UID}:${APP_UID}
WORKDIR /data
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
    CMD ["sh", "/usr/local/bin/creatorpass-entrypoint", "health-check"]
ENTRYPOINT ["sh", "/usr/local/bin/creatorpass-entrypoint"]
