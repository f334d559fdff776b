package durapay

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/durapay/durapay/sdk/go/api"
)

// DefaultWebhookTolerance is how far a webhook's t may be from now, either way, by default.
const DefaultWebhookTolerance = 300 * time.Second

// HeaderEventID is the header that carries a webhook's event id (evt_…).
const HeaderEventID = "Durapay-Event-Id"

// Why VerifyWebhook refused a webhook, for errors.Is.
var (
	// ErrWebhookMalformed: the Durapay-Signature header has no t or no v1 value, or the body is not an event.
	ErrWebhookMalformed = errors.New("durapay: malformed webhook")
	// ErrWebhookStale: t is further from now than the tolerance (an old or replayed delivery, or a skewed clock).
	ErrWebhookStale = errors.New("durapay: stale webhook")
	// ErrWebhookBadSignature: no v1 value is the HMAC of the body under any of the secrets.
	ErrWebhookBadSignature = errors.New("durapay: bad webhook signature")
)

// Event is a webhook's body: {"id", "type", "apiVersion", "created", "data"}.
type Event struct {
	// ID is evt_ and 24 hex characters; the same event delivered again has the same id.
	ID string `json:"id"`
	// Type is e.g. payment.paid, refund.succeeded, ping.
	Type string `json:"type"`
	// APIVersion is the version of the body's shape, e.g. 2026-12-07.
	APIVersion string `json:"apiVersion"`
	// Created is unix seconds.
	Created int64 `json:"created"`
	// Data is the event's data as sent: the payment for payment.* events.
	Data json.RawMessage `json:"data"`
}

// DecodeData decodes the event's data into v.
func (e Event) DecodeData(v any) error { return json.Unmarshal(e.Data, v) }

// Payment is the data of a payment.* event: the payment as it was.
func (e Event) Payment() (*api.Payment, error) {
	var payment api.Payment
	if err := e.DecodeData(&payment); err != nil {
		return nil, fmt.Errorf("durapay: the data of %s is not a payment: %w", e.Type, err)
	}
	return &payment, nil
}

var timestampPattern = regexp.MustCompile(`^\d{1,12}$`)

// parseSignatureHeader reads t=<unix seconds>,v1=<hex>[,v1=<hex>…]; other keys are ignored.
func parseSignatureHeader(header string) (t int64, v1 []string, ok bool) {
	haveT := false
	for _, part := range strings.Split(header, ",") {
		key, value, found := strings.Cut(part, "=")
		if !found {
			continue
		}
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		switch {
		case key == "t" && !haveT && timestampPattern.MatchString(value):
			parsed, err := strconv.ParseInt(value, 10, 64)
			if err == nil {
				t, haveT = parsed, true
			}
		case key == "v1" && value != "":
			v1 = append(v1, value)
		}
	}
	return t, v1, haveT && len(v1) > 0
}

// WebhookSignature is the v1 value of a body at t under secret: hex HMAC-SHA256(secret, t + "." + body).
func WebhookSignature(secret string, rawBody []byte, t int64) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(strconv.FormatInt(t, 10) + "."))
	mac.Write(rawBody)
	return hex.EncodeToString(mac.Sum(nil))
}

// VerifyWebhook checks a webhook and returns its event. secrets: the endpoint's secret(s) (during a
// rotation you may hold the new and the previous one); rawBody: the body bytes exactly as received
// (never re-encoded JSON); header: the Durapay-Signature header; tolerance: how far t may be from
// now (0: DefaultWebhookTolerance); now: the time to check against (zero: time.Now()).
//
// It accepts when t is within the tolerance and any v1 value equals, in constant time, the HMAC of
// the body under any of the secrets. Its errors wrap ErrWebhookMalformed, ErrWebhookStale or
// ErrWebhookBadSignature.
func VerifyWebhook(secrets []string, rawBody []byte, header string, tolerance time.Duration, now time.Time) (Event, error) {
	var usable []string
	for _, secret := range secrets {
		if secret != "" {
			usable = append(usable, secret)
		}
	}
	if len(usable) == 0 {
		return Event{}, errors.New("durapay: VerifyWebhook needs at least one webhook secret")
	}
	if tolerance <= 0 {
		tolerance = DefaultWebhookTolerance
	}
	if now.IsZero() {
		now = time.Now()
	}
	t, v1, ok := parseSignatureHeader(header)
	if !ok {
		return Event{}, fmt.Errorf("%w: the %s header has no t= or no v1= value", ErrWebhookMalformed, HeaderSignature)
	}
	skew := now.Sub(time.Unix(t, 0))
	if skew < 0 {
		skew = -skew
	}
	if skew > tolerance {
		return Event{}, fmt.Errorf("%w: signed at %d, %s from now (tolerance %s)", ErrWebhookStale, t, skew.Round(time.Second), tolerance)
	}
	matched := false
	for _, secret := range usable {
		expected := []byte(WebhookSignature(secret, rawBody, t))
		for _, given := range v1 {
			if hmac.Equal(expected, []byte(given)) {
				matched = true
			}
		}
	}
	if !matched {
		return Event{}, fmt.Errorf("%w: no v1 value matches the body under the secret(s) given", ErrWebhookBadSignature)
	}
	var event Event
	if err := json.Unmarshal(rawBody, &event); err != nil {
		return Event{}, fmt.Errorf("%w: the body is not a JSON event: %v", ErrWebhookMalformed, err)
	}
	if event.ID == "" || event.Type == "" {
		return Event{}, fmt.Errorf("%w: the body has no id or type", ErrWebhookMalformed)
	}
	return event, nil
}

// MaxWebhookBody bounds the body WebhookHandler reads (durapay's events are a few kB).
const MaxWebhookBody = 1 << 20

// WebhookHandler is a net/http handler of webhooks: it reads the raw body, verifies it with
// VerifyWebhook (secrets, default tolerance) and hands the event to handle. It answers 400 to a
// webhook that does not verify, 500 when handle returns an error (durapay sends the event again
// later), 200 otherwise.
func WebhookHandler(secrets []string, handle func(r *http.Request, event Event) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "webhooks are POSTed", http.StatusMethodNotAllowed)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, MaxWebhookBody+1))
		if err != nil || len(body) > MaxWebhookBody {
			http.Error(w, "unreadable or too large body", http.StatusBadRequest)
			return
		}
		event, err := VerifyWebhook(secrets, body, r.Header.Get(HeaderSignature), 0, time.Time{})
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if err := handle(r, event); err != nil {
			http.Error(w, "not handled", http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
}
