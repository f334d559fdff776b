package dev.durapay;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.OptionalLong;

/** 429 RATE_LIMITED: too many requests; send again after {@link #getRetryAfterSeconds()}. */
public class RateLimitException extends DurapayException {
  private final OptionalLong retryAfterSeconds;

  public RateLimitException(int status, String code, String message, JsonNode details, String requestId, OptionalLong retryAfterSeconds) {
    super(status, code, message, details, requestId);
    this.retryAfterSeconds = retryAfterSeconds;
  }

  /** The answer's Retry-After, in seconds; empty when it had none. */
  public OptionalLong getRetryAfterSeconds() {
    return retryAfterSeconds;
  }
}
