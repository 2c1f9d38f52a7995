# The app image's base on a machine without a registry: the debootstrapped Debian
# (python3 is 3.11 there) and the Debian packages docker/app/Dockerfile would otherwise
# install itself, so that build can run with --network none.
# Built by docker/build-deploy-images.sh with --network host (apt needs the mirror).
ARG BASE_IMAGE=shipwright-base:bookworm
FROM ${BASE_IMAGE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends git fonts-dejavu-core ca-certificates \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb
