package nomad

import (
	"context"
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
	// maxSignInAge is the longest an access token is used before the client signs in again, whatever
	// its lifetime. Keycloak ends an offline session that goes unused for its idle timeout (30 days by
	// default), and only a refresh uses it; the connection's periodic check (every 10 minutes) thus
	// refreshes at least twice a day even where access tokens last 24 h (central NOMAD), and a
	// password or client secret that was revoked shows within half a day. It applies to every method.
	maxSignInAge = 12 * time.Hour
)

// signer obtains a new access token: the password grant through NOMAD, or a grant at the realm's
// token endpoint. tokenSource calls it from one goroutine at a time (its single-flight login), so a
// signer may keep state between sign-ins without locking against itself.
type signer interface {
	signIn(ctx context.Context) (grant, error)
}

// grant is one successful sign-in.
type grant struct {
	accessToken string
	start       time.Time     // the client's clock before the request was sent, to err on the early side
	lifetime    time.Duration // expires_in, defaulted and capped (accessTokenLifetime)
	state       SignIn
}

// refreshAt is when g's access token is replaced: max(minRefreshMargin, 10% of its lifetime) before
// it expires, and at the latest maxSignInAge after the sign-in.
func (g grant) refreshAt() time.Time {
	margin := max(minRefreshMargin, g.lifetime/10)
	return g.start.Add(min(g.lifetime-margin, maxSignInAge))
}

// String and GoString keep the access token out of any accidental %v or %#v.
func (g grant) String() string {
	return "nomad.grant{method:" + string(g.state.Method) + ", token:<redacted>}"
}
func (g grant) GoString() string { return g.String() }

// expiresAt is when g's access token stops working.
func (g grant) expiresAt() time.Time { return g.start.Add(g.lifetime) }

// accessTokenLifetime turns expires_in (seconds, ok false when absent) into a lifetime: the default
// when absent, null or not positive, capped at maxAccessTokenLifetime.
func accessTokenLifetime(expiresIn float64, ok bool) time.Duration {
	if !ok || !(expiresIn > 0) {
		return defaultAccessTokenLifetime
	}
	return time.Duration(min(expiresIn, maxAccessTokenLifetime.Seconds()) * float64(time.Second))
}

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

	lastSignIn SignIn // what the last successful sign-in showed; At is zero before any
}

// login is one sign-in in progress; done is closed when token/err are set.
type login struct {
	done  chan struct{}
	token string
	err   error
}

// String keeps the cached access token out of any accidental %v.
func (ts *tokenSource) String() string { return "nomad.tokenSource{token:<redacted>}" }

// GoString does the same for %#v.
func (ts *tokenSource) GoString() string { return ts.String() }

// get returns a usable access token, signing in when there is none or it is due for refresh.
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
	if l.err != nil && CodeOf(l.err) == CodeTransient {
		// An early refresh that failed (Keycloak briefly down) need not fail the call while the
		// old token is still good; the next call tries to refresh again. A refusal is different:
		// the credentials are revoked or spent, and the connection must say so now, not when the
		// old token expires (up to maxSignInAge later, with a refused grant at every call till then).
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
	g, err := ts.c.signer.signIn(ctx)
	ts.mu.Lock()
	switch {
	case err == nil:
		ts.token, ts.refreshAt, ts.expiresAt = g.accessToken, g.refreshAt(), g.expiresAt()
		ts.lastSignIn = g.state
	case CodeOf(err) != CodeTransient:
		ts.token = "" // refused credentials: their access token is not used any more either
	}
	ts.inflight = nil
	ts.mu.Unlock()
	if err == nil {
		if ts.c.observer != nil {
			ts.c.observer.SignedIn(g.state)
		}
		ts.c.log.V(1).Info("signed in to NOMAD", "method", g.state.Method, "account", g.state.Account,
			"expiresIn", g.lifetime)
	}
	l.token, l.err = g.accessToken, err
	close(l.done)
}

// signInState is what the last successful sign-in showed.
func (ts *tokenSource) signInState() (SignIn, bool) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.lastSignIn, !ts.lastSignIn.At.IsZero()
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
