package dev.durapay;

import com.fasterxml.jackson.databind.JsonNode;

/** 401: the request's signature headers were missing, unknown, stale, wrong or replayed (AUTH_*). */
public class AuthenticationException extends DurapayException {
  public AuthenticationException(int status, String code, String message, JsonNode details, String requestId) {
    super(status, code, message, details, requestId);
  }
}
