package dev.durapay;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.net.http.HttpHeaders;
import java.nio.charset.StandardCharsets;
import java.util.OptionalLong;

/**
 * An error answer of the durapay API: {@code {"error": {"code", "message", "details", "requestId"}}}
 * with its HTTP status. The subclasses name the kinds a merchant's code handles differently; any other
 * (500 INTERNAL, 502 PRECREATE_FAILED, …) is a DurapayException itself.
 */
public class DurapayException extends RuntimeException {
  private static final ObjectMapper JSON = new ObjectMapper();

  private final int status;
  private final String code;
  private final JsonNode details;
  private final String requestId;

  public DurapayException(int status, String code, String message, JsonNode details, String requestId) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
    this.requestId = requestId;
  }

  /** The HTTP status, e.g. 409. */
  public int getStatus() {
    return status;
  }

  /** The error code, e.g. REFUND_EXCEEDS_REFUNDABLE; null when the answer had none (not durapay's). */
  public String getCode() {
    return code;
  }

  /** The error's details as sent (null, an object or a list; see the code's description). */
  public JsonNode getDetails() {
    return details;
  }

  /** The request's id: the error's requestId, else the answer's Request-Id header; null when neither. */
  public String getRequestId() {
    return requestId;
  }

  @Override
  public String toString() {
    return getClass().getSimpleName() + ": " + status + " " + code + ": " + getMessage() + (requestId == null ? "" : " (request " + requestId + ")");
  }

  /** The typed exception of an error answer. */
  public static DurapayException fromResponse(int status, HttpHeaders headers, byte[] body) {
    String code = null;
    String message = null;
    JsonNode details = null;
    String requestId = null;
    try {
      JsonNode error = JSON.readTree(body).path("error");
      if (error.isObject()) {
        code = error.path("code").isTextual() ? error.get("code").asText() : null;
        message = error.path("message").isTextual() ? error.get("message").asText() : null;
        details = error.get("details");
        requestId = error.path("requestId").isTextual() ? error.get("requestId").asText() : null;
      }
    } catch (java.io.IOException | RuntimeException notJson) {
      // not durapay's JSON (a proxy's page): the status and a piece of the body say what it was
    }
    if (requestId == null) requestId = headers.firstValue("Request-Id").orElse(null);
    if (message == null) {
      String text = new String(body, StandardCharsets.UTF_8).strip();
      message = "HTTP " + status + (text.isEmpty() ? "" : ": " + (text.length() > 200 ? text.substring(0, 200) + "…" : text));
    }
    switch (status) {
      case 400:
      case 413:
      case 415:
        return new InvalidRequestException(status, code, message, details, requestId);
      case 401:
        return new AuthenticationException(status, code, message, details, requestId);
      case 404:
        return new NotFoundException(status, code, message, details, requestId);
      case 409:
        return new ConflictException(status, code, message, details, requestId);
      case 429:
        return new RateLimitException(status, code, message, details, requestId, retryAfterSeconds(headers, details));
      case 503:
        return new TryAgainException(status, code, message, details, requestId);
      default:
        return new DurapayException(status, code, message, details, requestId);
    }
  }

  /** Retry-After in seconds (the header, else details.retryAfterSeconds); empty when neither says. */
  private static OptionalLong retryAfterSeconds(HttpHeaders headers, JsonNode details) {
    String header = headers.firstValue("Retry-After").orElse("").strip();
    if (header.matches("\\d{1,9}")) return OptionalLong.of(Long.parseLong(header));
    if (details != null && details.path("retryAfterSeconds").canConvertToLong()) return OptionalLong.of(details.get("retryAfterSeconds").asLong());
    return OptionalLong.empty();
  }
}
