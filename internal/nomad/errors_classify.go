package nomad

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Error.Op values.
const (
	opLogin  = "login"
	opCreate = "create"
	opGet    = "get"
	opList   = "list"
	opRevoke = "revoke"
	opRotate = "rotate"
	opDetect = "detect-path"
)

// maxRetryAfterSeconds caps the server's requested wait (one day).
const maxRetryAfterSeconds = 24 * 60 * 60

// detailLimit keeps a runaway 422 list or HTML page from becoming a multi-kilobyte condition message.
const detailLimit = 1024

var (
	// patPattern matches raw PATs (nomad-pat-api.md §6) and anything long enough to be one truncated.
	patPattern = regexp.MustCompile(`nomad_pat_[A-Za-z0-9_-]{20,}`)
	// jwtPattern matches a JWT such as a Keycloak access token: three base64url parts, the first
	// being a JSON header ("eyJ" = base64 of `{"`).
	jwtPattern = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*`)
)

// Redact removes anything that looks like a raw PAT or a JWT from s. Every Error this package builds
// has passed through it; controllers may use it on any text that came from NOMAD.
func Redact(s string) string {
	s = patPattern.ReplaceAllString(s, "nomad_pat_<redacted>")
	return jwtPattern.ReplaceAllString(s, "<redacted-jwt>")
}

// withheldDetail replaces a whole detail that contained one of the client's own secrets.
const withheldDetail = "details withheld: they contained one of the connection's secrets (password, client secret, " +
	"refresh or access token); if every error says this, the password or secret also occurs in the URL or in the " +
	"server's messages: choose a longer, random one"

// redact is Redact plus the secrets this client knows literally: its password and its access token.
// A detail containing one of them is withheld as a whole, not substituted in place: the text around
// a "<redacted>" marker gives the secret away whenever it also occurs in harmless text (password
// "oasis" in "http://h/nomad-oasis/api" would read "nomad-<redacted>"). Raw PATs and JWTs are
// matched by shape, so replacing them in place reveals nothing and keeps the rest of the detail.
// Secrets shorter than 4 characters are not looked for (they would withhold almost every message,
// and a 3-character secret protects nothing).
func (c *HTTPClient) redact(s string) string {
	if c.containsSecret(s) {
		return withheldDetail
	}
	return Redact(s)
}

// containsSecret reports whether s holds one of the client's secrets, also in the escaped forms in
// which a URL or an echoed form body would carry them: the password or client secret, the current
// access token, and for MethodRefreshToken every refresh token it knows and an access token held
// back by a pending rotation.
func (c *HTTPClient) containsSecret(s string) bool {
	secrets := []string{c.password, c.secret}
	if tok := c.tokens.current(); tok != "" {
		secrets = append(secrets, tok)
	}
	if c.refresh != nil {
		secrets = append(secrets, c.refresh.all()...)
		if tok := c.refresh.pendingAccessToken(); tok != "" {
			secrets = append(secrets, tok)
		}
	}
	for _, secret := range secrets {
		if len(secret) < 4 {
			continue // see redact
		}
		for _, form := range []string{secret, url.QueryEscape(secret), url.PathEscape(secret)} {
			if strings.Contains(s, form) {
				return true
			}
		}
	}
	return false
}

// newError is the only way this client builds an *Error, so that every Detail is redacted.
func (c *HTTPClient) newError(op string, code Code, status int, detail string) *Error {
	detail = c.redact(detail)
	if len(detail) > detailLimit {
		detail = strings.ToValidUTF8(detail[:detailLimit], "") + "…"
	}
	return &Error{Op: op, Code: code, StatusCode: status, Detail: detail}
}

// badAnswer reports a 2xx answer we could not use. It is transient: the server (or a proxy) said
// something unexpected, and for create/rotate the PAT may exist anyway.
func (c *HTTPClient) badAnswer(op string, rep *reply, what string) *Error {
	return c.newError(op, CodeTransient, rep.status, "unreadable answer: "+what)
}

// classify turns a non-2xx answer into an *Error.
func (c *HTTPClient) classify(op string, rep *reply) *Error {
	detail, structured := parseDetail(rep.body)
	if detail == "" {
		detail = http.StatusText(rep.status)
		if !structured {
			detail += " (the answer is not NOMAD's JSON)"
		}
	}
	var code Code
	switch s := rep.status; {
	case s >= 300 && s < 400:
		code = CodeBadRequest
		detail = fmt.Sprintf("redirected to %q; set the connection URL to the API root the server redirects to",
			rep.header.Get("Location"))
	case s == http.StatusBadRequest:
		code = classify400(detail)
	case s == http.StatusUnauthorized:
		code = CodeUnauthorized
		if op == opLogin {
			code = CodeCredentialsInvalid
		}
	case s == http.StatusForbidden:
		code = CodeForbidden
	case s == http.StatusNotFound:
		// FastAPI's own 404 for an unknown route is exactly "Not Found"; an ingress 404 is not JSON at
		// all. Both mean the path is wrong, never that a token is gone: only NOMAD's own detail does.
		code = CodeNotFound
		if !structured || detail == "Not Found" {
			code = CodePathNotFound
			if op == opLogin {
				detail += "; is the URL the NOMAD API root (e.g. https://host/nomad-oasis/api)?"
			}
		}
	case s == http.StatusInternalServerError && op == opLogin:
		// NOMAD answers a Keycloak 400 to its password grant (required actions pending, direct
		// grants disabled) with a 500 carrying Keycloak's error in detail.exception: that is the
		// account's problem, not an outage. Any other 500 is.
		code = CodeTransient
		if kc, desc, ok := keycloakErrorInException(rep.body); ok {
			code, detail = CodeCredentialsInvalid, keycloakRefusal(grantPassword, kc, desc)
		}
	case s == http.StatusRequestTimeout, s == http.StatusTooManyRequests, s >= 500:
		code = CodeTransient
	default:
		code = CodeBadRequest
	}
	e := c.newError(op, code, rep.status, detail)
	if code == CodeTransient {
		e.RetryAfter = c.retryAfter(rep.header.Get("Retry-After"))
	}
	return e
}

// classify400 maps NOMAD's 400 details (nomad-pat-api.md §4.1, §4.5) to codes. Prefixes, because the
// numbers and the Python set repr in some of them vary.
func classify400(detail string) Code {
	for _, r := range []struct {
		prefix string
		code   Code
	}{
		{"At least one scope must be selected.", CodeInvalidScopes},
		{"Invalid scopes:", CodeInvalidScopes},
		{"Personal access tokens are not allowed to operate on PATs.", CodeInvalidScopes},
		{"Cannot create an already expired token.", CodeLifetimeExceeded},
		{"Infinite tokens are disabled.", CodeLifetimeExceeded},
		{"Requested lifetime", CodeLifetimeExceeded},
		{"Maximum number of active PAT", CodeTokenLimitReached},
		{"Cannot rotate an expired/revoked token.", CodeNotActive},
	} {
		if strings.HasPrefix(detail, r.prefix) {
			return r.code
		}
	}
	return CodeBadRequest
}

// parseDetail reads FastAPI's {"detail": ...}: a string (400/401/403/404), a list of validation
// objects (422) or an object (NOMAD's 500). structured is false when the body is not that shape.
// For a 500 it returns the reason only; the one thing classify takes from the exception, Keycloak's
// refusal of a password grant, is read by keycloakErrorInException.
// Only msg and loc are kept from a 422 item: its "input" echoes the request, which for a login
// form includes the password.
func parseDetail(body []byte) (detail string, structured bool) {
	var env struct {
		Detail json.RawMessage `json:"detail"`
	}
	if json.Unmarshal(body, &env) != nil || len(env.Detail) == 0 {
		return "", false
	}
	var s string
	if json.Unmarshal(env.Detail, &s) == nil {
		return s, true
	}
	var items []struct {
		Loc []any  `json:"loc"`
		Msg string `json:"msg"`
	}
	if json.Unmarshal(env.Detail, &items) == nil {
		parts := make([]string, 0, len(items))
		for _, it := range items {
			loc := make([]string, 0, len(it.Loc))
			for _, l := range it.Loc {
				loc = append(loc, fmt.Sprint(l))
			}
			if len(loc) == 0 {
				parts = append(parts, it.Msg)
				continue
			}
			parts = append(parts, strings.Join(loc, ".")+": "+it.Msg)
		}
		return strings.Join(parts, "; "), true
	}
	var obj struct {
		Reason string `json:"reason"`
	}
	if json.Unmarshal(env.Detail, &obj) == nil {
		// The rest of NOMAD's 500 object is an exception and traceback: never useful to a user,
		// and the one place a server could echo something it should not.
		if obj.Reason == "" {
			return "unexpected server error", true
		}
		return obj.Reason, true
	}
	return "", true
}

// retryAfter reads a Retry-After header: delay-seconds or an HTTP-date (RFC 9110 §10.2.3).
func (c *HTTPClient) retryAfter(v string) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		n = min(n, maxRetryAfterSeconds) // a garbage value must not overflow a Duration
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(c.clock.Now()); d > 0 {
			return min(d, maxRetryAfterSeconds*time.Second) // the same cap as for seconds
		}
	}
	return 0
}
