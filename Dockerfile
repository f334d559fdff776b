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
COPY tsconfig.json ./
USER node
CMD ["npm", "run", "api"]
