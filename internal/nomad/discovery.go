package nomad

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
)

// maxDiscoveryBytes bounds the discovery document: Keycloak's is about 6 KiB.
const maxDiscoveryBytes = 1 << 20

// discoveryPath is appended to the issuer (OpenID Connect Discovery 1.0 §4).
const discoveryPath = "/.well-known/openid-configuration"

// discovery finds the realm's token endpoint once per client. The endpoint is forgotten only when
// an answer suggests it moved (the token endpoint answered 404), so steady state costs one
// discovery per client, not one per sign-in.
type discovery struct {
	c      *HTTPClient
	issuer string // as configured, without a trailing "/"

	mu       sync.Mutex
	tokenURL string // "" until discovered
}

// tokenEndpoint returns the cached token endpoint, discovering it first if needed.
func (d *discovery) tokenEndpoint(ctx context.Context) (string, error) {
	d.mu.Lock()
	u := d.tokenURL
	d.mu.Unlock()
	if u != "" {
		return u, nil
	}
	u, err := d.discover(ctx)
	if err != nil {
		return "", err
	}
	d.mu.Lock()
	d.tokenURL = u
	d.mu.Unlock()
	return u, nil
}

// forget drops the cached token endpoint, so that the next sign-in discovers it again.
func (d *discovery) forget() {
	d.mu.Lock()
	d.tokenURL = ""
	d.mu.Unlock()
}

// discoveryDoc is the part of the discovery document we use.
type discoveryDoc struct {
	Issuer        string `json:"issuer"`
	TokenEndpoint string `json:"token_endpoint"`
}

// discover GETs {issuer}/.well-known/openid-configuration. An answer that is not a discovery
// document for this issuer is CodeIssuerInvalid (someone must fix issuerURL); no answer, a 5xx, a
// 408 or a 429 is CodeTransient.
func (d *discovery) discover(parent context.Context) (string, error) {
	c := d.c
	docURL := d.issuer + discoveryPath
	var rec keycloakExchange
	ctx, cancel := context.WithTimeout(parent, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, docURL, nil)
	if err != nil {
		return "", d.invalid(0, "cannot build the request: "+err.Error())
	}
	resp, err := c.keycloakHTTPClient(&rec).Do(req)
	if err != nil {
		return "", c.transportError(parent, opLogin, fmt.Errorf("OpenID discovery at %s: %w", d.issuer, err))
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDiscoveryBytes+1))
	if err != nil {
		return "", c.transportError(parent, opLogin, fmt.Errorf("reading the OpenID discovery document of %s: %w", d.issuer, err))
	}
	switch s := resp.StatusCode; {
	case s == http.StatusRequestTimeout || s == http.StatusTooManyRequests || s >= 500:
		e := c.newError(opLogin, CodeTransient, s, fmt.Sprintf("OpenID discovery at %s answered HTTP %d", d.issuer, s))
		e.RetryAfter = c.retryAfter(resp.Header.Get("Retry-After"))
		return "", e
	case s < 200 || s > 299:
		return "", d.invalid(s, fmt.Sprintf("%s answered HTTP %d", docURL, s))
	case len(body) > maxDiscoveryBytes:
		return "", d.invalid(s, fmt.Sprintf("the answer of %s is larger than %d bytes", docURL, maxDiscoveryBytes))
	}
	var doc discoveryDoc
	if json.Unmarshal(body, &doc) != nil {
		return "", d.invalid(resp.StatusCode, fmt.Sprintf("the answer of %s is not JSON", docURL))
	}
	// OpenID Connect Discovery §4.3: the issuer in the document must be the one it was fetched
	// for. Only a trailing "/" is forgiven: Keycloak's issuer has none, users may type one. A
	// mismatch usually means a public/internal URL mix-up, and NOMAD would refuse the tokens
	// (it checks iss), so it is reported now rather than as a 401 later.
	if strings.TrimRight(doc.Issuer, "/") != d.issuer {
		return "", d.invalid(resp.StatusCode, fmt.Sprintf("the document names the issuer %q", label(doc.Issuer)))
	}
	if doc.TokenEndpoint == "" {
		return "", d.invalid(resp.StatusCode, "the document has no token_endpoint")
	}
	// The client secret and refresh token go to this URL: it gets the same rule as the issuer.
	if err := checkIssuerLikeURL(doc.TokenEndpoint); err != "" {
		return "", d.invalid(resp.StatusCode, "its token_endpoint "+err)
	}
	c.log.V(1).Info("discovered the realm's token endpoint", "issuer", d.issuer, "tokenEndpoint", doc.TokenEndpoint)
	return doc.TokenEndpoint, nil
}

// invalid is the CodeIssuerInvalid error for what the discovery showed.
func (d *discovery) invalid(status int, what string) *Error {
	return d.c.newError(opLogin, CodeIssuerInvalid, status,
		fmt.Sprintf("the issuerURL %s does not serve an OpenID discovery document: %s", d.issuer, what))
}
