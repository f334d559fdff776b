package dev.durapay;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.sun.net.httpserver.HttpServer;
import dev.durapay.client.model.CreatePaymentRequest;
import dev.durapay.client.model.CreateWebhookEndpointRequest;
import dev.durapay.client.model.DeleteWebhookEndpoint200Response;
import dev.durapay.client.model.EventFeed;
import dev.durapay.client.model.EventType;
import dev.durapay.client.model.NewWebhookEndpoint;
import dev.durapay.client.model.Payment;
import dev.durapay.client.model.PaymentStatus;
import dev.durapay.client.model.RotateWebhookEndpointSecret200Response;
import dev.durapay.client.model.RotateWebhookSecretRequest;
import dev.durapay.client.model.TestWebhookEndpoint202Response;
import dev.durapay.client.model.UpdateWebhookEndpointRequest;
import dev.durapay.client.model.WebhookEndpoint;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfEnvironmentVariable;

/** Webhook endpoints and the events feed, against a real engine (as IntegrationTest). */
@EnabledIfEnvironmentVariable(named = "DURAPAY_API_URL", matches = ".+")
class WebhookEndpointsIntegrationTest {
  private static final Duration DEADLINE = Duration.ofSeconds(30);

  record Delivery(byte[] body, String signature, String eventId) {}

  private static final BlockingQueue<Delivery> deliveries = new LinkedBlockingQueue<>();
  private static HttpServer receiver;
  private static String endpointUrl;
  private static Durapay durapay;

  @BeforeAll
  static void start() throws Exception {
    receiver = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
    receiver.createContext("/endpoint", exchange -> {
      byte[] body;
      try (InputStream in = exchange.getRequestBody()) {
        body = in.readAllBytes();
      }
      deliveries.add(new Delivery(body, exchange.getRequestHeaders().getFirst("Durapay-Signature"), exchange.getRequestHeaders().getFirst("Durapay-Event-Id")));
      exchange.sendResponseHeaders(200, -1);
      exchange.close();
    });
    receiver.start();
    endpointUrl = "http://127.0.0.1:" + receiver.getAddress().getPort() + "/endpoint";
    durapay = new Durapay(System.getenv("DURAPAY_API_URL"), System.getenv("DURAPAY_MERCHANT_ID"), System.getenv("DURAPAY_MERCHANT_SECRET"));
  }

  @AfterAll
  static void stop() {
    if (receiver != null) receiver.stop(0);
  }

  /** The delivery of the event `eventId`, skipping others, or fails at the deadline. */
  private static Delivery deliveryOf(String eventId) throws InterruptedException {
    Instant deadline = Instant.now().plus(DEADLINE);
    while (true) {
      long left = Duration.between(Instant.now(), deadline).toMillis();
      Delivery delivery = left > 0 ? deliveries.poll(left, TimeUnit.MILLISECONDS) : null;
      if (delivery == null) throw new AssertionError("no delivery of " + eventId + " within " + DEADLINE.toSeconds() + " s");
      if (eventId.equals(delivery.eventId())) return delivery;
    }
  }

  @Test
  void anEndpointIsTestedWithSignedPingsThroughASecretRotation() throws Exception {
    NewWebhookEndpoint created = durapay.webhookEndpoints().createWebhookEndpoint(new CreateWebhookEndpointRequest()
        .url(URI.create(endpointUrl))
        .events(List.of(CreateWebhookEndpointRequest.EventsEnum.PAYMENT_PAID))
        .description("Java SDK test"));
    String id = created.getId();
    assertTrue(id.matches("we_[0-9a-f]{24}"), id);
    String firstSecret = created.getSecret();
    assertTrue(firstSecret.startsWith("whsec_"), "the secret, shown once");
    assertEquals(Boolean.TRUE, created.getEnabled());

    TestWebhookEndpoint202Response ping = durapay.webhookEndpoints().testWebhookEndpoint(id);
    assertEquals(TestWebhookEndpoint202Response.TypeEnum.PING, ping.getType());
    Delivery firstDelivery = deliveryOf(ping.getId());
    WebhookEvent first = WebhookVerifier.verify(firstSecret, firstDelivery.body(), firstDelivery.signature());
    assertEquals("ping", first.type());
    assertEquals(id, first.data().path("endpointId").asText());

    RotateWebhookEndpointSecret200Response rotated = durapay.webhookEndpoints().rotateWebhookEndpointSecret(id, new RotateWebhookSecretRequest().graceSeconds(3600));
    assertNotNull(rotated.getPreviousSecretExpiresAt());
    assertFalse(rotated.getSecret().equals(firstSecret));
    TestWebhookEndpoint202Response secondPing = durapay.webhookEndpoints().testWebhookEndpoint(id);
    Delivery during = deliveryOf(secondPing.getId());
    // Two v1 values during the grace period: a receiver holding either secret verifies.
    assertEquals(2, during.signature().split("v1=", -1).length - 1, during.signature());
    assertEquals(secondPing.getId(), WebhookVerifier.verify(rotated.getSecret(), during.body(), during.signature()).id());
    assertEquals(secondPing.getId(), WebhookVerifier.verify(firstSecret, during.body(), during.signature()).id());
    assertEquals(secondPing.getId(), WebhookVerifier.verify(List.of(rotated.getSecret(), firstSecret), during.body(), during.signature()).id());

    // A PATCH of `enabled` alone leaves the rest as it was.
    WebhookEndpoint disabled = durapay.webhookEndpoints().updateWebhookEndpoint(id, new UpdateWebhookEndpointRequest().enabled(false));
    assertEquals(Boolean.FALSE, disabled.getEnabled());
    assertEquals(1, disabled.getEvents().size());
    assertEquals("Java SDK test", disabled.getDescription());
    ConflictException refused = assertThrows(ConflictException.class, () -> durapay.webhookEndpoints().testWebhookEndpoint(id));
    assertEquals("ENDPOINT_DISABLED", refused.getCode());

    List<String> delivered = new ArrayList<>();
    durapay.webhookEndpoints().listWebhookDeliveries(id, 10).getDeliveries().forEach(d -> delivered.add(d.getEventId()));
    assertTrue(delivered.containsAll(List.of(ping.getId(), secondPing.getId())), delivered.toString());

    assertEquals(DeleteWebhookEndpoint200Response.DeletedEnum.TRUE, durapay.webhookEndpoints().deleteWebhookEndpoint(id).getDeleted());
    assertThrows(NotFoundException.class, () -> durapay.webhookEndpoints().getWebhookEndpoint(id));
  }

  @Test
  void theEventsFeedLongPollsForAPaidOrder() throws Exception {
    String cursor = durapay.events().listEvents(null, 100, 0).getNextCursor();
    assertNotNull(cursor);
    String outTradeNo = "java-feed-" + RequestSigner.newNonce().substring(0, 10);
    Payment created = durapay.payments().createPayment(new CreatePaymentRequest().outTradeNo(outTradeNo).amount("1.23").subject("tea"));
    HttpResponse<String> paid = HttpClient.newHttpClient().send(
        HttpRequest.newBuilder(URI.create(created.getQrCode() + "/pay")).POST(HttpRequest.BodyPublishers.noBody()).build(),
        HttpResponse.BodyHandlers.ofString());
    assertEquals(200, paid.statusCode(), paid.body());
    Instant deadline = Instant.now().plus(DEADLINE);
    while (true) {
      EventFeed feed = durapay.events().listEvents(cursor, 100, 5);
      boolean found = feed.getEvents().stream().anyMatch(e -> e.getType() == EventType.PAYMENT_PAID && outTradeNo.equals(e.getData().get("outTradeNo")));
      if (found) break;
      if (Instant.now().isAfter(deadline)) throw new AssertionError("no payment.paid of " + outTradeNo + " in the feed");
      cursor = feed.getNextCursor();
    }
    assertEquals(PaymentStatus.PAID, durapay.payments().getPayment(outTradeNo).getStatus());
  }
}
