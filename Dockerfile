# gossip agent image: build the wheels in one stage, install them offline in a
# slim, non-root final stage.
#   docker build -t gossip .
#   docker run --rm gossip --version
# See docs/operations.md (compose cluster, scenarios with tc netem and nftables).

FROM python:3.11-slim AS build
WORKDIR /src
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY pyproject.toml README.md* ./
COPY gossip ./gossip
# The project's wheel plus every dependency's, so the final stage needs no network.
RUN pip wheel --wheel-dir /wheels .

FROM python:3.11-slim
# iproute2 (tc) and nftables let scenario scripts shape traffic inside the
# container (with NET_ADMIN); the agent itself needs neither.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends iproute2 nftables \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 7946 gossip \
    && useradd --system --uid 7946 --gid gossip --home-dir /var/lib/gossip --create-home gossip
COPY --from=build /wheels /tmp/wheels
RUN pip install --no-index --no-cache-dir --find-links=/tmp/wheels /tmp/wheels/gossip-*.whl \
    && rm -rf /tmp/wheels
USER 7946:7946
WORKDIR /var/lib/gossip
ENV GOSSIP_BIND=0.0.0.0:7946 \
    GOSSIP_API=127.0.0.1:7947 \
    GOSSIP_DATA_DIR=/var/lib/gossip \
    GOSSIP_LOG_FORMAT=json \
    PYTHONUNBUFFERED=1
# 7946: gossip (UDP datagrams and TCP streams); 7947: the control API.
EXPOSE 7946/udp 7946/tcp 7947/tcp
# /v1/health answers without a token wherever the API is bound.
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as r; r.urlopen('http://' + os.environ.get('GOSSIP_API', '127.0.0.1:7947') + '/v1/health', timeout=2)"]
# SIGTERM makes the agent leave the cluster gracefully before it exits.
STOPSIGNAL SIGTERM
ENTRYPOINT ["gossip"]
CMD ["agent"]
