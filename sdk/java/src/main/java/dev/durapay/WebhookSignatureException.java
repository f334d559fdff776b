package dev.durapay;

/** A webhook that must not be trusted: its signature header was malformed, stale or did not match. */
public class WebhookSignatureException extends RuntimeException {
  /** Why the webhook was refused. */
  public enum Reason {
    /** No header, no t= or no v1= value, or a body that is not an event. */
    MALFORMED,
    /** t is further from now than the tolerance allows. */
    STALE,
    /** No v1 value is the HMAC of this body under any of the secrets. */
    BAD_SIGNATURE
  }

  private final Reason reason;

  public WebhookSignatureException(Reason reason, String message) {
    super(message);
    this.reason = reason;
  }

  public Reason getReason() {
    return reason;
  }
}
