package durapay

// Integration tests of webhook endpoints and the events feed (see integration_test.go for when
// they run).

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/durapay/durapay/sdk/go/api"
)

func TestIntegrationWebhookEndpoint(t *testing.T) {
	env := integrationEnv(t)
	client := env.client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	hookURL, deliveries := receiver(t)

	description := "Go SDK test"
	created, err := client.CreateWebhookEndpointWithResponse(ctx, api.CreateWebhookEndpointJSONRequestBody{
		Url:         hookURL + "/endpoint",
		Events:      []api.CreateWebhookEndpointRequestEvents{"payment.paid"},
		Description: &description,
	})
	if err != nil {
		t.Fatalf("create endpoint: %v", err)
	}
	endpoint := created.JSON201
	if endpoint == nil || !strings.HasPrefix(endpoint.Id, "we_") || !strings.HasPrefix(endpoint.Secret, "whsec_") || !endpoint.Enabled || endpoint.Url != hookURL+"/endpoint" {
		t.Fatalf("create endpoint answered HTTP %d: %s", created.StatusCode(), created.Body)
	}
	t.Cleanup(func() {
		// Other tests' orders must not reach a receiver that is gone.
		_, _ = client.DeleteWebhookEndpointWithResponse(context.Background(), endpoint.Id)
	})
	secret := endpoint.Secret

	// The endpoint as read back never shows its secret.
	got, err := client.GetWebhookEndpointWithResponse(ctx, endpoint.Id)
	if err != nil || got.JSON200 == nil || got.JSON200.Id != endpoint.Id || strings.Contains(string(got.Body), secret) {
		t.Fatalf("get endpoint: %v %s", err, got.Body)
	}
	listed, err := client.ListWebhookEndpointsWithResponse(ctx)
	if err != nil {
		t.Fatalf("list endpoints: %v", err)
	}
	found := false
	for _, e := range listed.JSON200.Endpoints {
		found = found || e.Id == endpoint.Id
	}
	if !found || strings.Contains(string(listed.Body), secret) {
		t.Fatalf("the endpoint list (without secrets) lacks %s: %s", endpoint.Id, listed.Body)
	}

	// A test event: a ping signed with the endpoint's secret.
	pinged, err := client.TestWebhookEndpointWithResponse(ctx, endpoint.Id)
	if err != nil || pinged.JSON202 == nil || pinged.JSON202.Type != "ping" {
		t.Fatalf("test endpoint: %v", err)
	}
	ping, _ := awaitEvent(ctx, t, deliveries, []string{secret}, "ping", "")
	var pingData struct {
		EndpointID string `json:"endpointId"`
	}
	if err := ping.DecodeData(&pingData); err != nil || pingData.EndpointID != endpoint.Id || ping.ID != pinged.JSON202.Id {
		t.Errorf("ping %+v (data %s), want endpoint %s and id %s", ping, ping.Data, endpoint.Id, pinged.JSON202.Id)
	}

	// An order without a notifyUrl: its payment.paid reaches the endpoint, signed with the
	// endpoint's secret, not the merchant's webhook secret.
	payment := createPaidOrder(ctx, t, client, "3.20", "")
	event, d := awaitEvent(ctx, t, deliveries, []string{secret}, "payment.paid", payment.OutTradeNo)
	if _, err := VerifyWebhook([]string{env.webhookSecret}, d.rawBody, d.header.Get(HeaderSignature), 0, time.Time{}); !errors.Is(err, ErrWebhookBadSignature) {
		t.Errorf("the endpoint's webhook verified with the merchant's webhook secret: %v", err)
	}

	// Its delivery is in the endpoint's deliveries, delivered.
	limit := 20
	ticker := time.NewTicker(100 * time.Millisecond)
	defer ticker.Stop()
	for delivered := false; !delivered; {
		list, err := client.ListWebhookDeliveriesWithResponse(ctx, endpoint.Id, &api.ListWebhookDeliveriesParams{Limit: &limit})
		if err != nil {
			t.Fatalf("deliveries: %v", err)
		}
		for _, delivery := range list.JSON200.Deliveries {
			if delivery.EventId == event.ID && delivery.Status == "delivered" && len(delivery.Attempts) > 0 {
				delivered = true
			}
		}
		if !delivered {
			select {
			case <-ctx.Done():
				t.Fatalf("%s never showed as delivered: %s", event.ID, list.Body)
			case <-ticker.C:
			}
		}
	}

	// A rotation with a grace period: each delivery carries two v1 values, and either secret alone verifies it.
	grace := 3600
	rotated, err := client.RotateWebhookEndpointSecretWithResponse(ctx, endpoint.Id, api.RotateWebhookEndpointSecretJSONRequestBody{GraceSeconds: &grace})
	if err != nil || rotated.JSON200 == nil || !strings.HasPrefix(rotated.JSON200.Secret, "whsec_") || rotated.JSON200.Secret == secret {
		t.Fatalf("rotate: %v", err)
	}
	newSecret := rotated.JSON200.Secret
	if _, err := client.TestWebhookEndpointWithResponse(ctx, endpoint.Id); err != nil {
		t.Fatalf("test endpoint after the rotation: %v", err)
	}
	_, d = awaitEvent(ctx, t, deliveries, []string{newSecret}, "ping", "")
	header := d.header.Get(HeaderSignature)
	if strings.Count(header, "v1=") != 2 {
		t.Errorf("during the grace period the header has two v1 values: %q", header)
	}
	if _, err := VerifyWebhook([]string{secret}, d.rawBody, header, 0, time.Time{}); err != nil {
		t.Errorf("the previous secret no longer verifies during the grace period: %v", err)
	}

	// Deleted: gone, a typed NOT_FOUND.
	deleted, err := client.DeleteWebhookEndpointWithResponse(ctx, endpoint.Id)
	if err != nil || deleted.JSON200 == nil || !bool(deleted.JSON200.Deleted) || deleted.JSON200.Id != endpoint.Id {
		t.Fatalf("delete: %v", err)
	}
	if _, err := client.GetWebhookEndpointWithResponse(ctx, endpoint.Id); !errors.Is(err, ErrNotFound) {
		t.Errorf("a deleted endpoint: %v", err)
	}
}

// The events feed: from a cursor taken now, a long poll sees the payment.paid of an order paid later.
func TestIntegrationEventsFeed(t *testing.T) {
	env := integrationEnv(t)
	client := env.client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	start, err := client.ListEventsWithResponse(ctx, &api.ListEventsParams{})
	if err != nil || start.JSON200 == nil || start.JSON200.NextCursor == "" {
		t.Fatalf("the feed's first page: %v", err)
	}
	cursor := start.JSON200.NextCursor
	payment := createPaidOrder(ctx, t, client, "1.10", "")
	wait := 5
	for {
		page, err := client.ListEventsWithResponse(ctx, &api.ListEventsParams{After: &cursor, WaitSeconds: &wait})
		if err != nil {
			t.Fatalf("the feed after %s: %v", cursor, err)
		}
		for _, event := range page.JSON200.Events {
			if event.Type == "payment.paid" && event.Data["outTradeNo"] == payment.OutTradeNo {
				if !strings.HasPrefix(event.Id, "evt_") || event.Created == 0 {
					t.Errorf("feed event %+v", event)
				}
				return
			}
		}
		cursor = page.JSON200.NextCursor
		if ctx.Err() != nil {
			t.Fatalf("the feed never showed the payment.paid of %s", payment.OutTradeNo)
		}
	}
}
