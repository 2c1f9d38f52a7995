# What a learner's Dockerfile gets for `FROM python:3.11-slim` on a machine without a
# registry: the debootstrapped Debian bookworm (python3 is 3.11, pip in it) laid out so
# that a Dockerfile written for python:3.11-slim works unchanged: `python` and `pip`
# on PATH, pip allowed to install into the system (Debian marks it externally managed;
# the slim image's /usr/local Python is not), and pip pointed at the build's package
# index: the lab image's wheelhouse, served on the build's own loopback
# (docker/learner/index.Dockerfile, grading/image_build.py). No other network exists.
#
# The label is inherited by every layer built on it: the reaper prunes the build cache
# by it and never touches other images.
ARG BASE_IMAGE=shipwright-base:bookworm
FROM ${BASE_IMAGE}
ARG INDEX_STAMP=unknown
RUN ln -sf /usr/bin/python3 /usr/local/bin/python \
 && ln -sf /usr/bin/pip3 /usr/local/bin/pip \
 && rm -f /usr/lib/python3.11/EXTERNALLY-MANAGED \
 && printf '[global]\nindex-url = http://127.0.0.1:3141/simple/\ndisable-pip-version-check = true\ntimeout = 15\nretries = 1\nroot-user-action = ignore\n' > /etc/pip.conf
# INDEX_STAMP (the wheelhouse's stamp) is part of this image: a RUN step's cached
# result depends on what the index served, so a new wheelhouse is a new base and
# every cached layer built on the old one stops matching.
LABEL org.shipwright.learner-base="py311" org.shipwright.index-stamp="${INDEX_STAMP}"
ENV LANG=C.UTF-8 PYTHONUNBUFFERED=1
CMD ["python3"]
