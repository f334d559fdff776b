package durapay

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/durapay/durapay/sdk/go/api"
)

type vectors struct {
	Requests []struct {
		Name          string `json:"name"`
		Secret        string `json:"secret"`
		Method        string `json:"method"`
		PathWithQuery string `json:"pathWithQuery"`
		Timestamp     string `json:"timestamp"`
		Nonce         string `json:"nonce"`
		Body          string `json:"body"`
		BodySha256    string `json:"bodySha256"`
		StringToSign  string `json:"stringToSign"`
		Signature     string `json:"signature"`
	} `json:"requests"`
	Webhooks []struct {
		Name             string `json:"name"`
		Body             string `json:"body"`
		Header           string `json:"header"`
		Secret           string `json:"secret"`
		Now              int64  `json:"now"`
		ToleranceSeconds int64  `json:"toleranceSeconds"`
		Valid            bool   `json:"valid"`
	} `json:"webhooks"`
}

// The shared vectors every SDK and the server check against.
func loadVectors(t *testing.T) vectors {
	t.Helper()
	raw, err := os.ReadFile("../signing-vectors.json")
	if err != nil {
		t.Fatalf("reading the shared vectors: %v", err)
	}
	var v vectors
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("parsing the shared vectors: %v", err)
	}
	if len(v.Requests) == 0 || len(v.Webhooks) == 0 {
		t.Fatalf("the vectors file has %d request and %d webhook vectors", len(v.Requests), len(v.Webhooks))
	}
	return v
}

func TestRequestVectors(t *testing.T) {
	for _, vector := range loadVectors(t).Requests {
		t.Run(vector.Name, func(t *testing.T) {
			body := []byte(vector.Body)
			sum := sha256.Sum256(body)
			if got := hex.EncodeToString(sum[:]); got != vector.BodySha256 {
				t.Errorf("body sha256 %s, want %s", got, vector.BodySha256)
			}
			if got := StringToSign(vector.Method, vector.PathWithQuery, vector.Timestamp, vector.Nonce, body); got != vector.StringToSign {
				t.Errorf("string to sign %q, want %q", got, vector.StringToSign)
			}
			if got := RequestSignature(vector.Secret, vector.Method, vector.PathWithQuery, vector.Timestamp, vector.Nonce, body); got != vector.Signature {
				t.Errorf("signature %s, want %s", got, vector.Signature)
			}

			// The signer on a request for that URL: the same headers, the body still there to send.
			var reader io.Reader
			if vector.Body != "" {
				reader = strings.NewReader(vector.Body)
			}
			req, err := http.NewRequest(vector.Method, "http://api.example.test"+vector.PathWithQuery, reader)
			if err != nil {
				t.Fatal(err)
			}
			seconds, _ := strconv.ParseInt(vector.Timestamp, 10, 64)
			signer := NewSigner("mvector001", vector.Secret)
			signer.Now = func() time.Time { return time.Unix(seconds, 0) }
			signer.Nonce = func() (string, error) { return vector.Nonce, nil }
			if err := signer.RequestEditor()(context.Background(), req); err != nil {
				t.Fatal(err)
			}
			want := map[string]string{HeaderMerchant: "mvector001", HeaderTimestamp: vector.Timestamp, HeaderNonce: vector.Nonce, HeaderSignature: vector.Signature}
			for name, value := range want {
				if got := req.Header.Get(name); got != value {
					t.Errorf("%s: %q, want %q", name, got, value)
				}
			}
			if req.Body != nil {
				sent, _ := io.ReadAll(req.Body)
				if string(sent) != vector.Body {
					t.Errorf("the body after signing is %q, want %q", sent, vector.Body)
				}
				again, _ := req.GetBody()
				resent, _ := io.ReadAll(again)
				if string(resent) != vector.Body {
					t.Errorf("GetBody gives %q, want %q", resent, vector.Body)
				}
			}
		})
	}
}

func TestWebhookVectors(t *testing.T) {
	for _, vector := range loadVectors(t).Webhooks {
		t.Run(vector.Name, func(t *testing.T) {
			tolerance := time.Duration(vector.ToleranceSeconds) * time.Second
			event, err := VerifyWebhook([]string{vector.Secret}, []byte(vector.Body), vector.Header, tolerance, time.Unix(vector.Now, 0))
			if vector.Valid {
				if err != nil {
					t.Fatalf("refused a valid webhook: %v", err)
				}
				var want Event
				if err := json.Unmarshal([]byte(vector.Body), &want); err != nil {
					t.Fatal(err)
				}
				if event.ID != want.ID || event.Type != want.Type || event.APIVersion != want.APIVersion || event.Created != want.Created || !bytes.Equal(event.Data, want.Data) {
					t.Errorf("event %+v, want %+v", event, want)
				}
			} else if err == nil {
				t.Fatal("accepted an invalid webhook")
			} else if !errors.Is(err, ErrWebhookMalformed) && !errors.Is(err, ErrWebhookStale) && !errors.Is(err, ErrWebhookBadSignature) {
				t.Errorf("the error %v is none of malformed, stale, bad signature", err)
			}
			// Among other secrets (a receiver holding several): the same outcome.
			_, errAmong := VerifyWebhook([]string{"whsec_unrelated", vector.Secret}, []byte(vector.Body), vector.Header, tolerance, time.Unix(vector.Now, 0))
			if (errAmong == nil) != vector.Valid {
				t.Errorf("with another secret beside it: %v, want valid=%v", errAmong, vector.Valid)
			}
		})
	}
}

func TestWebhookErrorsSayWhy(t *testing.T) {
	body := []byte(`{"id":"evt_0123456789abcdef01234567","type":"payment.paid","apiVersion":"2026-12-07","created":1765065600,"data":{}}`)
	at := int64(1765065600)
	header := "t=1765065600,v0=ignored,v1=" + WebhookSignature("whsec_a", body, at)
	now := time.Unix(at, 0)
	if _, err := VerifyWebhook([]string{"whsec_a"}, body, header, 0, now); err != nil {
		t.Fatalf("valid: %v", err)
	}
	cases := []struct {
		name   string
		header string
		now    time.Time
		want   error
	}{
		{"no t", "v1=" + WebhookSignature("whsec_a", body, at), now, ErrWebhookMalformed},
		{"no v1", "t=1765065600,v0=abc", now, ErrWebhookMalformed},
		{"garbage", "nonsense", now, ErrWebhookMalformed},
		{"default tolerance is 300 s: 301 s later", header, now.Add(301 * time.Second), ErrWebhookStale},
		{"other secret", "t=1765065600,v1=" + WebhookSignature("whsec_b", body, at), now, ErrWebhookBadSignature},
		{"upper-case hex is not what was sent", "t=1765065600,v1=" + strings.ToUpper(WebhookSignature("whsec_a", body, at)), now, ErrWebhookBadSignature},
	}
	for _, c := range cases {
		if _, err := VerifyWebhook([]string{"whsec_a"}, body, c.header, 0, c.now); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	if _, err := VerifyWebhook([]string{"whsec_a"}, body, header, 0, now.Add(300*time.Second)); err != nil {
		t.Errorf("300 s later is within the default tolerance: %v", err)
	}
	if _, err := VerifyWebhook(nil, body, header, 0, now); err == nil {
		t.Error("verified with no secret")
	}
}

// The generated client through NewClient: what arrives at the server is what was signed (path with
// an escaped segment and a query, the JSON body bytes), and error answers become *Error.
func TestClientSignsWhatItSends(t *testing.T) {
	const merchant, secret = "mclient001", "sk_client_secret"
	type received struct {
		method, uri string
		body        []byte
		header      http.Header
	}
	var got []received
	answer := func(w http.ResponseWriter, r *http.Request) {}
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got = append(got, received{r.Method, r.RequestURI, body, r.Header.Clone()})
		answer(w, r)
	}))
	defer server.Close()
	client, err := NewClient(server.URL+"/", merchant, secret)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	check := func(r received) {
		t.Helper()
		want := RequestSignature(secret, r.method, r.uri, r.header.Get(HeaderTimestamp), r.header.Get(HeaderNonce), r.body)
		if r.header.Get(HeaderMerchant) != merchant || r.header.Get(HeaderSignature) != want {
			t.Errorf("%s %s: the signature does not match what arrived (merchant %q)", r.method, r.uri, r.header.Get(HeaderMerchant))
		}
		ts, _ := strconv.ParseInt(r.header.Get(HeaderTimestamp), 10, 64)
		if d := time.Since(time.Unix(ts, 0)); d < -5*time.Second || d > 5*time.Second {
			t.Errorf("timestamp %d is not now", ts)
		}
		if n := r.header.Get(HeaderNonce); len(n) != 32 || strings.Trim(n, "0123456789abcdef") != "" {
			t.Errorf("nonce %q is not 32 hex characters", n)
		}
	}

	answer = func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{"outRequestNo":"r-1","amount":"1.00","status":"SUCCEEDED"}`))
	}
	if _, err := client.CreateRefundWithResponse(ctx, "order/7", api.CreateRefundRequest{OutRequestNo: "r-1", Amount: "1.00"}); err != nil {
		t.Fatal(err)
	}
	if got[0].uri != "/v1/payments/order%2F7/refunds" || !bytes.Contains(got[0].body, []byte(`"outRequestNo":"r-1"`)) {
		t.Errorf("sent %s %s", got[0].uri, got[0].body)
	}
	check(got[0])

	answer = func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"payments":[],"nextCursor":null}`))
	}
	limit := 5
	status := api.ListPaymentsParamsStatusPAID
	if _, err := client.ListPaymentsWithResponse(ctx, &api.ListPaymentsParams{Status: &status, Limit: &limit}); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(got[1].uri, "/v1/payments?") || len(got[1].body) != 0 {
		t.Errorf("sent %s with body %q", got[1].uri, got[1].body)
	}
	check(got[1])
	if got[0].header.Get(HeaderNonce) == got[1].header.Get(HeaderNonce) {
		t.Error("two requests with one nonce")
	}

	answers := []struct {
		status int
		header string
		body   string
		kind   error
		code   string
	}{
		{401, "", `{"error":{"code":"AUTH_BAD_SIGNATURE","message":"bad","details":null}}`, ErrAuthentication, "AUTH_BAD_SIGNATURE"},
		{400, "", `{"error":{"code":"INVALID_REQUEST","message":"amount","details":[{"field":"amount","rule":"pattern"}]}}`, ErrInvalidRequest, "INVALID_REQUEST"},
		{413, "", `{"error":{"code":"BAD_REQUEST","message":"too large","details":null}}`, ErrInvalidRequest, "BAD_REQUEST"},
		{415, "", `{"error":{"code":"UNSUPPORTED_MEDIA_TYPE","message":"json only","details":null}}`, ErrInvalidRequest, "UNSUPPORTED_MEDIA_TYPE"},
		{404, "", `{"error":{"code":"NOT_FOUND","message":"no such order","details":null,"requestId":"req_body"}}`, ErrNotFound, "NOT_FOUND"},
		{409, "", `{"error":{"code":"REFUND_EXCEEDS_REFUNDABLE","message":"too much","details":{"refundable":"0.50"}}}`, ErrConflict, "REFUND_EXCEEDS_REFUNDABLE"},
		{429, "7", `{"error":{"code":"RATE_LIMITED","message":"slow down","details":{}}}`, ErrRateLimited, "RATE_LIMITED"},
		{503, "", `{"error":{"code":"TRY_AGAIN","message":"later","details":null}}`, ErrTryAgain, "TRY_AGAIN"},
		{502, "", `<html>bad gateway</html>`, nil, ""},
	}
	kinds := []error{ErrAuthentication, ErrInvalidRequest, ErrNotFound, ErrConflict, ErrRateLimited, ErrTryAgain}
	for _, a := range answers {
		answer = func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Request-Id", "req_header")
			if a.header != "" {
				w.Header().Set("Retry-After", a.header)
			}
			w.WriteHeader(a.status)
			_, _ = w.Write([]byte(a.body))
		}
		resp, err := client.GetPaymentWithResponse(ctx, "order-1")
		apiErr, ok := AsError(err)
		if resp != nil || !ok {
			t.Fatalf("HTTP %d: resp %v, err %v", a.status, resp, err)
		}
		if apiErr.Status != a.status || apiErr.Code != a.code {
			t.Errorf("HTTP %d: %+v", a.status, apiErr)
		}
		for _, kind := range kinds {
			if errors.Is(err, kind) != (kind == a.kind) {
				t.Errorf("HTTP %d: errors.Is(err, %v) = %v", a.status, kind, errors.Is(err, kind))
			}
		}
		wantID := "req_header"
		if a.status == 404 {
			wantID = "req_body"
		}
		if apiErr.RequestID != wantID {
			t.Errorf("HTTP %d: request id %q, want %q", a.status, apiErr.RequestID, wantID)
		}
		if a.status == 429 && apiErr.RetryAfter != 7*time.Second {
			t.Errorf("Retry-After: %v", apiErr.RetryAfter)
		}
		if a.status == 409 {
			var details struct{ Refundable string }
			if err := apiErr.DecodeDetails(&details); err != nil || details.Refundable != "0.50" {
				t.Errorf("details %s: %v", apiErr.Details, err)
			}
		}
		if a.status == 502 && !strings.Contains(apiErr.Message, "bad gateway") {
			t.Errorf("message %q", apiErr.Message)
		}
	}

	// With WithErrorResponses the generated response keeps the error answer.
	raw, err := NewClient(server.URL, merchant, secret, WithErrorResponses())
	if err != nil {
		t.Fatal(err)
	}
	answer = func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(404)
		_, _ = w.Write([]byte(`{"error":{"code":"NOT_FOUND","message":"no such order","details":null}}`))
	}
	resp, err := raw.GetPaymentWithResponse(ctx, "order-1")
	if err != nil || resp.JSON404 == nil {
		t.Fatalf("resp %+v, err %v", resp, err)
	}
	if apiErr := ErrorFromResponse(resp.HTTPResponse, resp.Body); !IsNotFound(apiErr) {
		t.Errorf("ErrorFromResponse: %v", apiErr)
	}
}

func TestNewClientRefusesBadArguments(t *testing.T) {
	for _, args := range [][3]string{{"http://x", "", "s"}, {"http://x", "m", ""}, {"ftp://x", "m", "s"}, {"not a url", "m", "s"}} {
		if _, err := NewClient(args[0], args[1], args[2]); err == nil {
			t.Errorf("NewClient%q gave no error", args)
		}
	}
}

func TestWebhookHandler(t *testing.T) {
	body := []byte(`{"id":"evt_0123456789abcdef01234567","type":"payment.paid","apiVersion":"2026-12-07","created":1765065600,"data":{"outTradeNo":"order-1"}}`)
	var handled []Event
	fail := false
	handler := WebhookHandler([]string{"whsec_old", "whsec_new"}, func(_ *http.Request, event Event) error {
		if fail {
			return errors.New("database down")
		}
		handled = append(handled, event)
		return nil
	})
	post := func(header string) int {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, "/hooks", bytes.NewReader(body))
		req.Header.Set(HeaderSignature, header)
		handler.ServeHTTP(rec, req)
		return rec.Code
	}
	now := time.Now().Unix()
	good := "t=" + strconv.FormatInt(now, 10) + ",v1=" + WebhookSignature("whsec_new", body, now)
	if code := post(good); code != 200 || len(handled) != 1 || handled[0].ID != "evt_0123456789abcdef01234567" {
		t.Fatalf("a good webhook: HTTP %d, handled %v", code, handled)
	}
	if code := post("t=" + strconv.FormatInt(now, 10) + ",v1=" + WebhookSignature("whsec_other", body, now)); code != 400 {
		t.Errorf("a bad signature: HTTP %d", code)
	}
	old := now - 301
	if code := post("t=" + strconv.FormatInt(old, 10) + ",v1=" + WebhookSignature("whsec_new", body, old)); code != 400 {
		t.Errorf("a stale webhook: HTTP %d", code)
	}
	fail = true
	if code := post(good); code != 500 {
		t.Errorf("a handler error: HTTP %d", code)
	}
	if len(handled) != 1 {
		t.Errorf("handled %d events", len(handled))
	}
}
