# A stand-in for the official redis image, for machines without a registry: Debian's
# redis-server; compose.yaml gives the command line (redis-server ...), data in /data.
# Built by docker/build-deploy-images.sh with --network host (apt needs the mirror).
ARG BASE_IMAGE=shipwright-base:bookworm
FROM ${BASE_IMAGE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb \
 && mkdir -p /data && chown redis:redis /data
USER redis
WORKDIR /data
EXPOSE 6379
CMD ["redis-server", "--protected-mode", "no"]
