package dev.durapay;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;

/**
 * Verifies the webhooks durapay sends. {@code Durapay-Signature: t=<unix seconds>,v1=<hex
 * HMAC-SHA256(secret, t + "." + raw body)>[,v1=…]}: during a secret rotation there is one v1 per live
 * secret. A webhook is accepted when |now - t| is within the tolerance (300 s unless said) and any v1
 * equals, in constant time, the HMAC under any of the secrets given; other keys (v0=…) are ignored.
 *
 * <p>Verify the raw body bytes exactly as received, before any JSON parsing or re-encoding.
 */
public final class WebhookVerifier {
  public static final String SIGNATURE_HEADER = "Durapay-Signature";
  public static final String EVENT_ID_HEADER = "Durapay-Event-Id";
  public static final Duration DEFAULT_TOLERANCE = Duration.ofSeconds(300);

  private static final ObjectMapper JSON = new ObjectMapper();

  private WebhookVerifier() {}

  /** With one secret, the default tolerance and the system clock. */
  public static WebhookEvent verify(String secret, byte[] rawBody, String header) {
    return verify(List.of(secret), rawBody, header, DEFAULT_TOLERANCE, Instant.now());
  }

  /** With the secrets (e.g. the new and the previous one during a rotation), the default tolerance and the system clock. */
  public static WebhookEvent verify(List<String> secrets, byte[] rawBody, String header) {
    return verify(secrets, rawBody, header, DEFAULT_TOLERANCE, Instant.now());
  }

  public static WebhookEvent verify(String secret, byte[] rawBody, String header, Duration tolerance, Instant now) {
    return verify(List.of(secret), rawBody, header, tolerance, now);
  }

  /**
   * The event, when the header signs this body with one of the secrets within the tolerance of now.
   *
   * @throws WebhookSignatureException MALFORMED, STALE or BAD_SIGNATURE
   */
  public static WebhookEvent verify(List<String> secrets, byte[] rawBody, String header, Duration tolerance, Instant now) {
    if (secrets == null || secrets.isEmpty()) throw new IllegalArgumentException("no webhook secret to verify with");
    if (header == null) throw new WebhookSignatureException(WebhookSignatureException.Reason.MALFORMED, "no Durapay-Signature header");
    Long t = null;
    List<String> v1 = new ArrayList<>();
    for (String part : header.split(",", -1)) {
      int at = part.indexOf('=');
      if (at < 0) continue;
      String key = part.substring(0, at).strip();
      String value = part.substring(at + 1).strip();
      if (key.equals("t") && t == null && value.matches("[0-9]{1,12}")) t = Long.parseLong(value);
      else if (key.equals("v1") && !value.isEmpty()) v1.add(value);
    }
    if (t == null || v1.isEmpty()) throw new WebhookSignatureException(WebhookSignatureException.Reason.MALFORMED, "the Durapay-Signature header has no t= or no v1= value");
    double nowSeconds = now.toEpochMilli() / 1000.0;
    if (Math.abs(nowSeconds - t) > tolerance.toMillis() / 1000.0) {
      throw new WebhookSignatureException(WebhookSignatureException.Reason.STALE, "the webhook's timestamp " + t + " is more than " + tolerance.toSeconds() + " s from now");
    }
    byte[] prefix = (t + ".").getBytes(StandardCharsets.UTF_8);
    byte[] signed = new byte[prefix.length + rawBody.length];
    System.arraycopy(prefix, 0, signed, 0, prefix.length);
    System.arraycopy(rawBody, 0, signed, prefix.length, rawBody.length);
    boolean matches = false;
    for (String secret : secrets) {
      byte[] expected = RequestSigner.hmacSha256Hex(secret.getBytes(StandardCharsets.UTF_8), signed).getBytes(StandardCharsets.US_ASCII);
      for (String given : v1) matches |= MessageDigest.isEqual(expected, given.getBytes(StandardCharsets.UTF_8));
    }
    if (!matches) throw new WebhookSignatureException(WebhookSignatureException.Reason.BAD_SIGNATURE, "no v1 signature matches this body under the webhook secret");
    JsonNode body;
    try {
      body = JSON.readTree(rawBody);
    } catch (IOException e) {
      throw new WebhookSignatureException(WebhookSignatureException.Reason.MALFORMED, "the signed body is not JSON");
    }
    if (body == null || !body.isObject() || !body.path("id").isTextual() || !body.path("type").isTextual()) {
      throw new WebhookSignatureException(WebhookSignatureException.Reason.MALFORMED, "the signed body is not an event");
    }
    return new WebhookEvent(body.get("id").asText(), body.get("type").asText(), body.path("apiVersion").asText(null), body.path("created").asLong(), body.get("data"), body);
  }
}
