package nomad

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"sync"
	"time"
)

const (
	// defaultAccessTokenLifetime applies when /auth/token gives no expires_in (M2024 never does);
	// 300 s is the docker-compose Oasis realm's access token lifespan, the shortest one in use.
	defaultAccessTokenLifetime = 300 * time.Second
	// minRefreshMargin: an access token is replaced when less than max(minRefreshMargin, 10% of its
	// lifetime) remains, so that a request never starts with a token about to expire in flight.
	minRefreshMargin = 10 * time.Second
	// maxAccessTokenLifetime caps expires_in: no realm issues week-long access tokens (central
	// NOMAD's last 24 h), and a garbage value such as 1e300 must not overflow a Duration into the
	// past, which would make every call log in again.
	maxAccessTokenLifetime = 7 * 24 * time.Hour
)

// tokenSource caches one Keycloak access token per HTTPClient. Concurrent callers that find no usable
// token share a single login; the login runs detached from any one caller's cancellation so that a
// caller giving up does not fail the others, and is bounded by RequestTimeout instead.
type tokenSource struct {
	c *HTTPClient

	mu        sync.Mutex
	token     string
	refreshAt time.Time // when to replace token (ahead of expiresAt)
	expiresAt time.Time // when token stops working
	inflight  *login
}

// login is one password grant in progress; done is closed when token/err are set.
type login struct {
	done  chan struct{}
	token string
	err   error
}

// String keeps the cached access token out of any accidental %v.
func (ts *tokenSource) String() string { return "nomad.tokenSource{token:<redacted>}" }

// GoString does the same for %#v.
func (ts *tokenSource) GoString() string { return ts.String() }

// get returns a usable access token, logging in when there is none or it is due for refresh.
func (ts *tokenSource) get(ctx context.Context) (string, error) {
	ts.mu.Lock()
	if ts.token != "" && ts.c.clock.Now().Before(ts.refreshAt) {
		tok := ts.token
		ts.mu.Unlock()
		return tok, nil
	}
	l := ts.inflight
	if l == nil {
		l = &login{done: make(chan struct{})}
		ts.inflight = l
		go ts.run(context.WithoutCancel(ctx), l)
	}
	ts.mu.Unlock()

	select {
	case <-l.done:
	case <-ctx.Done():
		return "", ts.c.transportError(ctx, opLogin, ctx.Err())
	}
	if l.err != nil {
		// An early refresh that failed (Keycloak briefly down) need not fail the call while the
		// old token is still good; the next call tries to refresh again.
		ts.mu.Lock()
		old, ok := ts.token, ts.token != "" && ts.c.clock.Now().Before(ts.expiresAt)
		ts.mu.Unlock()
		if ok {
			return old, nil
		}
	}
	return l.token, l.err
}

func (ts *tokenSource) run(ctx context.Context, l *login) {
	tok, refreshAt, expiresAt, err := ts.c.passwordGrant(ctx)
	ts.mu.Lock()
	if err == nil {
		ts.token, ts.refreshAt, ts.expiresAt = tok, refreshAt, expiresAt
	}
	ts.inflight = nil
	ts.mu.Unlock()
	l.token, l.err = tok, err
	close(l.done)
}

// invalidate drops tok after NOMAD rejected it with a 401, unless another caller already replaced it
// (then the next get returns the new token instead of logging in yet again).
func (ts *tokenSource) invalidate(tok string) {
	ts.mu.Lock()
	if ts.token == tok {
		ts.token = ""
	}
	ts.mu.Unlock()
}

// current is the cached token, for redaction only.
func (ts *tokenSource) current() string {
	if ts == nil {
		return ""
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.token
}

// tokenReply is /auth/token's answer: the full OIDC set (V-B/C) or just access_token and token_type
// (M2024). Only what we use is decoded.
type tokenReply struct {
	AccessToken string   `json:"access_token"`
	ExpiresIn   *float64 `json:"expires_in"`
}

// passwordGrant logs in at POST {root}/v1/auth/token and returns the access token, when to
// replace it and when it expires. Both are counted from before the request was sent, to err on the
// early side.
func (c *HTTPClient) passwordGrant(ctx context.Context) (tok string, refreshAt, expiresAt time.Time, err error) {
	start := c.clock.Now()
	form := url.Values{"grant_type": {"password"}, "username": {c.username}, "password": {c.password}}
	rep, err := c.roundTrip(ctx, request{
		op:          opLogin,
		method:      http.MethodPost,
		path:        "/v1/auth/token",
		body:        []byte(form.Encode()),
		contentType: "application/x-www-form-urlencoded",
	})
	if err != nil {
		return "", time.Time{}, time.Time{}, err
	}
	if !rep.ok() {
		return "", time.Time{}, time.Time{}, c.classify(opLogin, rep)
	}
	var tr tokenReply
	if err := json.Unmarshal(rep.body, &tr); err != nil {
		return "", time.Time{}, time.Time{}, c.badAnswer(opLogin, rep, "not JSON")
	}
	if tr.AccessToken == "" {
		return "", time.Time{}, time.Time{}, c.badAnswer(opLogin, rep, "no access_token")
	}
	lifetime := defaultAccessTokenLifetime
	if tr.ExpiresIn != nil && *tr.ExpiresIn > 0 {
		lifetime = time.Duration(min(*tr.ExpiresIn, maxAccessTokenLifetime.Seconds()) * float64(time.Second))
	}
	margin := max(minRefreshMargin, lifetime/10)
	if c.observer != nil {
		c.observer.SignedIn(SignIn{Method: MethodPassword, Account: c.username, At: start})
	}
	c.log.V(1).Info("logged in to NOMAD", "user", c.username, "expiresIn", lifetime)
	return tr.AccessToken, start.Add(lifetime - margin), start.Add(lifetime), nil
}
