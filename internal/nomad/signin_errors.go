package nomad

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"unicode"

	"golang.org/x/oauth2"
)

// Grant names, as the grant_type values the realm sees; they name the grant in error details.
const (
	grantPassword          = "password"
	grantRefreshToken      = "refresh_token"
	grantClientCredentials = "client_credentials"
)

// maxKeycloakDescription bounds error_description in a detail: Keycloak's are one short sentence.
const maxKeycloakDescription = 200

// oauthErrorCode is what an OAuth error code may look like (RFC 6749 §5.2 allows a little more;
// every code a realm sends is within this). Anything else is not shown.
var oauthErrorCode = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// refusedForCredentials are the token endpoint's errors (RFC 6749 §5.2) that only a change of
// credentials or realm settings can fix: a spent, revoked or expired refresh token or a wrong
// password (invalid_grant), a wrong client or secret (invalid_client), a client that may not use
// this grant (unauthorized_client, unsupported_grant_type: "direct access grants" or "service
// accounts" disabled), or a scope it may not have.
var refusedForCredentials = map[string]bool{
	"invalid_grant":          true,
	"invalid_client":         true,
	"unauthorized_client":    true,
	"unsupported_grant_type": true,
	"invalid_scope":          true,
}

// keycloakRefusal is the Detail of a refused grant, built from the error code and description
// only: never from the rest of the answer, which is the realm's to fill (oauth2.RetrieveError's
// own message includes the raw body).
func keycloakRefusal(grantType, code, description string) string {
	if !oauthErrorCode.MatchString(code) {
		code = "unrecognised error"
	}
	detail := fmt.Sprintf("Keycloak refused the %s grant: %s", grantType, code)
	if d := sanitizeDescription(description); d != "" {
		detail += ": " + d
	}
	return detail
}

// sanitizeDescription keeps an error_description fit for a condition message: one line of
// printable characters, bounded. Redaction follows in newError.
func sanitizeDescription(s string) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case unicode.IsSpace(r):
			return ' '
		case !unicode.IsPrint(r):
			return -1
		}
		return r
	}, strings.TrimSpace(s))
	if len(s) > maxKeycloakDescription {
		s = strings.ToValidUTF8(s[:maxKeycloakDescription], "") + "…"
	}
	return s
}

// tokenEndpointError classifies a failed exchange with the realm's token endpoint. rec holds the
// answer's status (0: none arrived). Classification uses the status and RetrieveError's
// ErrorCode/ErrorDescription fields, never oauth2's error strings.
func (c *HTTPClient) tokenEndpointError(parent context.Context, grantType string, rec *keycloakExchange, err error) *Error {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.Response == nil {
		if rec.status >= 200 && rec.status < 300 {
			// oauth2 could not use a 2xx answer: not JSON, or no access_token in it.
			return c.newError(opLogin, CodeTransient, rec.status,
				"unreadable answer from the realm's token endpoint: not JSON, or no access_token")
		}
		// No answer (or its body could not be read). oauth2 returns the transport's error as
		// is; it names the token endpoint's URL, which holds no credential.
		return c.transportError(parent, opLogin, fmt.Errorf("the realm's token endpoint: %w", err))
	}
	status := re.Response.StatusCode
	refusal := keycloakRefusal(grantType, re.ErrorCode, re.ErrorDescription)
	var code Code
	switch {
	case status >= 200 && status < 300:
		// An error object in a 2xx answer: not what any realm does; treat it as unreadable.
		return c.newError(opLogin, CodeTransient, status, "unreadable answer from the realm's token endpoint: an error in a success answer")
	case status >= 300 && status < 400:
		return c.newError(opLogin, CodeBadRequest, status, fmt.Sprintf(
			"the realm's token endpoint redirected to %q; check the issuerURL", re.Response.Header.Get("Location")))
	case status == http.StatusRequestTimeout, status == http.StatusTooManyRequests, status >= 500:
		e := c.newError(opLogin, CodeTransient, status, fmt.Sprintf("the realm's token endpoint answered HTTP %d", status))
		e.RetryAfter = c.retryAfter(re.Response.Header.Get("Retry-After"))
		return e
	case status == http.StatusNotFound:
		// The discovered endpoint is gone (the realm moved, a proxy changed): the next sign-in
		// discovers it again, and a wrong issuer then shows as CodeIssuerInvalid.
		return c.newError(opLogin, CodeTransient, status, "the realm's token endpoint answered HTTP 404; it will be discovered again")
	case refusedForCredentials[re.ErrorCode], status == http.StatusUnauthorized:
		code = CodeCredentialsInvalid // 401 is the client's authentication failing, whatever the code
	default:
		code = CodeBadRequest
	}
	return c.newError(opLogin, code, status, refusal)
}

// keycloakErrorInException finds Keycloak's refusal inside NOMAD's 500 for the password grant:
// NOMAD turns a Keycloak 400 into {"detail":{"exception":"400: b'{\"error\":...}'", ...}}. ok is
// true when the exception starts with Keycloak's 400 or carries an OAuth error object; only the
// error code and description are taken from it. server_error and temporarily_unavailable are
// Keycloak's own transient failures (RFC 6749 §5.2), not a refusal.
func keycloakErrorInException(body []byte) (code, description string, ok bool) {
	var env struct {
		Detail struct {
			Exception string `json:"exception"`
		} `json:"detail"`
	}
	if json.Unmarshal(body, &env) != nil {
		return "", "", false
	}
	exc := strings.TrimSpace(env.Detail.Exception)
	code = quotedField(exc, "error")
	description = quotedField(exc, "error_description")
	if code == "server_error" || code == "temporarily_unavailable" {
		return "", "", false
	}
	status400 := strings.HasPrefix(exc, "400") && (len(exc) == 3 || exc[3] < '0' || exc[3] > '9')
	return code, description, status400 || oauthErrorCode.MatchString(code)
}

// quotedField reads "name":"value" out of text that may be JSON inside a Python bytes repr (so
// not parseable as JSON itself). The value stops at the first quote or backslash; that loses an
// escaped character in a description, never anything else.
func quotedField(text, name string) string {
	re := fieldPatterns[name]
	m := re.FindStringSubmatch(text)
	if m == nil {
		return ""
	}
	return m[1]
}

var fieldPatterns = map[string]*regexp.Regexp{
	"error":             regexp.MustCompile(`"error"\s*:\s*"([^"\\]{0,256})`),
	"error_description": regexp.MustCompile(`"error_description"\s*:\s*"([^"\\]{0,1000})`),
}
