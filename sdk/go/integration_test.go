package durapay

// Integration tests against a running durapay (test/sdk-go.test.ts starts one and sets the
// environment): they run only when DURAPAY_API_URL is set, and then need DURAPAY_MERCHANT_ID,
// DURAPAY_MERCHANT_SECRET and DURAPAY_WEBHOOK_SECRET. The engine must be able to post webhooks to
// 127.0.0.1 (WEBHOOK_PRIVATE_TARGETS=allow) and its Alipay must be the simulator (the QR code is
// paid with POST <qrCode>/pay).

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/durapay/durapay/sdk/go/api"
)

type integration struct {
	apiURL, merchantID, secret, webhookSecret string
}

func integrationEnv(t *testing.T) integration {
	t.Helper()
	env := integration{
		apiURL:        os.Getenv("DURAPAY_API_URL"),
		merchantID:    os.Getenv("DURAPAY_MERCHANT_ID"),
		secret:        os.Getenv("DURAPAY_MERCHANT_SECRET"),
		webhookSecret: os.Getenv("DURAPAY_WEBHOOK_SECRET"),
	}
	if env.apiURL == "" {
		t.Skip("integration: DURAPAY_API_URL is not set")
	}
	if env.merchantID == "" || env.secret == "" || env.webhookSecret == "" {
		t.Fatal("integration: DURAPAY_API_URL is set, so DURAPAY_MERCHANT_ID, DURAPAY_MERCHANT_SECRET and DURAPAY_WEBHOOK_SECRET must be too")
	}
	return env
}

func (env integration) client(t *testing.T) *Client {
	t.Helper()
	client, err := NewClient(env.apiURL, env.merchantID, env.secret)
	if err != nil {
		t.Fatal(err)
	}
	return client
}

func uniqueNo(label string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return label + "-" + hex.EncodeToString(b[:])
}

// A webhook as it arrived at the receiver.
type delivery struct {
	header  http.Header
	rawBody []byte
}

// receiver is a webhook receiver on 127.0.0.1 that answers 200 and hands over every delivery.
func receiver(t *testing.T) (url string, deliveries <-chan delivery) {
	t.Helper()
	ch := make(chan delivery, 64)
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "unreadable", http.StatusBadRequest)
			return
		}
		select {
		case ch <- delivery{header: r.Header.Clone(), rawBody: body}:
		default:
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(server.Close)
	return server.URL, ch
}

// awaitEvent waits (up to the context's deadline) for a delivery that verifies with secrets and is
// of type eventType for outTradeNo (any order when outTradeNo is empty); it fails the test on a
// delivery that does not verify.
func awaitEvent(ctx context.Context, t *testing.T, deliveries <-chan delivery, secrets []string, eventType, outTradeNo string) (Event, delivery) {
	t.Helper()
	for {
		select {
		case <-ctx.Done():
			t.Fatalf("no verified %s webhook for %q before the deadline", eventType, outTradeNo)
		case d := <-deliveries:
			if d.header.Get("Content-Type") != "application/json" {
				t.Errorf("webhook Content-Type %q", d.header.Get("Content-Type"))
			}
			event, err := VerifyWebhook(secrets, d.rawBody, d.header.Get(HeaderSignature), 0, time.Time{})
			if err != nil {
				t.Fatalf("a webhook did not verify: %v (header %q)", err, d.header.Get(HeaderSignature))
			}
			if d.header.Get(HeaderEventID) != event.ID {
				t.Errorf("%s header %q, body id %q", HeaderEventID, d.header.Get(HeaderEventID), event.ID)
			}
			if event.Type != eventType {
				continue
			}
			if outTradeNo != "" {
				var data struct {
					OutTradeNo string `json:"outTradeNo"`
				}
				if err := event.DecodeData(&data); err != nil || data.OutTradeNo != outTradeNo {
					continue
				}
			}
			return event, d
		}
	}
}

// waitForStatus polls the payment until it has the status, up to the context's deadline.
func waitForStatus(ctx context.Context, t *testing.T, client *Client, outTradeNo string, want api.PaymentStatus) *api.Payment {
	t.Helper()
	ticker := time.NewTicker(100 * time.Millisecond)
	defer ticker.Stop()
	last := "no answer"
	for {
		resp, err := client.GetPaymentWithResponse(ctx, outTradeNo)
		switch {
		case err != nil:
			last = err.Error()
		case resp.JSON200 == nil:
			last = fmt.Sprintf("HTTP %d without a payment", resp.StatusCode())
		case resp.JSON200.Status == want:
			return resp.JSON200
		default:
			last = string(resp.JSON200.Status)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s did not reach %s before the deadline (last: %s)", outTradeNo, want, last)
		case <-ticker.C:
		}
	}
}

// createPaidOrder creates a QR order of amount that notifies notifyURL and pays it as the buyer
// through the simulator, then waits until the engine has it PAID.
func createPaidOrder(ctx context.Context, t *testing.T, client *Client, amount, notifyURL string) *api.Payment {
	t.Helper()
	outTradeNo := uniqueNo("go-sdk")
	request := api.CreatePaymentRequest{OutTradeNo: outTradeNo, Amount: amount, Subject: "Go SDK 测试 tea"}
	if notifyURL != "" {
		request.NotifyUrl = &notifyURL
	}
	created, err := client.CreatePaymentWithResponse(ctx, request)
	if err != nil {
		t.Fatalf("create %s: %v", outTradeNo, err)
	}
	payment := created.JSON201
	if payment == nil || payment.OutTradeNo != outTradeNo || payment.Amount != amount || payment.Status != api.PaymentStatusAWAITINGPAYMENT {
		t.Fatalf("create answered HTTP %d: %s", created.StatusCode(), created.Body)
	}
	if payment.QrCode == nil || !strings.HasPrefix(*payment.QrCode, "http") {
		t.Fatalf("the order has no simulator QR code: %s", created.Body)
	}
	// The buyer scans and pays, holding only the QR code.
	pay, err := http.NewRequestWithContext(ctx, http.MethodPost, *payment.QrCode+"/pay", nil)
	if err != nil {
		t.Fatal(err)
	}
	paid, err := http.DefaultClient.Do(pay)
	if err != nil {
		t.Fatalf("paying %s: %v", *payment.QrCode, err)
	}
	body, _ := io.ReadAll(paid.Body)
	paid.Body.Close()
	if paid.StatusCode != http.StatusOK {
		t.Fatalf("the simulator refused the payment: HTTP %d %s", paid.StatusCode, body)
	}
	return waitForStatus(ctx, t, client, outTradeNo, api.PaymentStatusPAID)
}

func TestIntegrationPayRefundAndWebhook(t *testing.T) {
	env := integrationEnv(t)
	client := env.client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	hookURL, deliveries := receiver(t)

	payment := createPaidOrder(ctx, t, client, "2.00", hookURL+"/durapay/webhooks")
	if payment.PaidAmount == nil || *payment.PaidAmount != "2.00" || payment.PaidAt == nil {
		t.Errorf("paid payment: paidAmount %v, paidAt %v", payment.PaidAmount, payment.PaidAt)
	}

	// The payment.paid webhook, verified with the merchant's webhook secret; its data is the payment.
	event, d := awaitEvent(ctx, t, deliveries, []string{env.webhookSecret}, "payment.paid", payment.OutTradeNo)
	if !strings.HasPrefix(event.ID, "evt_") || event.APIVersion == "" || event.Created == 0 {
		t.Errorf("event %+v", event)
	}
	data, err := event.Payment()
	if err != nil || data.OutTradeNo != payment.OutTradeNo || data.Status != api.PaymentStatusPAID {
		t.Errorf("the event's payment: %+v, %v", data, err)
	}
	if _, err := VerifyWebhook([]string{"whsec_not_the_merchants"}, d.rawBody, d.header.Get(HeaderSignature), 0, time.Time{}); !errors.Is(err, ErrWebhookBadSignature) {
		t.Errorf("verified under another secret: %v", err)
	}
	if _, err := VerifyWebhook([]string{env.webhookSecret}, append([]byte(" "), d.rawBody...), d.header.Get(HeaderSignature), 0, time.Time{}); !errors.Is(err, ErrWebhookBadSignature) {
		t.Errorf("verified a changed body: %v", err)
	}

	// Refund part of it.
	reason := "one cup was cold"
	refunded, err := client.CreateRefundWithResponse(ctx, payment.OutTradeNo, api.CreateRefundRequest{OutRequestNo: "refund-1", Amount: "0.75", Reason: &reason})
	if err != nil {
		t.Fatalf("refund: %v", err)
	}
	refund := refunded.JSON201
	if refund == nil || refund.OutRequestNo != "refund-1" || refund.Amount != "0.75" {
		t.Fatalf("refund answered HTTP %d: %s", refunded.StatusCode(), refunded.Body)
	}
	if refund.Status == api.RefundStatusFAILED {
		t.Fatalf("the refund failed: %s", refunded.Body)
	}
	// The same refund again is idempotent: 200 and the same refund.
	again, err := client.CreateRefundWithResponse(ctx, payment.OutTradeNo, api.CreateRefundRequest{OutRequestNo: "refund-1", Amount: "0.75", Reason: &reason})
	if err != nil || again.JSON200 == nil || again.JSON200.OutRequestNo != "refund-1" {
		t.Fatalf("the same refund again: %v", err)
	}
	// More than is left is a conflict with its details.
	_, err = client.CreateRefundWithResponse(ctx, payment.OutTradeNo, api.CreateRefundRequest{OutRequestNo: "refund-2", Amount: "1.26"})
	apiErr, ok := AsError(err)
	if !ok || !errors.Is(err, ErrConflict) || apiErr.Code != "REFUND_EXCEEDS_REFUNDABLE" {
		t.Fatalf("refunding more than is left: %v", err)
	}
	var details struct {
		Refundable string `json:"refundable"`
	}
	if err := apiErr.DecodeDetails(&details); err != nil || details.Refundable != "1.25" {
		t.Errorf("details %s: %v", apiErr.Details, err)
	}

	listed, err := client.ListRefundsWithResponse(ctx, payment.OutTradeNo)
	if err != nil {
		t.Fatalf("list refunds: %v", err)
	}
	if listed.JSON200 == nil || len(listed.JSON200.Refunds) != 1 || listed.JSON200.Refunds[0].OutRequestNo != "refund-1" || listed.JSON200.Refunds[0].Amount != "0.75" {
		t.Fatalf("refunds: %s", listed.Body)
	}
	// The refund settles, and the payment says how much went back.
	ticker := time.NewTicker(100 * time.Millisecond)
	defer ticker.Stop()
	for {
		got, err := client.GetRefundWithResponse(ctx, payment.OutTradeNo, "refund-1")
		if err == nil && got.JSON200 != nil && got.JSON200.Status == api.RefundStatusSUCCEEDED {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("refund-1 did not succeed before the deadline (last: %v)", err)
		case <-ticker.C:
		}
	}
	after := waitForStatus(ctx, t, client, payment.OutTradeNo, api.PaymentStatusPARTIALLYREFUNDED)
	if after.RefundedAmount != "0.75" {
		t.Errorf("refundedAmount %s", after.RefundedAmount)
	}
	awaitEvent(ctx, t, deliveries, []string{env.webhookSecret}, "payment.partially_refunded", payment.OutTradeNo)
}

func TestIntegrationTypedErrors(t *testing.T) {
	env := integrationEnv(t)
	client := env.client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	resp, err := client.GetPaymentWithResponse(ctx, uniqueNo("no-such-order"))
	apiErr, ok := AsError(err)
	if resp != nil || !ok || !errors.Is(err, ErrNotFound) || !IsNotFound(err) || apiErr.Status != http.StatusNotFound || apiErr.Code != "NOT_FOUND" || apiErr.Message == "" {
		t.Fatalf("an unknown order: resp %v, err %#v", resp, err)
	}
	if errors.Is(err, ErrConflict) || errors.Is(err, ErrAuthentication) {
		t.Errorf("NOT_FOUND is also another kind: %v", err)
	}
	// The request id: the body's requestId, else the Request-Id header, whichever the engine sends.
	raw, err := NewClient(env.apiURL, env.merchantID, env.secret, WithErrorResponses())
	if err != nil {
		t.Fatal(err)
	}
	rawResp, err := raw.GetPaymentWithResponse(ctx, uniqueNo("no-such-order"))
	if err != nil || rawResp.JSON404 == nil {
		t.Fatalf("an unknown order, kept as a response: %v", err)
	}
	fromResp := ErrorFromResponse(rawResp.HTTPResponse, rawResp.Body)
	if header := rawResp.HTTPResponse.Header.Get("Request-Id"); header != "" || strings.Contains(string(rawResp.Body), `"requestId"`) {
		if fromResp.RequestID == "" {
			t.Errorf("the answer carries a request id (header %q, body %s) and the error has none", header, rawResp.Body)
		}
	} else {
		t.Log("this engine sends no request id yet (neither a Request-Id header nor error.requestId)")
	}

	_, err = client.CreatePaymentWithResponse(ctx, api.CreatePaymentRequest{OutTradeNo: uniqueNo("go-sdk"), Amount: "12.5", Subject: "tea"})
	if apiErr, ok := AsError(err); !ok || !errors.Is(err, ErrInvalidRequest) || apiErr.Code != "INVALID_REQUEST" {
		t.Fatalf("an amount without two decimals: %v", err)
	}

	wrong, err := NewClient(env.apiURL, env.merchantID, env.secret+"x")
	if err != nil {
		t.Fatal(err)
	}
	_, err = wrong.GetPaymentWithResponse(ctx, "anything")
	if apiErr, ok := AsError(err); !ok || !errors.Is(err, ErrAuthentication) || apiErr.Code != "AUTH_BAD_SIGNATURE" {
		t.Fatalf("a request signed with another secret: %v", err)
	}
}
