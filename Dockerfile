# pgwarden worker image: Node 24 LTS plus the PostgreSQL 15 client tools, gpg and zstd.
FROM node:24-bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-client-15 gnupg zstd ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/pgwarden
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm install --no-save typescript@5.9.3 @types/node@24 @types/pg@8
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY bin ./bin
COPY scripts/bundle-workflows.ts ./scripts/
# Compiled code plus the prebuilt workflow bundle: the worker starts without running webpack.
RUN npm run build && ln -s /opt/pgwarden/bin/pgwarden /usr/local/bin/pgwarden
USER node
ENTRYPOINT ["pgwarden"]
CMD ["worker"]
