package dev.durapay;

import com.fasterxml.jackson.databind.JsonNode;

/** 404 NOT_FOUND: no such order, refund or event of this merchant. */
public class NotFoundException extends DurapayException {
  public NotFoundException(int status, String code, String message, JsonNode details, String requestId) {
    super(status, code, message, details, requestId);
  }
}
