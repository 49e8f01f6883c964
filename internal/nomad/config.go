package nomad

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/time/rate"
	"k8s.io/utils/clock"
)

// DefaultRequestTimeout bounds one HTTP exchange when Config.RequestTimeout is zero.
const DefaultRequestTimeout = 30 * time.Second

// DefaultUserAgent is sent when Config.UserAgent is empty.
const DefaultUserAgent = "nomad-token-operator"

// Config describes one connection to a NOMAD deployment: one bot account, one cached access token,
// one rate limiter. Build it from a NomadConnection and keep the resulting HTTPClient for as long as
// the connection's spec and credentials do not change.
type Config struct {
	// URL is the API root, e.g. "https://nomad.example.org/nomad-oasis/api". A trailing "/" or "/v1"
	// is accepted and removed. Only http and https are allowed, and credentials never go in the URL.
	URL string
	// PATPath says where the PAT routes live; "" means PATPathAuto.
	PATPath PATPath
	// KnownPATPath, for PATPathAuto, is where an earlier client found the PAT routes (a previous
	// process, as the connection's status records it). It is used without detecting again, so that a
	// restart costs NOMAD no openapi.json fetch per connection; a wrong one heals itself like a stale
	// detection: the first PAT route that answers 404 makes the client detect anew.
	KnownPATPath PATPath
	// Method is how the client signs in; "" means MethodPassword.
	Method CredentialMethod
	// Username and Password are the bot account's, used only for the password grant at /v1/auth/token
	// (MethodPassword).
	Username string
	Password string
	// OIDC is the realm and its credentials, for MethodRefreshToken and MethodClientCredentials.
	OIDC OIDCConfig
	// CABundle is PEM, added to the system pool for TLS. It cannot be combined with HTTPClient.
	CABundle []byte
	// HTTPClient overrides the transport (tests, proxies). When nil, a client that does not follow
	// redirects is built: a redirected POST would silently turn into a GET.
	HTTPClient *http.Client
	// Clock is used for token expiry, Retry-After dates and client-side list filtering; nil = real.
	Clock clock.PassiveClock
	// LatencyClock times each request for the Observer; nil = real. It is not Clock on purpose:
	// tests move Clock (days ahead, or frozen) while a real exchange takes real time.
	LatencyClock clock.PassiveClock
	// Limiter, when set, is waited on before every HTTP request to NOMAD (its /auth/token and
	// detection included). Requests to the realm (discovery, token endpoint) do not wait for it.
	// Share one Limiter between every caller of the same NOMAD connection.
	Limiter *rate.Limiter
	// Guard, when set, protects this connection (and the callers sharing it) from a slow or dead
	// NOMAD (not from its realm's Keycloak): a bound on requests in flight, a circuit breaker, and a
	// bounded wait for Limiter (guard.go). Without it, Limiter is waited on for as long as
	// RequestTimeout allows.
	Guard *GuardOptions
	// RequestTimeout bounds each HTTP exchange (rate-limiter wait included), on top of the caller's
	// context. Zero means DefaultRequestTimeout.
	RequestTimeout time.Duration
	// UserAgent is sent with every request; "" means DefaultUserAgent.
	UserAgent string
	// Log receives structured, token-free logs (logins, path detection). Zero value discards.
	Log logr.Logger
	// Observer, when set, is told about every request sent and every login (the operator's
	// metrics); it belongs to this connection alone.
	Observer Observer
}

// String hides the password, the client secret and the refresh token, so logging a Config by
// accident cannot leak them.
func (c Config) String() string {
	return fmt.Sprintf("nomad.Config{URL:%q, PATPath:%q, Method:%q, Username:%q, Password:%q, OIDC:%s, CABundle:%d bytes}",
		c.URL, c.PATPath, c.Method, c.Username, redacted(c.Password), c.OIDC, len(c.CABundle))
}

// GoString keeps %#v from printing the secrets as well.
func (c Config) GoString() string { return c.String() }

// String hides the client secret and the refresh token.
func (o OIDCConfig) String() string {
	return fmt.Sprintf("{IssuerURL:%q, ClientID:%q, ClientSecret:%q, RefreshToken:%q}",
		o.IssuerURL, o.ClientID, redacted(o.ClientSecret), redacted(o.RefreshToken))
}

// GoString keeps %#v from printing them as well.
func (o OIDCConfig) GoString() string { return o.String() }

// redacted shows whether a secret is set, never what it is.
func redacted(secret string) string {
	if secret == "" {
		return ""
	}
	return "<redacted>"
}

// HTTPClient is the Client implementation that talks to a real NOMAD server. It is safe for
// concurrent use; every caller shares its access token, PAT path and rate limiter.
type HTTPClient struct {
	root     string // normalised API root, without "/v1"
	patMode  PATPath
	method   CredentialMethod
	username string // MethodPassword
	password string // MethodPassword
	issuer   string // the OIDC methods: IssuerURL without a trailing "/"
	clientID string // the OIDC methods
	secret   string // the client secret, "" for a public client
	// refreshSub is the sub claim of the starting refresh token (MethodRefreshToken), "" if it is
	// not a JWT; it names the account before any sign-in (Account).
	refreshSub string
	hc         *http.Client
	clock      clock.PassiveClock
	latency    clock.PassiveClock // Config.LatencyClock
	limiter    *rate.Limiter
	guard      *guard // nil: only limiter
	timeout    time.Duration
	userAgent  string
	log        logr.Logger
	observer   Observer // nil: none

	signer  signer
	refresh *refreshTokens // MethodRefreshToken only
	tokens  *tokenSource
	paths   *pathResolver
	offset  *clockOffset // NOMAD's clock against ours, from its answers' Date header
}

var _ Client = (*HTTPClient)(nil)

// String names the connection without any credential (fmt would otherwise print every field).
// Value receivers, so that formatting a dereferenced client is covered too.
func (c HTTPClient) String() string {
	if c.method == MethodPassword {
		return fmt.Sprintf("nomad.HTTPClient{root:%q, user:%q}", c.root, c.username)
	}
	return fmt.Sprintf("nomad.HTTPClient{root:%q, method:%s, issuer:%q, client:%q}", c.root, c.method, c.issuer, c.clientID)
}

// GoString keeps %#v from printing the credentials or the cached access token.
func (c HTTPClient) GoString() string { return c.String() }

// New validates cfg and returns a client. It makes no network call; use Check for that.
func New(cfg Config) (*HTTPClient, error) {
	root, err := NormalizeURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	mode := cfg.PATPath
	switch mode {
	case "":
		mode = PATPathAuto
	case PATPathAuto, PATPathPats, PATPathAuthPats:
	default:
		return nil, configError("PAT path %q is not one of %s, %s, %s", mode, PATPathAuto, PATPathPats, PATPathAuthPats)
	}
	creds, err := checkCredentials(cfg)
	if err != nil {
		return nil, err
	}
	hc := cfg.HTTPClient
	switch {
	case hc != nil && len(cfg.CABundle) > 0:
		return nil, configError("CABundle cannot be combined with a custom HTTPClient; configure the CA in its transport")
	case hc == nil:
		hc, err = defaultHTTPClient(cfg.CABundle)
		if err != nil {
			return nil, err
		}
	}
	c := &HTTPClient{
		root:      root,
		patMode:   mode,
		method:    creds.method,
		username:  creds.username,
		password:  creds.password,
		issuer:    creds.issuer,
		clientID:  creds.clientID,
		secret:    creds.secret,
		hc:        hc,
		clock:     cfg.Clock,
		latency:   cfg.LatencyClock,
		limiter:   cfg.Limiter,
		timeout:   cfg.RequestTimeout,
		userAgent: cfg.UserAgent,
		log:       cfg.Log,
		observer:  cfg.Observer,
		offset:    &clockOffset{},
	}
	if c.clock == nil {
		c.clock = clock.RealClock{}
	}
	if c.latency == nil {
		c.latency = clock.RealClock{}
	}
	if c.timeout <= 0 {
		c.timeout = DefaultRequestTimeout
	}
	if c.userAgent == "" {
		c.userAgent = DefaultUserAgent
	}
	if c.log.GetSink() == nil {
		c.log = logr.Discard()
	}
	if cfg.Guard != nil {
		c.guard = newGuard(*cfg.Guard, cfg.Limiter)
	}
	c.signer = passwordSigner{c: c}
	if c.method != MethodPassword {
		oidc := &oidcSigner{c: c, method: c.method, clientID: c.clientID, clientSecret: c.secret,
			discovery: &discovery{c: c, issuer: c.issuer}}
		if c.method == MethodRefreshToken {
			c.refresh = newRefreshTokens(cfg.OIDC.RefreshToken)
			oidc.refresh, oidc.onRotated = c.refresh, cfg.OIDC.RefreshTokenRotated
			if claims, ok := UnverifiedClaims(cfg.OIDC.RefreshToken); ok {
				c.refreshSub = claims.Sub
			}
		}
		c.signer = oidc
	}
	c.tokens = &tokenSource{c: c}
	c.paths = newPathResolver(mode)
	if mode == PATPathAuto && (cfg.KnownPATPath == PATPathPats || cfg.KnownPATPath == PATPathAuthPats) {
		c.paths.set(cfg.KnownPATPath)
	}
	return c, nil
}

// configError reports a Config that New refuses, as an *Error so that CodeOf does not take it for
// a transient failure.
func configError(format string, args ...any) *Error {
	return &Error{Op: "config", Code: CodeInvalidConfig, Detail: fmt.Sprintf(format, args...)}
}

// NormalizeURL turns what a user writes in a NomadConnection into the API root this package appends
// "/v1/..." to: scheme and host required, http or https only, no credentials, query or fragment, and
// without a trailing "/" or "/v1".
func NormalizeURL(raw string) (string, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return "", configError("URL is empty; expected the API root, e.g. https://nomad.example.org/nomad-oasis/api")
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error quotes the input, which is what the user typed; it is not a secret unless it
		// carries userinfo, which we refuse below anyway, so report only the parser's reason.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return "", configError("URL cannot be parsed: %v", err)
	}
	switch u.Scheme {
	case "http", "https":
	default:
		return "", configError("URL scheme %q is not supported; use https:// (or http:// for a local Oasis)", u.Scheme)
	}
	if u.Host == "" {
		return "", configError("URL has no host")
	}
	if u.User != nil {
		return "", configError("URL must not contain credentials; use the connection's credentials Secret")
	}
	if u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
		return "", configError("URL must not contain a query or fragment")
	}
	p := strings.TrimRight(u.Path, "/")
	p = strings.TrimSuffix(p, "/v1")
	u.Path = strings.TrimRight(p, "/")
	u.RawPath = ""
	return u.String(), nil
}

func defaultHTTPClient(caPEM []byte) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if len(caPEM) > 0 {
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(caPEM) {
			return nil, configError("CABundle contains no PEM certificate")
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{
		Transport: tr,
		// NOMAD never redirects its API; a redirect means the URL is wrong (http→https, a missing
		// base path) and is reported as such rather than followed with a rewritten method.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}, nil
}
