package dev.durapay;

import java.io.ByteArrayOutputStream;
import java.net.URI;
import java.net.http.HttpRequest;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.time.Clock;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Flow;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Consumer;
import java.util.function.Supplier;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/**
 * Signs durapay merchant API requests, byte for byte as the server checks them. Every /v1 request
 * carries {@code Durapay-Merchant}, {@code Durapay-Timestamp} (unix seconds), {@code Durapay-Nonce}
 * (32 hex characters from {@link SecureRandom}, never reused) and {@code Durapay-Signature}:
 * {@code v1=} + hex HMAC-SHA256(secret, S), where S = METHOD + "\n" + PATH_AND_QUERY (exactly as
 * sent) + "\n" + TIMESTAMP + "\n" + NONCE + "\n" + hex(sha256(raw body bytes)).
 *
 * <p>As a {@code Consumer<HttpRequest.Builder>} it is the generated client's request interceptor: it
 * reads the method, the URI and the body bytes the request will send, and sets the four headers.
 */
public final class RequestSigner implements Consumer<HttpRequest.Builder> {
  public static final String MERCHANT_HEADER = "Durapay-Merchant";
  public static final String TIMESTAMP_HEADER = "Durapay-Timestamp";
  public static final String NONCE_HEADER = "Durapay-Nonce";
  public static final String SIGNATURE_HEADER = "Durapay-Signature";

  private static final SecureRandom RANDOM = new SecureRandom();
  private static final char[] HEX = "0123456789abcdef".toCharArray();

  private final String merchantId;
  private final byte[] secret;
  private final Clock clock;
  private final Supplier<String> nonces;

  public RequestSigner(String merchantId, String secret) {
    this(merchantId, secret, Clock.systemUTC(), RequestSigner::newNonce);
  }

  /** With a clock and nonces of the caller's (tests: fixed ones, to check against the vectors). */
  RequestSigner(String merchantId, String secret, Clock clock, Supplier<String> nonces) {
    this.merchantId = Objects.requireNonNull(merchantId, "merchantId");
    this.secret = Objects.requireNonNull(secret, "secret").getBytes(StandardCharsets.UTF_8);
    this.clock = Objects.requireNonNull(clock, "clock");
    this.nonces = Objects.requireNonNull(nonces, "nonces");
  }

  /** 32 lowercase hex characters: 16 bytes from SecureRandom. */
  public static String newNonce() {
    byte[] bytes = new byte[16];
    RANDOM.nextBytes(bytes);
    return hex(bytes);
  }

  /** S: method (upper case), path and query, timestamp, nonce and the body's SHA-256, joined by "\n". */
  public static String stringToSign(String method, String pathWithQuery, String timestamp, String nonce, byte[] body) {
    return String.join("\n", method.toUpperCase(java.util.Locale.ROOT), pathWithQuery, timestamp, nonce, sha256Hex(body == null ? new byte[0] : body));
  }

  /** The Durapay-Signature value: "v1=" + hex HMAC-SHA256(secret, S). */
  public static String signature(String secret, String method, String pathWithQuery, String timestamp, String nonce, byte[] body) {
    return "v1=" + hmacSha256Hex(secret.getBytes(StandardCharsets.UTF_8), stringToSign(method, pathWithQuery, timestamp, nonce, body).getBytes(StandardCharsets.UTF_8));
  }

  /** The four headers of one request, in the order they are documented. */
  public Map<String, String> headers(String method, String pathWithQuery, byte[] body) {
    String timestamp = Long.toString(clock.instant().getEpochSecond());
    String nonce = nonces.get();
    Map<String, String> headers = new LinkedHashMap<>();
    headers.put(MERCHANT_HEADER, merchantId);
    headers.put(TIMESTAMP_HEADER, timestamp);
    headers.put(NONCE_HEADER, nonce);
    headers.put(SIGNATURE_HEADER, "v1=" + hmacSha256Hex(secret, stringToSign(method, pathWithQuery, timestamp, nonce, body).getBytes(StandardCharsets.UTF_8)));
    return headers;
  }

  /** Signs the request the builder holds now: call it last, once its URI, method and body are set. */
  @Override
  public void accept(HttpRequest.Builder builder) {
    HttpRequest request = builder.build();
    byte[] body = request.bodyPublisher().map(RequestSigner::bodyBytes).orElse(new byte[0]);
    headers(request.method(), pathWithQueryAsSent(request.uri()), body).forEach(builder::setHeader);
  }

  /**
   * The request target java.net.http sends for this URI: the raw (still percent-encoded) path, "/"
   * when empty, then "?" and the raw query when there is one, with any non-ASCII character
   * percent-encoded as UTF-8 (as the JDK's HTTP client does before writing it).
   */
  public static String pathWithQueryAsSent(URI uri) {
    String path = uri.getRawPath();
    if (path == null || path.isEmpty()) path = "/";
    String query = uri.getRawQuery();
    String target = query == null || query.isEmpty() ? path : path + "?" + query;
    StringBuilder out = new StringBuilder(target.length());
    for (int i = 0; i < target.length(); i++) {
      char c = target.charAt(i);
      if (c < 0x80) {
        out.append(c);
        continue;
      }
      int end = Character.isHighSurrogate(c) && i + 1 < target.length() ? i + 2 : i + 1;
      for (byte b : target.substring(i, end).getBytes(StandardCharsets.UTF_8)) {
        out.append('%').append(Character.toUpperCase(HEX[(b >> 4) & 0xf])).append(Character.toUpperCase(HEX[b & 0xf]));
      }
      i = end - 1;
    }
    return out.toString();
  }

  /**
   * The bytes a body publisher sends. The generated client's publishers (byte arrays, no body) can
   * be read again, so reading them here does not take anything from what is sent.
   */
  static byte[] bodyBytes(HttpRequest.BodyPublisher publisher) {
    if (publisher.contentLength() == 0) return new byte[0];
    CompletableFuture<byte[]> done = new CompletableFuture<>();
    publisher.subscribe(new Flow.Subscriber<ByteBuffer>() {
      private final ByteArrayOutputStream bytes = new ByteArrayOutputStream();

      @Override
      public void onSubscribe(Flow.Subscription subscription) {
        subscription.request(Long.MAX_VALUE);
      }

      @Override
      public void onNext(ByteBuffer item) {
        byte[] chunk = new byte[item.remaining()];
        item.get(chunk);
        bytes.writeBytes(chunk);
      }

      @Override
      public void onError(Throwable throwable) {
        done.completeExceptionally(throwable);
      }

      @Override
      public void onComplete() {
        done.complete(bytes.toByteArray());
      }
    });
    try {
      return done.get(30, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted while reading the request body to sign it", e);
    } catch (ExecutionException | TimeoutException e) {
      throw new IllegalStateException("the request body could not be read to sign it", e);
    }
  }

  static String sha256Hex(byte[] data) {
    try {
      return hex(MessageDigest.getInstance("SHA-256").digest(data));
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException(e);
    }
  }

  static String hmacSha256Hex(byte[] key, byte[] data) {
    try {
      Mac mac = Mac.getInstance("HmacSHA256");
      mac.init(new SecretKeySpec(key, "HmacSHA256"));
      return hex(mac.doFinal(data));
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException(e);
    }
  }

  static String hex(byte[] bytes) {
    char[] out = new char[bytes.length * 2];
    for (int i = 0; i < bytes.length; i++) {
      out[2 * i] = HEX[(bytes[i] >> 4) & 0xf];
      out[2 * i + 1] = HEX[bytes[i] & 0xf];
    }
    return new String(out);
  }
}
