package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
)

// The authorization-code flow with PKCE through a loopback redirect (RFC 8252), as kubectl
// oidc-login and gh auth login do it: the plugin listens on 127.0.0.1, the browser signs in at the
// realm and comes back to http://127.0.0.1:<port>/callback with a code, and the plugin exchanges the
// code (and the PKCE verifier) for tokens. No token is ever written to any output.

// oidcEndpoints are what the realm's discovery document says the flow needs.
type oidcEndpoints struct {
	Authorization string `json:"authorization_endpoint"`
	Token         string `json:"token_endpoint"`
}

// discover reads {issuer}/.well-known/openid-configuration.
func discover(ctx context.Context, hc *http.Client, issuer string) (oidcEndpoints, error) {
	u := strings.TrimRight(issuer, "/") + "/.well-known/openid-configuration"
	var ep oidcEndpoints
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return ep, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return ep, fmt.Errorf("OIDC discovery at %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return ep, fmt.Errorf("OIDC discovery at %s: HTTP %d (is spec.credentials.oidc.issuerURL the realm's issuer?)", u, resp.StatusCode)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&ep); err != nil {
		return ep, fmt.Errorf("OIDC discovery at %s: %w", u, err)
	}
	if ep.Authorization == "" || ep.Token == "" {
		return ep, fmt.Errorf("OIDC discovery at %s: no authorization_endpoint or token_endpoint", u)
	}
	return ep, nil
}

// browserLogin is one sign-in in a browser.
type browserLogin struct {
	issuer, clientID, clientSecret string
	// idpHint, when set, is sent as kc_idp_hint: Keycloak goes straight to that identity provider.
	idpHint string
	// listenPort is the loopback port; 0 picks a free one.
	listenPort int
	timeout    time.Duration
	// openBrowser opens the URL; nil only prints it (--no-browser).
	openBrowser func(string) error
	errOut      io.Writer
	httpClient  *http.Client
}

// loginTokens is what the token endpoint answered. Its fields are secrets: never print them.
type loginTokens struct {
	refreshToken string
	idToken      string
}

// run signs in: it prints the URL, waits for the browser's callback and exchanges the code.
func (b *browserLogin) run(ctx context.Context) (*loginTokens, error) {
	hc := b.httpClient
	if hc == nil {
		hc = http.DefaultClient
	}
	// --timeout bounds the whole sign-in, discovery included: a black-holed issuer must not hang.
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	ep, err := discover(ctx, hc, b.issuer)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(b.listenPort)))
	if err != nil {
		return nil, fmt.Errorf("listen for the sign-in callback on 127.0.0.1:%d: %w", b.listenPort, err)
	}
	defer ln.Close()
	redirect := fmt.Sprintf("http://%s/callback", ln.Addr().String())

	cfg := &oauth2.Config{
		ClientID:     b.clientID,
		ClientSecret: b.clientSecret,
		Endpoint:     oauth2.Endpoint{AuthURL: ep.Authorization, TokenURL: ep.Token, AuthStyle: oauth2.AuthStyleInParams},
		RedirectURL:  redirect,
		Scopes:       []string{"openid", "offline_access"},
	}
	if b.clientSecret != "" {
		// A confidential client: client_secret_basic, which Keycloak accepts by default.
		cfg.Endpoint.AuthStyle = oauth2.AuthStyleInHeader
	}
	state, err := randomState()
	if err != nil {
		return nil, err
	}
	verifier := oauth2.GenerateVerifier()
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier)}
	if b.idpHint != "" {
		opts = append(opts, oauth2.SetAuthURLParam("kc_idp_hint", b.idpHint))
	}
	authURL := cfg.AuthCodeURL(state, opts...)

	exchangeCtx := context.WithValue(ctx, oauth2.HTTPClient, hc)
	cb := &callback{state: state, done: make(chan callbackResult, 1), exchange: func(code string) (*loginTokens, error) {
		tok, err := cfg.Exchange(exchangeCtx, code, oauth2.VerifierOption(verifier))
		if err != nil {
			return nil, tokenEndpointError(err)
		}
		return tokensOf(tok)
	}}
	mux := http.NewServeMux()
	mux.Handle("/callback", cb)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer func() {
		shut, stop := context.WithTimeout(context.Background(), 5*time.Second)
		defer stop()
		_ = srv.Shutdown(shut) // lets the page of the callback reach the browser
	}()

	fmt.Fprintf(b.errOut, "Open this URL to sign in: %s\n", authURL)
	if b.openBrowser != nil {
		if err := b.openBrowser(authURL); err != nil {
			fmt.Fprintf(b.errOut, "Could not open a browser (%v): open the URL above yourself.\n", err)
		}
	}
	fmt.Fprintf(b.errOut, "Waiting for the sign-in at %s (for at most %s)...\n", redirect, b.timeout)
	select {
	case r := <-cb.done:
		return r.tokens, r.err
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, fmt.Errorf("no sign-in within %s (--timeout): the browser never came back to %s", b.timeout, redirect)
		}
		return nil, ctx.Err()
	}
}

// callback answers the browser's redirect once: the first request to /callback decides.
type callback struct {
	state    string
	exchange func(code string) (*loginTokens, error)
	once     sync.Once
	done     chan callbackResult
}

type callbackResult struct {
	tokens *loginTokens
	err    error
}

func (c *callback) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	handled := false
	c.once.Do(func() {
		handled = true
		tokens, err := c.handle(r.URL.Query())
		if err != nil {
			page(w, http.StatusBadRequest, "Sign-in failed", err.Error()+". Nothing was stored; see the terminal.")
		} else {
			page(w, http.StatusOK, "Signed in; you can close this window", "kubectl nomadtoken stores the refresh token in the connection's Secret.")
		}
		c.done <- callbackResult{tokens, err}
	})
	if !handled {
		page(w, http.StatusConflict, "Sign-in already handled", "This sign-in was already answered; see the terminal.")
	}
}

func (c *callback) handle(q url.Values) (*loginTokens, error) {
	if q.Get("state") != c.state {
		return nil, errors.New("the sign-in callback's state does not match the one sent (a stale or forged redirect); run login again")
	}
	if e := q.Get("error"); e != "" {
		msg := "the realm refused the sign-in: " + e
		if d := q.Get("error_description"); d != "" {
			msg += " (" + d + ")"
		}
		return nil, errors.New(msg)
	}
	code := q.Get("code")
	if code == "" {
		return nil, errors.New("the sign-in callback carries no code")
	}
	return c.exchange(code)
}

func page(w http.ResponseWriter, status int, title, text string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	fmt.Fprintf(w, "<!doctype html><html><head><meta charset=\"utf-8\"><title>%[1]s</title></head>"+
		"<body><h1>%[1]s</h1><p>%[2]s</p></body></html>\n", html.EscapeString(title), html.EscapeString(text))
}

// tokensOf keeps what login needs from the token endpoint's answer; a refresh token is required.
func tokensOf(tok *oauth2.Token) (*loginTokens, error) {
	if tok.RefreshToken == "" {
		return nil, errors.New("the realm returned no refresh token: does the client allow the offline_access scope?")
	}
	id, _ := tok.Extra("id_token").(string)
	return &loginTokens{refreshToken: tok.RefreshToken, idToken: id}, nil
}

// tokenEndpointError says what the token endpoint refused, from its error code and description
// only: the raw body is never repeated.
func tokenEndpointError(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		msg := "the realm's token endpoint refused the code"
		if re.Response != nil {
			msg += fmt.Sprintf(" (HTTP %d)", re.Response.StatusCode)
		}
		if re.ErrorCode != "" {
			msg += ": " + re.ErrorCode
		}
		if re.ErrorDescription != "" {
			msg += " (" + re.ErrorDescription + ")"
		}
		return errors.New(msg)
	}
	return fmt.Errorf("exchanging the code at the realm's token endpoint: %w", err)
}

func randomState() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// openBrowser opens url in the desktop's browser, best effort; it does not wait for the browser.
func openBrowser(url string) error {
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		cmd = exec.Command("open", url)
	case "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", url)
	default:
		cmd = exec.Command("xdg-open", url)
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	go func() { _ = cmd.Wait() }()
	return nil
}
