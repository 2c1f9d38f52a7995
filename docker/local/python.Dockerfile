# The app image's base on a machine without a registry, laid out like python:3.11-slim:
# Debian bookworm (shipwright-appbase: git, fonts, CA certificates) with a CPython 3.11
# in /usr/local. Debian's own python3 is 3.11.2, older than the code needs (tarfile's
# extraction filters came in 3.11.4), so docker/build-deploy-images.sh copies the
# host's CPython 3.11 (>= 3.11.4, built on bookworm; without its tests and
# site-packages) into the build context. No network: a plain COPY.
ARG BASE_IMAGE=shipwright-appbase:bookworm
FROM ${BASE_IMAGE}
COPY usr-local/ /usr/local/
RUN ldconfig \
 && python3 -c "import sys, ssl, sqlite3, ctypes, lzma, bz2, zlib, tarfile, venv, ensurepip; assert sys.prefix == '/usr/local', sys.prefix; tarfile.data_filter"
ENV LANG=C.UTF-8
CMD ["python3"]
