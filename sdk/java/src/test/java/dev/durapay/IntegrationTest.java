package dev.durapay;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.sun.net.httpserver.HttpServer;
import dev.durapay.client.model.CreatePaymentRequest;
import dev.durapay.client.model.CreateRefundRequest;
import dev.durapay.client.model.ListPayments200Response;
import dev.durapay.client.model.Payment;
import dev.durapay.client.model.PaymentStatus;
import dev.durapay.client.model.Refund;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.time.Instant;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfEnvironmentVariable;

/**
 * Against a real engine (test/sdk-java.test.ts starts one): DURAPAY_API_URL, DURAPAY_MERCHANT_ID,
 * DURAPAY_MERCHANT_SECRET and DURAPAY_WEBHOOK_SECRET. Skipped when DURAPAY_API_URL is not set.
 */
@EnabledIfEnvironmentVariable(named = "DURAPAY_API_URL", matches = ".+")
class IntegrationTest {
  private static final Duration DEADLINE = Duration.ofSeconds(30);

  /** One webhook as it arrived: the raw body bytes and the headers that sign it. */
  record Delivery(byte[] body, String signature, String eventId) {}

  private static final BlockingQueue<Delivery> deliveries = new LinkedBlockingQueue<>();
  private static HttpServer receiver;
  private static String notifyUrl;
  private static Durapay durapay;

  @BeforeAll
  static void start() throws Exception {
    receiver = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
    receiver.createContext("/webhooks", exchange -> {
      byte[] body;
      try (InputStream in = exchange.getRequestBody()) {
        body = in.readAllBytes();
      }
      deliveries.add(new Delivery(body, exchange.getRequestHeaders().getFirst("Durapay-Signature"), exchange.getRequestHeaders().getFirst("Durapay-Event-Id")));
      exchange.sendResponseHeaders(204, -1);
      exchange.close();
    });
    receiver.start();
    notifyUrl = "http://127.0.0.1:" + receiver.getAddress().getPort() + "/webhooks";
    durapay = new Durapay(env("DURAPAY_API_URL"), env("DURAPAY_MERCHANT_ID"), env("DURAPAY_MERCHANT_SECRET"));
  }

  @AfterAll
  static void stop() {
    if (receiver != null) receiver.stop(0);
  }

  private static String env(String name) {
    String value = System.getenv(name);
    if (value == null || value.isEmpty()) throw new IllegalStateException(name + " is not set");
    return value;
  }

  interface Check<T> {
    T get() throws Exception;
  }

  /** Asks again until the answer is there (non-null), or fails at the deadline. */
  private static <T> T waitFor(String what, Check<T> check) throws Exception {
    Instant deadline = Instant.now().plus(DEADLINE);
    while (true) {
      T answer = check.get();
      if (answer != null) return answer;
      if (Instant.now().isAfter(deadline)) throw new AssertionError("gave up waiting for " + what + " after " + DEADLINE.toSeconds() + " s");
      Thread.sleep(100);
    }
  }

  @Test
  void createPayRefundAndReceiveTheSignedWebhook() throws Exception {
    String outTradeNo = "java-" + Long.toString(System.currentTimeMillis(), 36) + "-" + RequestSigner.newNonce().substring(0, 6);
    Payment created = durapay.payments().createPayment(new CreatePaymentRequest()
        .outTradeNo(outTradeNo)
        .amount("88.88")
        .subject("咖啡 Coffee")
        .notifyUrl(URI.create(notifyUrl)));
    assertEquals(outTradeNo, created.getOutTradeNo());
    assertEquals("88.88", created.getAmount());
    assertEquals("咖啡 Coffee", created.getSubject());
    assertEquals(PaymentStatus.AWAITING_PAYMENT, created.getStatus());
    assertNotNull(created.getQrCode(), "the simulator issued a QR code");

    // The buyer scans the QR code and pays, at the simulator.
    HttpResponse<String> paid = HttpClient.newHttpClient().send(
        HttpRequest.newBuilder(URI.create(created.getQrCode() + "/pay")).POST(HttpRequest.BodyPublishers.noBody()).build(),
        HttpResponse.BodyHandlers.ofString());
    assertEquals(200, paid.statusCode(), paid.body());

    Payment payment = waitFor(outTradeNo + " to be PAID", () -> {
      Payment now = durapay.payments().getPayment(outTradeNo);
      return now.getStatus() == PaymentStatus.PAID ? now : null;
    });
    assertEquals("88.88", payment.getPaidAmount());

    // A signed GET with a query string.
    ListPayments200Response list = durapay.payments().listPayments("PAID", null, null, 100, null, null, null, null);
    assertTrue(list.getPayments().stream().anyMatch(p -> p.getOutTradeNo().equals(outTradeNo)), "the paid order is listed");

    Refund refund = durapay.refunds().createRefund(outTradeNo, new CreateRefundRequest().outRequestNo(outTradeNo + "-r1").amount("8.88").reason("one cup less"));
    assertEquals("8.88", refund.getAmount());
    Refund settled = waitFor("refund " + outTradeNo + "-r1 to succeed", () -> {
      Refund now = durapay.refunds().getRefund(outTradeNo, outTradeNo + "-r1");
      return now.getStatus() == Refund.StatusEnum.SUCCEEDED ? now : null;
    });
    assertEquals("8.88", settled.getAmount());
    Payment partlyRefunded = waitFor(outTradeNo + " to show the refund", () -> {
      Payment now = durapay.payments().getPayment(outTradeNo);
      return "8.88".equals(now.getRefundedAmount()) ? now : null;
    });
    assertEquals(PaymentStatus.PARTIALLY_REFUNDED, partlyRefunded.getStatus());

    // More than is left to refund: a typed conflict.
    ConflictException tooMuch = assertThrows(ConflictException.class, () ->
        durapay.refunds().createRefund(outTradeNo, new CreateRefundRequest().outRequestNo(outTradeNo + "-r2").amount("80.01")));
    assertEquals("REFUND_EXCEEDS_REFUNDABLE", tooMuch.getCode());
    assertEquals(409, tooMuch.getStatus());

    // The payment.paid webhook, verified over the raw bytes with the merchant's webhook secret.
    WebhookEvent paidEvent = null;
    Instant deadline = Instant.now().plus(DEADLINE);
    while (paidEvent == null) {
      long left = Duration.between(Instant.now(), deadline).toMillis();
      Delivery delivery = left > 0 ? deliveries.poll(left, TimeUnit.MILLISECONDS) : null;
      if (delivery == null) throw new AssertionError("no payment.paid webhook within " + DEADLINE.toSeconds() + " s");
      WebhookEvent event = WebhookVerifier.verify(env("DURAPAY_WEBHOOK_SECRET"), delivery.body(), delivery.signature());
      assertEquals(event.id(), delivery.eventId());
      assertEquals("2026-12-07", event.apiVersion());
      if (event.type().equals("payment.paid")) paidEvent = event;
      // A body changed by one byte does not verify.
      byte[] tampered = delivery.body().clone();
      tampered[tampered.length - 2] ^= 1;
      assertThrows(WebhookSignatureException.class, () -> WebhookVerifier.verify(env("DURAPAY_WEBHOOK_SECRET"), tampered, delivery.signature()));
    }
    assertEquals(outTradeNo, paidEvent.data().path("outTradeNo").asText());
    assertEquals("PAID", paidEvent.data().path("status").asText());
  }

  @Test
  void errorAnswersAreTypedExceptions() {
    NotFoundException missing = assertThrows(NotFoundException.class, () -> durapay.payments().getPayment("no-such-order-" + RequestSigner.newNonce()));
    assertEquals(404, missing.getStatus());
    assertEquals("NOT_FOUND", missing.getCode());
    // requestId (the error's, else the Request-Id header) is optional until the API sends it everywhere.

    InvalidRequestException invalid = assertThrows(InvalidRequestException.class, () ->
        durapay.payments().createPayment(new CreatePaymentRequest().outTradeNo("java-bad-amount").amount("12.5").subject("tea")));
    assertEquals(400, invalid.getStatus());
    assertEquals("INVALID_REQUEST", invalid.getCode());
    assertTrue(invalid.getDetails().isArray(), "details lists the fields");

    Durapay wrongSecret = new Durapay(env("DURAPAY_API_URL"), env("DURAPAY_MERCHANT_ID"), "not-the-secret");
    AuthenticationException unsigned = assertThrows(AuthenticationException.class, () -> wrongSecret.payments().getPayment("anything"));
    assertEquals(401, unsigned.getStatus());
    assertEquals("AUTH_BAD_SIGNATURE", unsigned.getCode());
  }
}
