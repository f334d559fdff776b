package dev.durapay;

import com.fasterxml.jackson.databind.JsonNode;

/**
 * A verified webhook: {@code {"id", "type", "apiVersion", "created", "data"}}.
 *
 * @param id evt_…, the same as the Durapay-Event-Id header; the same event may arrive more than once
 * @param type e.g. payment.paid, refund.succeeded, ping
 * @param apiVersion e.g. 2026-12-07
 * @param created unix seconds
 * @param data the payment (and the refund) as they were
 * @param body the whole body, parsed
 */
public record WebhookEvent(String id, String type, String apiVersion, long created, JsonNode data, JsonNode body) {}
