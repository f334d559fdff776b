package dev.durapay;

import com.fasterxml.jackson.databind.JsonNode;

/** 503 TRY_AGAIN: the engine did not answer in time; the same request can be sent again safely. */
public class TryAgainException extends DurapayException {
  public TryAgainException(int status, String code, String message, JsonNode details, String requestId) {
    super(status, code, message, details, requestId);
  }
}
