package durapay

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/durapay/durapay/sdk/go/api"
)

// The four headers of a signed request.
const (
	HeaderMerchant  = "Durapay-Merchant"
	HeaderTimestamp = "Durapay-Timestamp"
	HeaderNonce     = "Durapay-Nonce"
	HeaderSignature = "Durapay-Signature"
)

// StringToSign is S: the method (upper case), the path and query exactly as sent, the timestamp,
// the nonce and the lowercase hex SHA-256 of the raw body bytes (of nothing when there is no
// body), joined by "\n".
func StringToSign(method, pathWithQuery, timestamp, nonce string, body []byte) string {
	sum := sha256.Sum256(body)
	return strings.Join([]string{strings.ToUpper(method), pathWithQuery, timestamp, nonce, hex.EncodeToString(sum[:])}, "\n")
}

// RequestSignature is the Durapay-Signature header value: "v1=" + hex HMAC-SHA256(secret, S).
func RequestSignature(secret, method, pathWithQuery, timestamp, nonce string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(StringToSign(method, pathWithQuery, timestamp, nonce, body)))
	return "v1=" + hex.EncodeToString(mac.Sum(nil))
}

// Signer signs requests as one merchant.
type Signer struct {
	MerchantID string
	secret     string
	// Now gives the timestamp; default time.Now.
	Now func() time.Time
	// Nonce gives each request's nonce; default 32 hex characters from crypto/rand.
	Nonce func() (string, error)
}

// NewSigner signs as merchantID with the merchant's API secret.
func NewSigner(merchantID, secret string) *Signer {
	return &Signer{MerchantID: merchantID, secret: secret, Now: time.Now, Nonce: RandomNonce}
}

// RandomNonce is 16 bytes of crypto/rand as 32 lowercase hex characters.
func RandomNonce() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("durapay: no randomness for a nonce: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// Sign sets the four signature headers on req. The signed path and query is req.URL.RequestURI(),
// what net/http sends on the request line; the body is read and put back (GetBody too), so the
// bytes signed are the bytes sent.
func (s *Signer) Sign(req *http.Request) error {
	var body []byte
	if req.Body != nil && req.Body != http.NoBody {
		read, err := io.ReadAll(req.Body)
		closeErr := req.Body.Close()
		if err != nil {
			return fmt.Errorf("durapay: reading the request body to sign it: %w", err)
		}
		if closeErr != nil {
			return fmt.Errorf("durapay: closing the request body: %w", closeErr)
		}
		body = read
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		req.ContentLength = int64(len(body))
	}
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	nonceOf := RandomNonce
	if s.Nonce != nil {
		nonceOf = s.Nonce
	}
	nonce, err := nonceOf()
	if err != nil {
		return err
	}
	timestamp := strconv.FormatInt(now().Unix(), 10)
	req.Header.Set(HeaderMerchant, s.MerchantID)
	req.Header.Set(HeaderTimestamp, timestamp)
	req.Header.Set(HeaderNonce, nonce)
	req.Header.Set(HeaderSignature, RequestSignature(s.secret, method, req.URL.RequestURI(), timestamp, nonce, body))
	return nil
}

// RequestEditor is Sign as the generated client's request editor (api.WithRequestEditorFn).
// It must be the last editor to run: a change to the URL or body after it breaks the signature.
func (s *Signer) RequestEditor() api.RequestEditorFn {
	return func(_ context.Context, req *http.Request) error { return s.Sign(req) }
}

// SignRequests is a request editor that signs as merchantID with secret, for api.NewClient or
// api.NewClientWithResponses used directly: api.WithRequestEditorFn(durapay.SignRequests(id, secret)).
func SignRequests(merchantID, secret string) api.RequestEditorFn {
	return NewSigner(merchantID, secret).RequestEditor()
}
