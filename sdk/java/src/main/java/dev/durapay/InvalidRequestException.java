package dev.durapay;

import com.fasterxml.jackson.databind.JsonNode;

/** 400, 413 or 415: a field or parameter broke its rule (INVALID_REQUEST, details lists them), the body was not JSON, too large or not application/json. */
public class InvalidRequestException extends DurapayException {
  public InvalidRequestException(int status, String code, String message, JsonNode details, String requestId) {
    super(status, code, message, details, requestId);
  }
}
