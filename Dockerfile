# One image for both processes: `npm run api` or `npm run worker`.
FROM node:20-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev
COPY lib lib
COPY db db
COPY workflows workflows
COPY activities activities
COPY api api
COPY worker worker
# `docker compose exec api npm run merchant -- create --name …` manages merchants in the container.
COPY scripts/merchant.ts scripts/merchant.ts
COPY tsconfig.json ./
USER node
CMD ["npm", "run", "api"]
