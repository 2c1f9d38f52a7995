# A stand-in for the official postgres image, for machines without a registry (the
# compose test here): Debian's PostgreSQL, and the part of the official image's
# interface compose.yaml uses: POSTGRES_USER, POSTGRES_DB, POSTGRES_PASSWORD_FILE,
# data in /var/lib/postgresql/data, pg_isready, port 5432.
# Built by docker/build-deploy-images.sh with --network host (apt needs the mirror).
ARG BASE_IMAGE=shipwright-base:bookworm
FROM ${BASE_IMAGE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql-15 \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb \
 && mkdir -p /var/lib/postgresql/data /var/run/postgresql \
 && chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql
COPY postgres-entrypoint.sh /usr/local/bin/
ENV PATH=/usr/lib/postgresql/15/bin:$PATH PGDATA=/var/lib/postgresql/data
USER postgres
EXPOSE 5432
ENTRYPOINT ["postgres-entrypoint.sh"]
CMD ["postgres"]
