package durapay_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"time"

	durapay "github.com/durapay/durapay/sdk/go"
	"github.com/durapay/durapay/sdk/go/api"
)

func ExampleNewClient() {
	client, err := durapay.NewClient("https://pay.example.com", os.Getenv("DURAPAY_MERCHANT_ID"), os.Getenv("DURAPAY_MERCHANT_SECRET"))
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	notify := "https://shop.example.com/durapay/webhooks"
	created, err := client.CreatePaymentWithResponse(ctx, api.CreatePaymentRequest{
		OutTradeNo: "order-1001",
		Amount:     "12.50",
		Subject:    "A cup of tea",
		NotifyUrl:  &notify,
	})
	if err != nil {
		log.Fatal(err)
	}
	payment := created.JSON201
	if payment == nil {
		payment = created.JSON200 // the order existed already
	}
	fmt.Println("QR code:", *payment.QrCode)

	refunded, err := client.CreateRefundWithResponse(ctx, "order-1001", api.CreateRefundRequest{OutRequestNo: "refund-1", Amount: "2.50"})
	switch {
	case errors.Is(err, durapay.ErrConflict):
		apiErr, _ := durapay.AsError(err)
		fmt.Println("not refunded:", apiErr.Code, apiErr.Message)
	case err != nil:
		log.Fatal(err)
	default:
		fmt.Println("refund:", refunded.JSON201.Status)
	}
}

func ExampleVerifyWebhook() {
	secrets := []string{os.Getenv("DURAPAY_WEBHOOK_SECRET")}
	http.HandleFunc("/durapay/webhooks", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, "unreadable body", http.StatusBadRequest)
			return
		}
		event, err := durapay.VerifyWebhook(secrets, body, r.Header.Get(durapay.HeaderSignature), 0, time.Time{})
		if err != nil {
			http.Error(w, "bad signature", http.StatusBadRequest)
			return
		}
		if event.Type == "payment.paid" {
			payment, err := event.Payment()
			if err != nil {
				http.Error(w, "bad event", http.StatusBadRequest)
				return
			}
			fmt.Println("paid:", payment.OutTradeNo)
		}
		w.WriteHeader(http.StatusOK)
	})
}
