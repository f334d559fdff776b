# durapay's production image, in two targets of one build: `api` (the default, the last stage) and
# `worker` (docker build --target worker). The build stage compiles the TypeScript to dist/ and
# bundles the workflows and builds the web console there; the image itself holds production dependencies and that output
# only, and runs plain node as the unprivileged `node` user: no TypeScript at run time.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci
COPY tsconfig.json tsconfig.build.json ./
COPY lib lib
COPY db db
COPY workflows workflows
COPY activities activities
COPY api api
COPY worker worker
COPY cli cli
COPY scripts/merchant.ts scripts/console-user.ts scripts/healthcheck.ts scripts/migrate.ts scripts/
# The web console: `npm run build` builds it with Vite into console/dist and copies it to
# dist/console/dist, where the API serves it under /console (static files, nothing from a CDN).
COPY console console
RUN npm run build

FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev && npm cache clean --force
COPY --from=build /app/dist dist
# The merchant CLI, `durapay` (package.json's bin): its launcher runs the compiled dist/cli/main.js.
COPY bin bin
# Built above: the worker loads it instead of bundling the workflows at every start.
ENV WORKFLOW_BUNDLE=/app/dist/workflow-bundle.js
USER node
# Merchants are managed in the container: docker compose exec api node dist/scripts/merchant.js create --name "Tea House"
# and the merchant API is called from it with: docker compose exec api node bin/durapay.js help. The first console
# operator: docker compose exec api node dist/scripts/console-user.js create --email you@example.com --role operator

FROM runtime AS worker
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 CMD ["node", "dist/scripts/healthcheck.js", "worker"]
CMD ["node", "--enable-source-maps", "--max-old-space-size=256", "dist/worker/main.js"]

FROM runtime AS api
EXPOSE 3000
HEALTHCHECK --interval=10s --timeout=10s --start-period=20s --retries=3 CMD ["node", "dist/scripts/healthcheck.js", "api"]
CMD ["node", "--enable-source-maps", "dist/api/main.js"]
