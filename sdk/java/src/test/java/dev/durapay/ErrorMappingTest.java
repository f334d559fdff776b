package dev.durapay;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.http.HttpHeaders;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;
import org.junit.jupiter.api.Test;

/** Error answers become their typed exceptions, whatever the engine's version sends. */
class ErrorMappingTest {
  private static HttpHeaders headers(Map<String, List<String>> map) {
    return HttpHeaders.of(map, (name, value) -> true);
  }

  private static DurapayException map(int status, String body, Map<String, List<String>> headers) {
    return DurapayException.fromResponse(status, headers(headers), body.getBytes(StandardCharsets.UTF_8));
  }

  private static String error(String code) {
    return "{\"error\":{\"code\":\"" + code + "\",\"message\":\"m\",\"details\":null}}";
  }

  @Test
  void eachStatusHasItsKind() {
    assertInstanceOf(InvalidRequestException.class, map(400, error("INVALID_REQUEST"), Map.of()));
    assertInstanceOf(InvalidRequestException.class, map(413, error("BAD_REQUEST"), Map.of()));
    assertInstanceOf(InvalidRequestException.class, map(415, error("UNSUPPORTED_MEDIA_TYPE"), Map.of()));
    assertInstanceOf(AuthenticationException.class, map(401, error("AUTH_REPLAYED_NONCE"), Map.of()));
    assertInstanceOf(NotFoundException.class, map(404, error("NOT_FOUND"), Map.of()));
    assertInstanceOf(ConflictException.class, map(409, error("ORDER_CLOSED"), Map.of()));
    assertInstanceOf(RateLimitException.class, map(429, error("RATE_LIMITED"), Map.of()));
    assertInstanceOf(TryAgainException.class, map(503, error("TRY_AGAIN"), Map.of()));
    DurapayException other = map(502, error("PRECREATE_FAILED"), Map.of());
    assertEquals(DurapayException.class, other.getClass());
    assertEquals("PRECREATE_FAILED", other.getCode());
  }

  @Test
  void theErrorsFieldsAndTheRequestId() {
    DurapayException e = map(409, "{\"error\":{\"code\":\"REFUND_EXCEEDS_REFUNDABLE\",\"message\":\"too much\",\"details\":{\"refundable\":\"1.00\"},\"requestId\":\"req-body\"}}",
        Map.of("Request-Id", List.of("req-header")));
    assertEquals(409, e.getStatus());
    assertEquals("REFUND_EXCEEDS_REFUNDABLE", e.getCode());
    assertEquals("too much", e.getMessage());
    assertEquals("1.00", e.getDetails().get("refundable").asText());
    assertEquals("req-body", e.getRequestId());
    assertEquals("req-header", map(404, error("NOT_FOUND"), Map.of("Request-Id", List.of("req-header"))).getRequestId());
    assertNull(map(404, error("NOT_FOUND"), Map.of()).getRequestId());
  }

  @Test
  void retryAfterFromTheHeaderOrTheDetails() {
    RateLimitException header = (RateLimitException) map(429, error("RATE_LIMITED"), Map.of("Retry-After", List.of("17")));
    assertEquals(OptionalLong.of(17), header.getRetryAfterSeconds());
    RateLimitException details = (RateLimitException) map(429, "{\"error\":{\"code\":\"RATE_LIMITED\",\"message\":\"slow\",\"details\":{\"retryAfterSeconds\":9}}}", Map.of());
    assertEquals(OptionalLong.of(9), details.getRetryAfterSeconds());
    assertEquals(OptionalLong.empty(), ((RateLimitException) map(429, "", Map.of())).getRetryAfterSeconds());
  }

  @Test
  void anAnswerThatIsNotDurapaysStillSaysWhatItWas() {
    DurapayException e = map(502, "<html>Bad Gateway</html>", Map.of());
    assertNull(e.getCode());
    assertTrue(e.getMessage().startsWith("HTTP 502: <html>Bad Gateway"), e.getMessage());
  }
}
