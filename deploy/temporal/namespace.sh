#!/bin/sh
# docker-compose.yml's temporal-namespace job, in the admin-tools image, once the server is healthy:
# the namespace durapay runs in, with its retention, and the payment search attributes in it. The
# same as the cluster of TEMPORAL_MODE=cluster registers (scripts/embedded/temporal-cluster.ts and
# PAYMENT_SEARCH_ATTRIBUTES in scripts/embedded/temporal.ts; test/compose.test.ts compares them).
# Safe to run again: an existing namespace is kept as it is, and attributes that exist with the
# same type are left alone (one with another type fails the job). TEMPORAL_ADDRESS names the server.
set -eu

# Each step is tried for up to two minutes: the server reports healthy as soon as its frontend
# answers, before every service has joined, and a new namespace takes a few seconds to be seen.
retry() {
  attempt=1
  until "$@"; do
    if [ "$attempt" -ge 24 ]; then
      echo "gave up after $attempt attempts: $*" >&2
      return 1
    fi
    attempt=$((attempt + 1))
    sleep 5
  done
}

namespace_exists() {
  temporal operator namespace describe --namespace durapay > /dev/null 2>&1
}

create_namespace() {
  namespace_exists || temporal operator namespace create --namespace durapay --retention 7d \
    --description "durapay: payment, refund, webhook and reconciliation workflows"
}

retry create_namespace
retry namespace_exists
retry temporal operator search-attribute create --namespace durapay \
  --name PaymentStatus --type Keyword \
  --name OutTradeNo --type Keyword \
  --name AmountFen --type Int \
  --name MerchantId --type Keyword \
  --name AlipayTradeNo --type Keyword

echo "namespace durapay and its search attributes are ready"
