package dev.durapay;

import dev.durapay.client.ApiClient;
import dev.durapay.client.api.EventsApi;
import dev.durapay.client.api.PaymentsApi;
import dev.durapay.client.api.RefundsApi;
import dev.durapay.client.api.WebhookEndpointsApi;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.http.HttpResponse;
import java.util.Objects;

/**
 * The durapay merchant API: the generated client's APIs, every request signed with the merchant's
 * API secret, every error answer thrown as a {@link DurapayException} (unchecked; its subclasses
 * name the kinds). The generated methods still declare the client's checked {@code ApiException},
 * which is left for what is not an answer: the connection failed, or a 2xx body could not be read.
 *
 * <pre>{@code
 * Durapay durapay = new Durapay("https://pay.example.com", "m123456789", System.getenv("DURAPAY_MERCHANT_SECRET"));
 * Payment payment = durapay.payments().createPayment(new CreatePaymentRequest().outTradeNo("order-1001").amount("88.88").subject("Coffee"));
 * }</pre>
 */
public final class Durapay {
  private final ApiClient apiClient;
  private final PaymentsApi payments;
  private final RefundsApi refunds;
  private final EventsApi events;
  private final WebhookEndpointsApi webhookEndpoints;

  /**
   * @param apiUrl the engine's base URL, e.g. https://pay.example.com (no trailing /v1)
   * @param merchantId the merchant id, m followed by 9 lowercase letters or digits
   * @param secret the merchant's API secret
   */
  public Durapay(String apiUrl, String merchantId, String secret) {
    this(new ApiClient(), apiUrl, merchantId, secret);
  }

  /** With an ApiClient of the caller's (its HTTP client, timeouts, object mapper); its interceptors are replaced. */
  public Durapay(ApiClient apiClient, String apiUrl, String merchantId, String secret) {
    Objects.requireNonNull(apiUrl, "apiUrl");
    this.apiClient = Objects.requireNonNull(apiClient, "apiClient");
    apiClient.updateBaseUri(apiUrl.replaceAll("/+$", ""));
    apiClient.setRequestInterceptor(new RequestSigner(merchantId, secret));
    apiClient.setResponseInterceptor(Durapay::throwOnError);
    apiClient.setAsyncResponseInterceptor(Durapay::throwOnError);
    this.payments = new PaymentsApi(apiClient);
    this.refunds = new RefundsApi(apiClient);
    this.events = new EventsApi(apiClient);
    this.webhookEndpoints = new WebhookEndpointsApi(apiClient);
  }

  /** Orders: create (QR or barcode), get, list, cancel. */
  public PaymentsApi payments() {
    return payments;
  }

  /** Refunds of paid orders. */
  public RefundsApi refunds() {
    return refunds;
  }

  /** The events feed (long poll, no public URL needed); an order's events and their deliveries; resending one. */
  public EventsApi events() {
    return events;
  }

  /** Webhook endpoints: create (the secret is shown once), list, update, delete, rotate the secret, test, deliveries. */
  public WebhookEndpointsApi webhookEndpoints() {
    return webhookEndpoints;
  }

  /** The generated client underneath, configured to sign; for APIs the facade does not name yet. */
  public ApiClient apiClient() {
    return apiClient;
  }

  /** The response interceptor: any answer but a 2xx becomes its typed exception. */
  static void throwOnError(HttpResponse<InputStream> response) {
    if (response.statusCode() / 100 == 2) return;
    byte[] body;
    try (InputStream in = response.body()) {
      body = in == null ? new byte[0] : in.readAllBytes();
    } catch (IOException e) {
      throw new UncheckedIOException("reading the error answer of HTTP " + response.statusCode(), e);
    }
    throw DurapayException.fromResponse(response.statusCode(), response.headers(), body);
  }
}
