# The package index a learner's build may reach, and nothing else: the lab image's
# wheels as a PEP 503 "simple" index (one folder per normalised project name; the
# standard library's directory listing is the project page), served on 127.0.0.1:3141
# by the standard library's http.server as nobody. It runs with --network none; the
# build's RUN steps join its network namespace (grading/image_build.py).
ARG BASE_IMAGE=shipwright-base:bookworm
FROM ${BASE_IMAGE}
COPY simple/ /srv/index/simple/
ARG INPUT_HASH=unknown
LABEL org.shipwright.image="index" org.shipwright.input-hash="${INPUT_HASH}"
USER 65534:65534
CMD ["python3", "-I", "-m", "http.server", "--bind", "127.0.0.1", "--directory", "/srv/index", "3141"]
