# One image for every retail-mesh process: `docker run IMAGE services.orders` runs the orders
# service, `IMAGE sandbox.shopify --host 0.0.0.0` a sandbox system. Built once, deployed per domain
# (compose.yaml, k8s/). See docs/deploy.md.
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Dependencies first, so a code change does not re-download them. The project is installed
# (not editable) from the same pyproject.toml that `make install` uses.
COPY pyproject.toml README.md ./
COPY protos ./protos
COPY gen ./gen
COPY libs ./libs
COPY services ./services
COPY sandbox ./sandbox
COPY tools ./tools
RUN pip install . \
    && python -m compileall -q /opt/venv/lib

FROM ${PYTHON_IMAGE}
# Non-root at a fixed uid, so k8s `runAsNonRoot`/`runAsUser: 10001` and volume ownership agree.
RUN groupadd --system --gid 10001 mesh \
    && useradd --system --uid 10001 --gid mesh --home-dir /var/lib/retail-mesh --no-create-home mesh \
    && mkdir -p /var/lib/retail-mesh \
    && chown mesh:mesh /var/lib/retail-mesh
COPY --from=build /opt/venv /opt/venv
# Bytecode is compiled at build time; the root filesystem is read-only in k8s.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DATA_DIR=/var/lib/retail-mesh \
    GRPC_HOST=0.0.0.0 \
    METRICS_HOST=0.0.0.0
WORKDIR /var/lib/retail-mesh
USER 10001:10001
# `python -m <module>`: the command is the module, e.g. `services.orders` or `sandbox.tpl`.
ENTRYPOINT ["python", "-m"]
CMD ["tools.cli", "--help"]
