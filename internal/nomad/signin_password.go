package nomad

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
)

// passwordSigner runs the password grant through NOMAD's own POST {root}/v1/auth/token
// (MethodPassword). Unlike the realm's token endpoint, this is a NOMAD request: it passes the
// connection's guard and rate limiter like any other.
type passwordSigner struct{ c *HTTPClient }

// tokenReply is /auth/token's answer: the full OIDC set (V-B/C) or just access_token and token_type
// (M2024). Only what we use is decoded.
type tokenReply struct {
	AccessToken string   `json:"access_token"`
	ExpiresIn   *float64 `json:"expires_in"`
}

func (s passwordSigner) signIn(ctx context.Context) (grant, error) {
	c := s.c
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
		return grant{}, err
	}
	if !rep.ok() {
		return grant{}, c.classify(opLogin, rep)
	}
	var tr tokenReply
	if err := json.Unmarshal(rep.body, &tr); err != nil {
		return grant{}, c.badAnswer(opLogin, rep, "not JSON")
	}
	if tr.AccessToken == "" {
		return grant{}, c.badAnswer(opLogin, rep, "no access_token")
	}
	var expiresIn float64
	if tr.ExpiresIn != nil {
		expiresIn = *tr.ExpiresIn
	}
	// The refresh token NOMAD passes on is not used (the next sign-in runs the password grant
	// again), so RefreshTokenExpiresAt stays zero.
	state := SignIn{Method: MethodPassword, Account: c.username, At: start}
	if claims, ok := UnverifiedClaims(tr.AccessToken); ok {
		state.UserID = claims.Sub
		if claims.PreferredUsername != "" {
			state.Account = claims.PreferredUsername
		}
	}
	return grant{
		accessToken: tr.AccessToken,
		start:       start,
		lifetime:    accessTokenLifetime(expiresIn, tr.ExpiresIn != nil),
		state:       state,
	}, nil
}
