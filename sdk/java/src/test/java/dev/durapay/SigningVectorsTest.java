package dev.durapay;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpRequest;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

/** The shared vectors (sdk/signing-vectors.json), which every SDK and the server check. */
class SigningVectorsTest {
  private static final JsonNode VECTORS = load();

  private static JsonNode load() {
    try {
      return new ObjectMapper().readTree(Path.of("..", "signing-vectors.json").toFile());
    } catch (IOException e) {
      throw new IllegalStateException("sdk/signing-vectors.json", e);
    }
  }

  private static List<JsonNode> list(String name) {
    List<JsonNode> out = new ArrayList<>();
    VECTORS.get(name).forEach(out::add);
    if (out.isEmpty()) throw new IllegalStateException("no " + name + " vectors");
    return out;
  }

  @TestFactory
  Stream<DynamicTest> requestVectorsSign() {
    return list("requests").stream().map(v -> DynamicTest.dynamicTest(v.get("name").asText(), () -> {
      String secret = v.get("secret").asText();
      String method = v.get("method").asText();
      String pathWithQuery = v.get("pathWithQuery").asText();
      String timestamp = v.get("timestamp").asText();
      String nonce = v.get("nonce").asText();
      byte[] body = v.get("body").asText().getBytes(StandardCharsets.UTF_8);
      assertEquals(v.get("bodySha256").asText(), RequestSigner.sha256Hex(body));
      assertEquals(v.get("stringToSign").asText(), RequestSigner.stringToSign(method, pathWithQuery, timestamp, nonce, body));
      assertEquals(v.get("signature").asText(), RequestSigner.signature(secret, method, pathWithQuery, timestamp, nonce, body));

      // The interceptor, on a request as the generated client builds it: the same four headers.
      Clock clock = Clock.fixed(Instant.ofEpochSecond(Long.parseLong(timestamp)), ZoneOffset.UTC);
      RequestSigner signer = new RequestSigner("mvector001", secret, clock, () -> nonce);
      HttpRequest.Builder builder = HttpRequest.newBuilder(URI.create("http://127.0.0.1:8080" + pathWithQuery))
          .method(method, body.length == 0 ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofByteArray(body));
      signer.accept(builder);
      HttpRequest request = builder.build();
      assertEquals(pathWithQuery, RequestSigner.pathWithQueryAsSent(request.uri()));
      assertEquals("mvector001", request.headers().firstValue(RequestSigner.MERCHANT_HEADER).orElseThrow());
      assertEquals(timestamp, request.headers().firstValue(RequestSigner.TIMESTAMP_HEADER).orElseThrow());
      assertEquals(nonce, request.headers().firstValue(RequestSigner.NONCE_HEADER).orElseThrow());
      assertEquals(v.get("signature").asText(), request.headers().firstValue(RequestSigner.SIGNATURE_HEADER).orElseThrow());
      // Signing reads the body without using it up: the request still sends every byte.
      assertEquals(body.length, RequestSigner.bodyBytes(request.bodyPublisher().orElseThrow()).length);
    }));
  }

  @TestFactory
  Stream<DynamicTest> webhookVectorsVerify() {
    return list("webhooks").stream().map(v -> DynamicTest.dynamicTest(v.get("name").asText(), () -> {
      byte[] body = v.get("body").asText().getBytes(StandardCharsets.UTF_8);
      String header = v.get("header").asText();
      Duration tolerance = Duration.ofSeconds(v.get("toleranceSeconds").asLong());
      Instant now = Instant.ofEpochSecond(v.get("now").asLong());
      String secret = v.get("secret").asText();
      if (v.get("valid").asBoolean()) {
        WebhookEvent event = WebhookVerifier.verify(secret, body, header, tolerance, now);
        JsonNode parsed = new ObjectMapper().readTree(body);
        assertEquals(parsed.get("id").asText(), event.id());
        assertEquals(parsed.get("type").asText(), event.type());
        assertEquals(parsed.get("data"), event.data());
        // Among other secrets it still verifies: any secret and any v1.
        WebhookVerifier.verify(List.of("whsec_not_this_one", secret), body, header, tolerance, now);
      } else {
        assertThrows(WebhookSignatureException.class, () -> WebhookVerifier.verify(secret, body, header, tolerance, now));
      }
    }));
  }

  @TestFactory
  Stream<DynamicTest> webhookRefusalsSayWhy() {
    JsonNode v = list("webhooks").get(0);
    byte[] body = v.get("body").asText().getBytes(StandardCharsets.UTF_8);
    String header = v.get("header").asText();
    String secret = v.get("secret").asText();
    long t = Long.parseLong(header.replaceAll("^t=(\\d+),.*$", "$1"));
    Map<String, Runnable> cases = Map.of(
        "no header is MALFORMED", () -> expect(WebhookSignatureException.Reason.MALFORMED, () -> WebhookVerifier.verify(secret, body, null, Duration.ofSeconds(300), Instant.ofEpochSecond(t))),
        "no v1 is MALFORMED", () -> expect(WebhookSignatureException.Reason.MALFORMED, () -> WebhookVerifier.verify(secret, body, "t=" + t + ",v0=abc", Duration.ofSeconds(300), Instant.ofEpochSecond(t))),
        "too old is STALE", () -> expect(WebhookSignatureException.Reason.STALE, () -> WebhookVerifier.verify(secret, body, header, Duration.ofSeconds(300), Instant.ofEpochSecond(t + 301))),
        "another secret is BAD_SIGNATURE", () -> expect(WebhookSignatureException.Reason.BAD_SIGNATURE, () -> WebhookVerifier.verify("whsec_other", body, header, Duration.ofSeconds(300), Instant.ofEpochSecond(t))));
    return cases.entrySet().stream().map(c -> DynamicTest.dynamicTest(c.getKey(), c.getValue()::run));
  }

  private static void expect(WebhookSignatureException.Reason reason, Runnable verify) {
    WebhookSignatureException e = assertThrows(WebhookSignatureException.class, verify::run);
    assertEquals(reason, e.getReason());
  }

  @TestFactory
  Stream<DynamicTest> nonces() {
    return Stream.of(DynamicTest.dynamicTest("32 hex characters, never the same twice", () -> {
      String a = RequestSigner.newNonce();
      String b = RequestSigner.newNonce();
      assertTrue(a.matches("[0-9a-f]{32}"), a);
      assertFalse(a.equals(b));
    }));
  }
}
