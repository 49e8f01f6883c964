package nomad

import (
	"context"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// oidcSigner signs in at the realm's own token endpoint (nomad-pat-api.md §9a): with a refresh
// token (MethodRefreshToken) or as a confidential client's service account
// (MethodClientCredentials). NOMAD accepts any access token of its realm for the PAT API.
//
// The client authenticates in the form body (AuthStyleInParams) for both: a public client such as
// nomad_public must send its client_id there, and Keycloak's default client authenticator accepts
// client_secret in the body as well as in a Basic header, so one style serves both kinds of client.
// Setting it explicitly also keeps oauth2 from probing (a failed first attempt sent again in the
// other style), which would double every refused request and hide which answer we classify.
type oidcSigner struct {
	c            *HTTPClient
	method       CredentialMethod
	clientID     string
	clientSecret string
	onRotated    func(ctx context.Context, previous, current string) error // nil: nothing to store
	discovery    *discovery
	refresh      *refreshTokens // MethodRefreshToken only
}

func (s *oidcSigner) signIn(ctx context.Context) (grant, error) {
	start := s.c.clock.Now() // before discovery too: At is the sign-in's start, lifetimes err early
	if s.method == MethodRefreshToken {
		if g, done, err := s.resumePendingRotation(ctx); done || err != nil {
			return g, err
		}
	}
	tokenURL, err := s.discovery.tokenEndpoint(ctx)
	if err != nil {
		return grant{}, err
	}
	var rec keycloakExchange
	tctx, cancel := s.c.keycloakContext(ctx, &rec)
	defer cancel()
	endpoint := oauth2.Endpoint{TokenURL: tokenURL, AuthStyle: oauth2.AuthStyleInParams}

	var tok *oauth2.Token
	var sent, grantType string
	switch s.method {
	case MethodRefreshToken:
		grantType, sent = grantRefreshToken, s.refresh.next()
		conf := &oauth2.Config{ClientID: s.clientID, ClientSecret: s.clientSecret, Endpoint: endpoint}
		tok, err = conf.TokenSource(tctx, &oauth2.Token{RefreshToken: sent}).Token()
	default:
		grantType = grantClientCredentials
		conf := &clientcredentials.Config{ClientID: s.clientID, ClientSecret: s.clientSecret,
			TokenURL: endpoint.TokenURL, AuthStyle: endpoint.AuthStyle}
		tok, err = conf.Token(tctx)
	}
	if err != nil {
		e := s.c.tokenEndpointError(ctx, grantType, &rec, err)
		if e.StatusCode == 404 {
			s.discovery.forget()
		}
		return grant{}, e
	}
	g := s.grantOf(tok, start)
	if s.method != MethodRefreshToken || tok.RefreshToken == "" || tok.RefreshToken == sent {
		return g, nil
	}
	// The realm rotated the refresh token: sent is dead from now on. Keep the new one whatever
	// happens next, and hand out the access token only once the new one is stored.
	s.refresh.receive(tok.RefreshToken)
	if err := s.notifyRotated(ctx, sent, tok.RefreshToken); err != nil {
		s.refresh.setPending(&pendingRotation{previous: sent, current: tok.RefreshToken, g: g})
		return grant{}, err
	}
	return g, nil
}

// resumePendingRotation retries storing a rotated refresh token whose write-back failed, without a
// new refresh (the realm already has the new one). done means the held access token is returned:
// it is stored now and still fresh. Otherwise (done false, err nil) a new refresh is needed, with
// the now-stored refresh token.
func (s *oidcSigner) resumePendingRotation(ctx context.Context) (g grant, done bool, err error) {
	p := s.refresh.getPending()
	if p == nil {
		return grant{}, false, nil
	}
	if err := s.notifyRotated(ctx, p.previous, p.current); err != nil {
		return grant{}, false, err
	}
	s.refresh.setPending(nil)
	if s.c.clock.Now().Before(p.g.refreshAt()) {
		return p.g, true, nil
	}
	return grant{}, false, nil
}

// notifyRotated calls RefreshTokenRotated, bounded by RequestTimeout. Its failure is transient:
// storing a Secret can fail for reasons that pass (a conflict, an API server restart).
func (s *oidcSigner) notifyRotated(ctx context.Context, previous, current string) error {
	if s.onRotated == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.c.timeout)
	defer cancel()
	if err := s.onRotated(ctx, previous, current); err != nil {
		e := s.c.newError(opLogin, CodeTransient, 0,
			"the realm rotated the refresh token and storing the new one failed (it is kept and stored again before any use): "+err.Error())
		e.cause = err
		return e
	}
	return nil
}

// grantOf reads what a successful token answer says.
func (s *oidcSigner) grantOf(tok *oauth2.Token, start time.Time) grant {
	expiresIn, ok := numberExtra(tok, "expires_in")
	state := SignIn{Method: s.method, At: start}
	if claims, ok := UnverifiedClaims(tok.AccessToken); ok {
		state.Account, state.UserID = claims.PreferredUsername, claims.Sub
	}
	if s.method == MethodRefreshToken {
		state.RefreshTokenExpiresAt = refreshTokenExpiry(tok, start)
	}
	return grant{accessToken: tok.AccessToken, start: start, lifetime: accessTokenLifetime(expiresIn, ok), state: state}
}

// refreshTokenExpiry is when the refresh token (or its offline session) ends unless used:
// refresh_expires_in when the realm gives a positive one, else the refresh token's own exp (an
// offline token's refresh_expires_in is 0), else zero (unknown).
func refreshTokenExpiry(tok *oauth2.Token, start time.Time) time.Time {
	if secs, ok := numberExtra(tok, "refresh_expires_in"); ok && secs > 0 {
		// Capped like expires_in, so that garbage cannot overflow a Duration.
		const maxSecs = 100 * 365 * 24 * 60 * 60
		return start.Add(time.Duration(min(secs, maxSecs)) * time.Second)
	}
	if claims, ok := UnverifiedClaims(tok.RefreshToken); ok {
		return claims.Exp
	}
	return time.Time{}
}

// numberExtra reads a numeric field of the token answer: a JSON number, or a number in a string
// (form-encoded answers). ok is false when it is absent or not a number.
func numberExtra(tok *oauth2.Token, key string) (float64, bool) {
	switch v := tok.Extra(key).(type) {
	case float64:
		return v, true
	case int64:
		return float64(v), true
	}
	return 0, false
}

// String and GoString keep the client secret out of any accidental %v or %#v.
func (s *oidcSigner) String() string {
	return "nomad.oidcSigner{method:" + string(s.method) + ", client:" + s.clientID + "}"
}
func (s *oidcSigner) GoString() string { return s.String() }
