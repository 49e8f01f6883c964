package nomad

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	testClientSecret = "client-s3cret-Xyz"
	testUserID       = "5b3d1e0c-0000-4000-8000-00000000b07"
	testRealmPath    = "/realms/nomad"
)

// jwtWith builds a JWT-shaped token (unsigned: only the payload matters here) with claims.
func jwtWith(claims map[string]any) string {
	payload, _ := json.Marshal(claims)
	return "eyJhbGciOiJSUzI1NiJ9." + base64.RawURLEncoding.EncodeToString(payload) + ".c2lnbmF0dXJlLXNpZ25hdHVyZQ"
}

// refreshTokenN is Keycloak-like refresh token number n for the test user: a JWT with sub and exp.
func refreshTokenN(n int) string {
	return jwtWith(map[string]any{"sub": testUserID, "typ": "Refresh", "jti": fmt.Sprintf("rt-%d", n),
		"exp": testEpoch.Add(30 * 24 * time.Hour).Unix()})
}

// fakeRealm is a minimal Keycloak realm for the unit tests: a discovery document and a token
// endpoint serving refresh_token and client_credentials grants, issuing access tokens that the
// fakeNomad nomad accepts. Faithful behaviour is the stand-in realm's job; this one produces exact
// answers and counts exact requests.
type fakeRealm struct {
	t     *testing.T
	nomad *fakeNomad
	ts    *httptest.Server

	mu               sync.Mutex
	discoveries      int
	tokenRequests    int
	forms            []map[string]string // the token requests' forms
	rotate           bool                // issue a new refresh token on each refresh, revoking the old
	validRefresh     map[string]bool
	issued           int // refresh tokens issued (refreshTokenN(1) is the starting one)
	accessN          int
	expiresIn        int
	refreshExpiresIn int
	tokenDelay       time.Duration
	tokenStatus      int    // 0: normal behaviour
	tokenBody        string // with tokenStatus
	tokenHeader      map[string]string
	discoveryStatus  int    // 0: the document
	discoveryBody    string // with discoveryStatus
	tokenPath        string // where the token endpoint is served (and announced)
	lastAccess       string
}

func newFakeRealm(t *testing.T, nomad *fakeNomad) *fakeRealm {
	t.Helper()
	r := &fakeRealm{t: t, nomad: nomad, validRefresh: map[string]bool{refreshTokenN(1): true}, issued: 1,
		expiresIn: 300, refreshExpiresIn: 1800, tokenPath: testRealmPath + "/protocol/openid-connect/token"}
	r.ts = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.ts.Close)
	return r
}

func (r *fakeRealm) issuer() string { return r.ts.URL + testRealmPath }

func (r *fakeRealm) serve(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case req.Method == http.MethodGet && req.URL.Path == testRealmPath+"/.well-known/openid-configuration":
		r.discoveries++
		if r.discoveryStatus != 0 {
			writeJSON(w, r.discoveryStatus, r.discoveryBody)
			return
		}
		writeJSON(w, 200, fmt.Sprintf(`{"issuer":%q,"token_endpoint":%q,"jwks_uri":"x"}`, r.issuer(), r.ts.URL+r.tokenPath))
	case req.Method == http.MethodPost && req.URL.Path == r.tokenPath:
		r.token(w, req)
	default:
		writeJSON(w, 404, `{"error":"Unable to find matching target resource method"}`)
	}
}

// token serves the token endpoint; r.mu is held.
func (r *fakeRealm) token(w http.ResponseWriter, req *http.Request) {
	r.tokenRequests++
	_ = req.ParseForm()
	form := map[string]string{}
	for k := range req.PostForm {
		form[k] = req.PostForm.Get(k)
	}
	r.forms = append(r.forms, form)
	if r.tokenDelay > 0 {
		r.mu.Unlock()
		time.Sleep(r.tokenDelay)
		r.mu.Lock()
	}
	for k, v := range r.tokenHeader {
		w.Header().Set(k, v)
	}
	if r.tokenStatus != 0 {
		writeJSON(w, r.tokenStatus, r.tokenBody)
		return
	}
	if req.Header.Get("Authorization") != "" {
		writeJSON(w, 400, `{"error":"invalid_request","error_description":"the client must authenticate in the body in these tests"}`)
		return
	}
	var refresh string
	switch form["grant_type"] {
	case "refresh_token":
		if form["client_id"] != DefaultClientID {
			writeJSON(w, 401, `{"error":"unauthorized_client","error_description":"Invalid client or Invalid client credentials"}`)
			return
		}
		if !r.validRefresh[form["refresh_token"]] {
			writeJSON(w, 400, `{"error":"invalid_grant","error_description":"Token is not active"}`)
			return
		}
		refresh = form["refresh_token"]
		if r.rotate {
			delete(r.validRefresh, refresh)
			r.issued++
			refresh = refreshTokenN(r.issued)
			r.validRefresh[refresh] = true
		}
	case "client_credentials":
		if form["client_id"] != "nomad-bot" || form["client_secret"] != testClientSecret {
			writeJSON(w, 401, `{"error":"invalid_client","error_description":"Invalid client or Invalid client credentials"}`)
			return
		}
	default:
		writeJSON(w, 400, `{"error":"unsupported_grant_type","error_description":"Unsupported grant_type"}`)
		return
	}
	r.accessN++
	user := "bot"
	if form["grant_type"] == "client_credentials" {
		user = "service-account-nomad-bot"
	}
	access := jwtWith(map[string]any{"sub": testUserID, "preferred_username": user, "n": r.accessN})
	r.lastAccess = access
	r.nomad.mu.Lock()
	r.nomad.valid[access] = true
	r.nomad.mu.Unlock()
	answer := map[string]any{"access_token": access, "token_type": "Bearer", "expires_in": r.expiresIn,
		"refresh_expires_in": r.refreshExpiresIn, "id_token": jwtWith(map[string]any{"sub": testUserID, "kind": "id"})}
	if refresh != "" {
		answer["refresh_token"] = refresh
	}
	body, _ := json.Marshal(answer)
	writeJSON(w, 200, string(body))
}

func (r *fakeRealm) counts() (discoveries, tokenRequests int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.discoveries, r.tokenRequests
}

func (r *fakeRealm) set(f func(r *fakeRealm)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f(r)
}

// withRefreshToken and withClientCredentials configure a test client for the realm.
func withRefreshToken(r *fakeRealm, rotated func(ctx context.Context, previous, current string) error) func(*Config) {
	return func(c *Config) {
		c.Method = MethodRefreshToken
		c.OIDC = OIDCConfig{IssuerURL: r.issuer(), RefreshToken: refreshTokenN(1), RefreshTokenRotated: rotated}
	}
}

func withClientCredentials(r *fakeRealm) func(*Config) {
	return func(c *Config) {
		c.Method = MethodClientCredentials
		c.OIDC = OIDCConfig{IssuerURL: r.issuer(), ClientID: "nomad-bot", ClientSecret: testClientSecret}
	}
}

// bearersSeen records which access tokens NOMAD saw, to check that one was not used too early.
type bearersSeen struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (b *bearersSeen) handler(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	if b.seen == nil {
		b.seen = map[string]bool{}
	}
	b.seen[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")] = true
	b.mu.Unlock()
	writeJSON(w, 200, patJSON(r.PathValue("id"), "n", testEpoch, nil, false))
}

func (b *bearersSeen) has(tok string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.seen[tok]
}
