package dev.durapay;

import com.fasterxml.jackson.databind.JsonNode;

/** 409: the request conflicts with the order as it is (ORDER_CONFLICT, ORDER_CLOSED, NOT_CANCELLABLE, REFUND_CONFLICT, REFUND_EXCEEDS_REFUNDABLE, NOT_REFUNDABLE, NO_NOTIFY_URL, …); the code says which. */
public class ConflictException extends DurapayException {
  public ConflictException(int status, String code, String message, JsonNode details, String requestId) {
    super(status, code, message, details, requestId);
  }
}
