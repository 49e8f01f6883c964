package nomad

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"
)

// maxBodyBytes bounds every answer we read. A V-A list returns every token the user ever had (until
// pruning), and openapi.json of a full NOMAD is a few MiB, so this is generous on purpose.
const maxBodyBytes = 32 << 20

// request is one HTTP exchange, described without the root URL or credentials.
type request struct {
	op          string // Error.Op
	method      string
	path        string // below the root, e.g. "/v1/auth/token"
	query       url.Values
	body        []byte
	contentType string
	bearer      string // Keycloak access token; "" for anonymous calls
}

// reply is a complete answer: the body is read before the exchange's timeout is released.
type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r *reply) ok() bool { return r.status >= 200 && r.status < 300 }

// roundTrip performs one HTTP exchange: pass the guard (or wait for the rate limiter), bound it with
// RequestTimeout, read the whole answer. Only transport failures and the guard's refusals are errors
// here; statuses are the caller's business.
func (c *HTTPClient) roundTrip(parent context.Context, r request) (*reply, error) {
	ctx, cancel := context.WithTimeout(parent, c.timeout)
	defer cancel()

	if c.guard == nil {
		if c.limiter != nil {
			if err := c.limiter.Wait(ctx); err != nil {
				return nil, c.transportError(parent, r.op, fmt.Errorf("rate limiter: %w", err))
			}
		}
		return c.observedExchange(ctx, parent, r)
	}
	p, ref, err := c.guard.enter(ctx)
	switch {
	case err != nil:
		return nil, c.transportError(parent, r.op, fmt.Errorf("waiting for a request slot or the rate limiter: %w", err))
	case ref != nil:
		return nil, c.refused(r.op, ref)
	}
	rep, err := c.observedExchange(ctx, parent, r)
	o, detail := c.outcomeOf(parent, r.op, rep, err)
	p.done(o, detail)
	return rep, err
}

// outcomeOf tells the breaker what an admitted exchange says about NOMAD: any answer but a 5xx or
// 408 means it is alive; no answer (a timeout, a refused or reset connection) or a 5xx counts as a
// failure, unless the caller gave up.
func (c *HTTPClient) outcomeOf(parent context.Context, op string, rep *reply, err error) (outcome, string) {
	switch {
	case parent.Err() != nil:
		return neutral, ""
	case err != nil:
		var ne *Error
		if errors.As(err, &ne) && ne.Code != CodeTransient {
			return neutral, "" // the request could not even be built
		}
		return failed, err.Error()
	case rep.status >= 500 || rep.status == http.StatusRequestTimeout:
		return failed, c.classify(op, rep).Error()
	}
	return answered, ""
}

// refused is the Transient error of a request the guard did not let out.
func (c *HTTPClient) refused(op string, ref *refusal) *Error {
	e := c.newError(op, CodeTransient, 0, ref.detail)
	e.RetryAfter = max(ref.retryAfter, minRetryAfter)
	e.cause = ref.cause
	return e
}

// minRetryAfter keeps a refusal's RetryAfter positive, so callers always requeue rather than back off.
const minRetryAfter = 100 * time.Millisecond

// Precheck returns the refusal that a request of op would meet now from the connection's circuit
// breaker or rate limit, as the same Transient *Error, or nil. It takes nothing and changes
// nothing: callers ask before work that a refusal would waste (an intent written before a create).
func (c *HTTPClient) Precheck(op string) error {
	if c.guard == nil {
		return nil
	}
	if ref := c.guard.precheck(); ref != nil {
		return c.refused(op, ref)
	}
	return nil
}

// Precheck is c.Precheck(op) for a client that has one (the HTTP client), nil for others.
func Precheck(c Client, op string) error {
	if p, ok := c.(interface{ Precheck(string) error }); ok {
		return p.Precheck(op)
	}
	return nil
}

// exchange sends r and reads the whole answer; ctx carries the request timeout, parent is the caller's.
func (c *HTTPClient) exchange(ctx, parent context.Context, r request) (*reply, error) {
	u := c.root + r.path
	if len(r.query) > 0 {
		u += "?" + r.query.Encode()
	}
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u, body)
	if err != nil {
		return nil, c.newError(r.op, CodeBadRequest, 0, "cannot build request: "+err.Error())
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if r.contentType != "" {
		req.Header.Set("Content-Type", r.contentType)
	}
	if r.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+r.bearer)
	}

	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, c.transportError(parent, r.op, err)
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes+1))
	if err != nil {
		return nil, c.transportError(parent, r.op, fmt.Errorf("reading the answer to %s %s: %w", r.method, r.path, err))
	}
	if len(data) > maxBodyBytes {
		return nil, c.newError(r.op, CodeTransient, resp.StatusCode, fmt.Sprintf("answer larger than %d bytes", maxBodyBytes))
	}
	c.offset.note(resp.Header, c.clock.Now())
	return &reply{status: resp.StatusCode, header: resp.Header, body: data}, nil
}

// transportError classifies a failed exchange. Everything here is transient: the request may not
// have reached NOMAD, or its answer was lost (which for create means a PAT may exist that nobody
// holds; the controllers recover it by listing). parent is the caller's context, so that its own
// cancellation or deadline is not blamed on RequestTimeout.
func (c *HTTPClient) transportError(parent context.Context, op string, err error) *Error {
	detail := err.Error()
	var ne net.Error
	switch {
	case parent.Err() != nil:
		detail = "cancelled by the caller: " + detail
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout():
		detail = fmt.Sprintf("no answer within the request timeout (%s): %s", c.timeout, detail)
	}
	e := c.newError(op, CodeTransient, 0, detail)
	e.cause = err
	return e
}

// call performs an authenticated exchange and classifies any non-2xx answer. A 401 means the cached
// access token was revoked or expired early (a Keycloak restart, a clock skew): log in again and
// retry exactly once; a second 401 is CodeUnauthorized.
func (c *HTTPClient) call(ctx context.Context, r request) (*reply, error) {
	for attempt := 0; ; attempt++ {
		tok, err := c.tokens.get(ctx)
		if err != nil {
			return nil, err
		}
		r.bearer = tok
		rep, err := c.roundTrip(ctx, r)
		if err != nil {
			return nil, err
		}
		if rep.status == http.StatusUnauthorized && attempt == 0 {
			c.log.V(1).Info("NOMAD rejected the access token; logging in again", "op", r.op)
			c.tokens.invalidate(tok)
			continue
		}
		if !rep.ok() {
			return nil, c.classify(r.op, rep)
		}
		return rep, nil
	}
}
