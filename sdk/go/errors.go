package durapay

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Kinds of error answer, for errors.Is: errors.Is(err, durapay.ErrNotFound).
var (
	// ErrAuthentication: 401, the request is not signed as an active merchant (AUTH_*).
	ErrAuthentication = errors.New("durapay: authentication failed")
	// ErrInvalidRequest: 400, 413 or 415, the request broke a rule; nothing changed.
	ErrInvalidRequest = errors.New("durapay: invalid request")
	// ErrNotFound: 404, no such order, refund, event or endpoint for this merchant.
	ErrNotFound = errors.New("durapay: not found")
	// ErrConflict: 409, the request conflicts with what exists (ORDER_CONFLICT, REFUND_EXCEEDS_REFUNDABLE, …).
	ErrConflict = errors.New("durapay: conflict")
	// ErrRateLimited: 429, too many requests; Error.RetryAfter says when to send the next.
	ErrRateLimited = errors.New("durapay: rate limited")
	// ErrTryAgain: 503, the engine did not answer in time; the same request can be sent again safely.
	ErrTryAgain = errors.New("durapay: try again")
)

// Error is an error answer of the API: {"error": {"code", "message", "details", "requestId"}}.
type Error struct {
	// Status is the HTTP status.
	Status int
	// Code is the error's code, e.g. NOT_FOUND or REFUND_EXCEEDS_REFUNDABLE (api/error-codes.ts).
	Code string
	// Message is for people.
	Message string
	// Details is the code's details as sent (JSON; null when none); see DecodeDetails.
	Details json.RawMessage
	// RequestID identifies the request in the engine's logs: the body's requestId, else the
	// Request-Id header.
	RequestID string
	// RetryAfter is the Retry-After header of a 429 (0 when absent).
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "durapay: HTTP %d", e.Status)
	if e.Code != "" {
		b.WriteString(" " + e.Code)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if e.RequestID != "" {
		b.WriteString(" (request " + e.RequestID + ")")
	}
	return b.String()
}

// Is reports whether the error is of the kind target is (ErrNotFound, ErrConflict, …).
func (e *Error) Is(target error) bool {
	switch target {
	case ErrAuthentication:
		return e.Status == http.StatusUnauthorized
	case ErrInvalidRequest:
		return e.Status == http.StatusBadRequest || e.Status == http.StatusRequestEntityTooLarge || e.Status == http.StatusUnsupportedMediaType
	case ErrNotFound:
		return e.Status == http.StatusNotFound
	case ErrConflict:
		return e.Status == http.StatusConflict
	case ErrRateLimited:
		return e.Status == http.StatusTooManyRequests
	case ErrTryAgain:
		return e.Status == http.StatusServiceUnavailable
	}
	return false
}

// DecodeDetails decodes Details into v.
func (e *Error) DecodeDetails(v any) error {
	if len(e.Details) == 0 {
		return errors.New("durapay: the error has no details")
	}
	return json.Unmarshal(e.Details, v)
}

// AsError is the *Error in err's chain, if any.
func AsError(err error) (*Error, bool) {
	var apiErr *Error
	ok := errors.As(err, &apiErr)
	return apiErr, ok
}

// IsAuthentication, IsInvalidRequest, IsNotFound, IsConflict, IsRateLimited and IsTryAgain are
// errors.Is(err, ErrX).
func IsAuthentication(err error) bool { return errors.Is(err, ErrAuthentication) }
func IsInvalidRequest(err error) bool { return errors.Is(err, ErrInvalidRequest) }
func IsNotFound(err error) bool       { return errors.Is(err, ErrNotFound) }
func IsConflict(err error) bool       { return errors.Is(err, ErrConflict) }
func IsRateLimited(err error) bool    { return errors.Is(err, ErrRateLimited) }
func IsTryAgain(err error) bool       { return errors.Is(err, ErrTryAgain) }

// ErrorFromResponse is the *Error of an answer that is not a 2xx (nil for a 2xx), from its status,
// headers and body bytes; a body that is not the API's error shape still gives an *Error with the
// status (and the start of the body as its message).
func ErrorFromResponse(resp *http.Response, body []byte) *Error {
	if resp == nil || (resp.StatusCode >= 200 && resp.StatusCode < 300) {
		return nil
	}
	e := &Error{Status: resp.StatusCode, RequestID: resp.Header.Get("Request-Id")}
	var envelope struct {
		Error *struct {
			Code      string          `json:"code"`
			Message   string          `json:"message"`
			Details   json.RawMessage `json:"details"`
			RequestID string          `json:"requestId"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &envelope) == nil && envelope.Error != nil {
		e.Code = envelope.Error.Code
		e.Message = envelope.Error.Message
		e.Details = envelope.Error.Details
		if envelope.Error.RequestID != "" {
			e.RequestID = envelope.Error.RequestID
		}
	} else {
		text := strings.TrimSpace(string(body))
		if len(text) > 200 {
			text = text[:200] + "…"
		}
		e.Message = text
		if e.Message == "" {
			e.Message = http.StatusText(resp.StatusCode)
		}
	}
	e.RetryAfter = retryAfter(resp.Header.Get("Retry-After"))
	return e
}

// retryAfter reads a Retry-After header: seconds, or an HTTP date.
func retryAfter(value string) time.Duration {
	value = strings.TrimSpace(value)
	if value == "" {
		return 0
	}
	if seconds, err := strconv.Atoi(value); err == nil && seconds >= 0 {
		return time.Duration(seconds) * time.Second
	}
	if at, err := http.ParseTime(value); err == nil {
		if wait := time.Until(at); wait > 0 {
			return wait
		}
	}
	return 0
}
