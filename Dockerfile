# kmx image: every kmx binary (kmx-broker, kmx-storage, kmx-ingest, kmx-query,
# kmx-gateway and the kmx CLI) and the dashboard kmx-gateway serves, in one small Debian
# image; the container command picks the service (default kmx-broker). See docs/deploy.md.
#
#   docker build -t kmx .                                   packages from the Debian archive
#   docker build --network none --build-arg BASE=bookworm-local --build-arg DEBS=1 -t kmx .
#                                                           offline: a locally imported base
#                                                           image and the .deb files in
#                                                           deploy/debs/{build,runtime}/
#                                                           (deploy/fetch-debs.sh fills them)
#                                                           and the built dashboard in
#                                                           deploy/web/ (a host build's
#                                                           BUILD_DIR/dashboard)
#
# The dashboard: a network build installs Debian's nodejs and npm in the build stage and
# the CMake build runs `npm ci` from web/package-lock.json; an offline build has no npm
# registry, so it takes the files the host's build made (tests/docker copies them into
# deploy/web/). Either way the build fails when the image would have no dashboard.
#
# Only plain Dockerfile features are used, so the classic builder of Docker 20.10 works.

# The base image of both stages. Offline builds substitute an image made with
# debootstrap and `docker import` (it must be Debian 12 with apt, like the default).
ARG BASE=debian:bookworm-slim
# 1 installs the .deb files shipped in the build context instead of using the network.
ARG DEBS=0
# Where those .deb files are, relative to the build context.
ARG DEBS_DIR=deploy/debs

# ---- build stage -----------------------------------------------------------------------
FROM ${BASE} AS build
ARG DEBS
ARG DEBS_DIR
ENV DEBIAN_FRONTEND=noninteractive
# The Dockerfile itself is listed so the COPY has a source even when the folder of .deb
# files does not exist (a network build); the folder's contents land in /tmp/debs/.
COPY Dockerfile ${DEBS_DIR}/build* /tmp/debs/
RUN set -eux; \
    if [ "$DEBS" = "1" ]; then \
        apt-get install -y --no-install-recommends /tmp/debs/*.deb; \
    else \
        apt-get update; \
        apt-get install -y --no-install-recommends build-essential cmake pkg-config \
            libzmq3-dev libprotobuf-c-dev protobuf-c-compiler liblmdb-dev \
            libjansson-dev libmicrohttpd-dev nodejs npm; \
        rm -rf /var/lib/apt/lists/*; \
    fi; \
    rm -rf /tmp/debs

# The whole context (.dockerignore leaves out build trees and .git): the CMake tree may
# reach into any folder (bench/ is one), so picking folders here would break silently.
COPY . /src
# Warnings stay warnings here: the development builds (scripts/test.sh) make them errors.
RUN set -eux; \
    cmake -S /src -B /tmp/kmx-build -DCMAKE_BUILD_TYPE=RelWithDebInfo \
          -DKMX_BUILD_TESTS=OFF -DKMX_WERROR=OFF -DCMAKE_INSTALL_PREFIX=/usr/local; \
    cmake --build /tmp/kmx-build -j"$(nproc)"; \
    cmake --install /tmp/kmx-build --strip; \
    web=/usr/local/share/kmx/web; \
    if [ ! -f "$web/index.html" ] && [ -f /src/deploy/web/index.html ]; then \
        mkdir -p "$web"; cp -R /src/deploy/web/. "$web/"; \
    fi; \
    ls -l "$web/index.html" "$web/app.js"; \
    ls -l /usr/local/bin/kmx /usr/local/bin/kmx-broker /usr/local/bin/kmx-storage \
          /usr/local/bin/kmx-ingest /usr/local/bin/kmx-query /usr/local/bin/kmx-gateway

# ---- runtime stage ---------------------------------------------------------------------
FROM ${BASE} AS runtime
ARG DEBS
ARG DEBS_DIR
ENV DEBIAN_FRONTEND=noninteractive
COPY Dockerfile ${DEBS_DIR}/runtime* /tmp/debs/
RUN set -eux; \
    if [ "$DEBS" = "1" ]; then \
        apt-get install -y --no-install-recommends /tmp/debs/*.deb; \
    else \
        apt-get update; \
        apt-get install -y --no-install-recommends libzmq5 libprotobuf-c1 liblmdb0 \
            libjansson4 libmicrohttpd12; \
        rm -rf /var/lib/apt/lists/*; \
    fi; \
    rm -rf /tmp/debs; \
    # A fixed id well above the host's system users: with host networking and a shared
    # process namespace (deploy/compose.hostnet.yml) it must not match a host account.
    groupadd --system --gid 10001 kmx; \
    useradd --system --uid 10001 --gid kmx --home-dir /var/lib/kmx --no-create-home \
            --shell /usr/sbin/nologin kmx; \
    install -d -o kmx -g kmx -m 0750 /var/lib/kmx

COPY --from=build /usr/local/bin/kmx /usr/local/bin/kmx-broker /usr/local/bin/kmx-storage \
                  /usr/local/bin/kmx-ingest /usr/local/bin/kmx-query /usr/local/bin/kmx-gateway \
                  /usr/local/bin/
# The dashboard, where kmx-gateway looks beside its bin/ (share/kmx/web).
COPY --from=build /usr/local/share/kmx/web /usr/local/share/kmx/web

# An empty named volume mounted on /var/lib/kmx starts as a copy of this directory, so it
# is owned by kmx too. No VOLUME line: only storage keeps data, and a VOLUME here would
# give every broker and worker container an anonymous volume of its own.
ENV KMX_DATA_DIR=/var/lib/kmx
WORKDIR /var/lib/kmx
USER kmx
# broker: 5555 requests, 5557 events (XPUB), 5558 publishers (XSUB); storage: 5560;
# gateway: 8480 HTTP.
EXPOSE 5555 5557 5558 5560 8480
CMD ["kmx-broker"]
