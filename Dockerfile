# syntax=docker/dockerfile:1
# One image for `tesk serve` (the API, served by gunicorn), `tesk taskmaster` and `tesk filer`.
#   docker build -t tesk:$(python3 -c 'import tomllib;print(tomllib.load(open("pyproject.toml","rb"))["project"]["version"])') .
# PYTHON_IMAGE may point at a mirror; builder and runtime must use the same one (the venv links to its python).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- builder: the TESK wheel and every dependency, installed into a self-contained venv -------------
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/tesk
COPY pyproject.toml README.md ./
# Dependencies first, in a layer of their own: a change to TESK's code does not reinstall them.
RUN /opt/tesk/bin/python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
 && /opt/tesk/bin/pip install --requirement /tmp/requirements.txt
COPY tesk ./tesk
RUN /opt/tesk/bin/pip wheel --no-deps --wheel-dir /wheels . \
 && /opt/tesk/bin/pip install --no-deps /wheels/tesk-*.whl \
 && /opt/tesk/bin/pip uninstall --yes pip setuptools \
 && /opt/tesk/bin/tesk --version

# --- runtime: the venv on a slim Python, no compilers, no pip, non-root -----------------------------
FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="TESK" \
      org.opencontainers.image.description="GA4GH Task Execution Service (TES v1.1.0)" \
      org.opencontainers.image.source="https://github.com/elixir-cloud-aai/TESK" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 tesk \
 && useradd --system --uid 10001 --gid tesk --home-dir /var/lib/tesk --no-create-home \
      --shell /usr/sbin/nologin tesk \
 && mkdir -p /var/lib/tesk \
 && chown tesk:tesk /var/lib/tesk
COPY --from=builder /opt/tesk /opt/tesk
# Bytecode is compiled at install time; the root file system may be read-only at run time.
ENV PATH=/opt/tesk/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TESK_DATA_DIR=/var/lib/tesk
WORKDIR /var/lib/tesk
USER 10001:10001
EXPOSE 8080
# For `docker run` and compose; Kubernetes uses the chart's probes on the same path.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]
ENTRYPOINT ["tesk"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]
