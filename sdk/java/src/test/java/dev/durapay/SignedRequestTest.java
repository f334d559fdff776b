package dev.durapay;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.sun.net.httpserver.HttpServer;
import dev.durapay.client.model.CreateRefundRequest;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The facade's requests, checked as the server checks them: the signature over the method, the path
 * and query exactly as they arrived, and the body bytes that arrived.
 */
class SignedRequestTest {
  private static final String MERCHANT = "mtest00001";
  private static final String SECRET = "sk_signed_request_test";

  record Received(String method, String target, boolean signed, String nonce) {}

  private final List<Received> received = new CopyOnWriteArrayList<>();
  private HttpServer server;
  private Durapay durapay;

  @BeforeEach
  void start() throws Exception {
    server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
    server.createContext("/", exchange -> {
      byte[] body;
      try (InputStream in = exchange.getRequestBody()) {
        body = in.readAllBytes();
      }
      String rawQuery = exchange.getRequestURI().getRawQuery();
      String target = exchange.getRequestURI().getRawPath() + (rawQuery == null ? "" : "?" + rawQuery);
      var headers = exchange.getRequestHeaders();
      String timestamp = headers.getFirst("Durapay-Timestamp");
      String nonce = headers.getFirst("Durapay-Nonce");
      String expected = RequestSigner.signature(SECRET, exchange.getRequestMethod(), target, timestamp, nonce, body);
      boolean signed = MERCHANT.equals(headers.getFirst("Durapay-Merchant"))
          && nonce != null && nonce.matches("[A-Za-z0-9_-]{16,64}")
          && Math.abs(System.currentTimeMillis() / 1000 - Long.parseLong(timestamp)) <= 300
          && expected.equals(headers.getFirst("Durapay-Signature"));
      received.add(new Received(exchange.getRequestMethod(), target, signed, nonce));
      byte[] answer = "{\"error\":{\"code\":\"NOT_FOUND\",\"message\":\"No such order.\",\"details\":null}}".getBytes(StandardCharsets.UTF_8);
      exchange.getResponseHeaders().set("Content-Type", "application/json");
      exchange.getResponseHeaders().set("Request-Id", "req-test-1");
      exchange.sendResponseHeaders(404, answer.length);
      exchange.getResponseBody().write(answer);
      exchange.close();
    });
    server.start();
    durapay = new Durapay("http://127.0.0.1:" + server.getAddress().getPort() + "/", MERCHANT, SECRET);
  }

  @AfterEach
  void stop() {
    server.stop(0);
  }

  @Test
  void pathsQueriesAndBodiesAreSignedAsTheyArrive() {
    NotFoundException missing = assertThrows(NotFoundException.class, () -> durapay.payments().getPayment("order/7 咖啡"));
    assertEquals("req-test-1", missing.getRequestId());
    assertThrows(NotFoundException.class, () -> durapay.payments().listPayments("PAID", OffsetDateTime.of(2026, 12, 7, 8, 0, 0, 0, ZoneOffset.ofHours(8)), null, 5, "c+/=", null, null, null));
    assertThrows(NotFoundException.class, () -> durapay.refunds().createRefund("order-1", new CreateRefundRequest().outRequestNo("退款-1").amount("1.00")));
    assertThrows(NotFoundException.class, () -> durapay.payments().cancelPayment("order-1"));

    assertEquals(4, received.size());
    received.forEach(r -> assertTrue(r.signed(), "signed as it arrived: " + r));
    assertTrue(received.get(0).target().startsWith("/v1/payments/order%2F7"), received.get(0).target());
    assertTrue(received.get(1).target().startsWith("/v1/payments?"), received.get(1).target());
    assertEquals("POST", received.get(2).method());
    assertEquals(4, received.stream().map(Received::nonce).distinct().count(), "a new nonce each time");
  }
}
