// Package durapay is the Go client of durapay's merchant API: signed requests (Signer), the API's
// operations generated from sdk/openapi.json (package api, through Client), typed errors (Error)
// and webhook verification (VerifyWebhook).
//
//	client, err := durapay.NewClient("https://pay.example.com", merchantID, apiSecret)
//	resp, err := client.CreatePaymentWithResponse(ctx, api.CreatePaymentRequest{
//		OutTradeNo: "order-1001", Amount: "12.50", Subject: "A cup of tea",
//	})
//	if errors.Is(err, durapay.ErrConflict) { … }
//	payment := resp.JSON201
package durapay

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/durapay/durapay/sdk/go/api"
)

// Client is the generated client (every operation of the merchant API as <Operation>WithResponse)
// with each request signed as one merchant, and every answer that is not a 2xx returned as an
// *Error instead of a response.
type Client struct {
	*api.ClientWithResponses
	// MerchantID is the merchant the requests are signed as.
	MerchantID string
	// BaseURL is the API's URL, e.g. https://pay.example.com.
	BaseURL string
}

type options struct {
	httpClient     api.HttpRequestDoer
	errorResponses bool
	editors        []api.RequestEditorFn
	signer         *Signer
}

// Option changes what NewClient builds.
type Option func(*options)

// WithHTTPClient sends the requests through doer (an *http.Client, or anything with its Do);
// default: an http.Client with a 30 s timeout.
func WithHTTPClient(doer api.HttpRequestDoer) Option {
	return func(o *options) { o.httpClient = doer }
}

// WithErrorResponses keeps error answers as responses (their JSON4xx/JSON5xx fields filled)
// instead of returning them as *Error; ErrorFromResponse turns one into an *Error.
func WithErrorResponses() Option {
	return func(o *options) { o.errorResponses = true }
}

// WithRequestEditor adds an editor that runs on every request before it is signed (headers it adds
// are sent; the body and URL it leaves are what is signed).
func WithRequestEditor(editor api.RequestEditorFn) Option {
	return func(o *options) { o.editors = append(o.editors, editor) }
}

// WithSigner signs with signer instead of a new Signer of merchantID and secret (e.g. one with a
// clock of its own).
func WithSigner(signer *Signer) Option {
	return func(o *options) { o.signer = signer }
}

// NewClient returns a client of the API at apiURL (e.g. https://pay.example.com) that signs every
// request as merchantID with the merchant's API secret.
func NewClient(apiURL, merchantID, secret string, opts ...Option) (*Client, error) {
	if merchantID == "" || secret == "" {
		return nil, errors.New("durapay: NewClient needs a merchant id and its API secret")
	}
	parsed, err := url.Parse(apiURL)
	if err != nil || (parsed.Scheme != "http" && parsed.Scheme != "https") || parsed.Host == "" {
		return nil, fmt.Errorf("durapay: the API URL %q is not an http(s) URL", apiURL)
	}
	o := options{httpClient: &http.Client{Timeout: 30 * time.Second}}
	for _, opt := range opts {
		opt(&o)
	}
	signer := o.signer
	if signer == nil {
		signer = NewSigner(merchantID, secret)
	}
	doer := o.httpClient
	if !o.errorResponses {
		doer = errorAnswers{doer}
	}
	clientOptions := []api.ClientOption{api.WithHTTPClient(doer)}
	for _, editor := range o.editors {
		clientOptions = append(clientOptions, api.WithRequestEditorFn(editor))
	}
	// Last of the client's editors, so what it signs is what the others left.
	clientOptions = append(clientOptions, api.WithRequestEditorFn(signer.RequestEditor()))
	base := strings.TrimRight(apiURL, "/")
	generated, err := api.NewClientWithResponses(base, clientOptions...)
	if err != nil {
		return nil, fmt.Errorf("durapay: %w", err)
	}
	return &Client{ClientWithResponses: generated, MerchantID: merchantID, BaseURL: base}, nil
}

// errorAnswers returns every answer that is not a 2xx as an *Error (its body read and closed).
type errorAnswers struct{ doer api.HttpRequestDoer }

// maxErrorBody bounds what is read of an error answer (the API's are a few hundred bytes).
const maxErrorBody = 1 << 20

func (e errorAnswers) Do(req *http.Request) (*http.Response, error) {
	resp, err := e.doer.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp, nil
	}
	defer resp.Body.Close()
	body, readErr := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	if readErr != nil {
		return nil, fmt.Errorf("durapay: %s %s answered %d and its body could not be read: %w", req.Method, req.URL.Path, resp.StatusCode, readErr)
	}
	return nil, ErrorFromResponse(resp, body)
}
