package nomad

import (
	"context"
	"time"
)

// Observer is told about the requests a client sends and the logins it makes, for metrics. Its
// methods are called on the request path: they must be cheap and safe for concurrent use.
type Observer interface {
	// Request reports one exchange sent to NOMAD, or to its realm for a sign-in (discovery and the
	// token endpoint, reported as login): operation is one of login, create, list, get,
	// revoke, rotate, openapi, other; status is the HTTP status, 0 when no answer arrived; took is
	// from sending to having read the answer. Requests the guard refused were never sent and are
	// not reported.
	Request(operation string, status int, took time.Duration)
	// SignedIn reports an access token obtained: from /auth/token (MethodPassword) or the realm's
	// token endpoint. It never carries a token.
	SignedIn(SignIn)
}

// operation names r for Observer. It comes from what the client was doing (the op that also
// names it in errors), so no URL is ever parsed; PAT path detection reads openapi.json
// ("openapi") or probes a PAT path ("other").
func (r request) operation() string {
	switch r.op {
	case opLogin, opCreate, opList, opGet, opRevoke, opRotate:
		return r.op
	case opDetect:
		if r.path == openAPIPath {
			return "openapi"
		}
	}
	return "other"
}

// observedExchange is exchange, reported to the observer.
func (c *HTTPClient) observedExchange(ctx, parent context.Context, r request) (*reply, error) {
	if c.observer == nil {
		return c.exchange(ctx, parent, r)
	}
	start := c.latency.Now()
	rep, err := c.exchange(ctx, parent, r)
	status := 0
	if err == nil {
		status = rep.status
	}
	c.observer.Request(r.operation(), status, c.latency.Since(start))
	return rep, err
}
