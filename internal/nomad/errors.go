package nomad

import (
	"errors"
	"fmt"
	"time"
)

// Code says what went wrong in terms the controllers act on. User codes need someone to change a spec,
// a Secret or NOMAD's configuration; retrying them only spends calls on someone's NOMAD server.
type Code string

const (
	// CodeCredentialsInvalid: the sign-in was refused for its credentials: /auth/token answered 401
	// "Incorrect username or password" (or a 500 carrying Keycloak's 400, e.g. "Account is not fully
	// set up"), or the realm's token endpoint refused the grant (invalid_grant, invalid_client, ...).
	CodeCredentialsInvalid Code = "CredentialsInvalid"
	// CodeIssuerInvalid: the issuerURL does not serve an OpenID discovery document (404, not JSON,
	// no token_endpoint, or one naming another issuer).
	CodeIssuerInvalid Code = "IssuerInvalid"
	// CodeUnauthorized: a PAT endpoint still answered 401 after one fresh login.
	CodeUnauthorized Code = "Unauthorized"
	// CodeForbidden: 403, e.g. "You are not authorized to access this Oasis" or "Missing scopes".
	CodeForbidden Code = "Forbidden"
	// CodeNotFound: 404 "Token not found or does not belong to the user." (the id is wrong or pruned).
	CodeNotFound Code = "NotFound"
	// CodePathNotFound: 404 "Not Found" from the framework: the PAT path prefix is wrong.
	CodePathNotFound Code = "PathNotFound"
	// CodeInvalidScopes: 400 for an empty, unknown or tokens:* scope list.
	CodeInvalidScopes Code = "InvalidScopes"
	// CodeLifetimeExceeded: 400 for a lifetime over pat_max_lifetime, <= 0, or infinite when disabled.
	CodeLifetimeExceeded Code = "LifetimeExceeded"
	// CodeTokenLimitReached: 400 "Maximum number of active PAT (N) reached."
	CodeTokenLimitReached Code = "TokenLimitReached"
	// CodeNotActive: 400 "Cannot rotate an expired/revoked token."
	CodeNotActive Code = "NotActive"
	// CodeBadRequest: any other 400 or 422 NOMAD rejected.
	CodeBadRequest Code = "BadRequest"
	// CodeTransient: 5xx, 429, timeouts, resets, unreadable answers: retry with backoff.
	CodeTransient Code = "Transient"
	// CodeInvalidConfig: New or NormalizeURL rejected the Config (URL, PAT path, CA bundle, missing
	// credentials) before any request; the NomadConnection or its Secrets must change.
	CodeInvalidConfig Code = "InvalidConfig"
)

// Error is every error the HTTP client returns for a NOMAD answer or a failed exchange.
// Detail is NOMAD's "detail" string (never a token); Message() is safe for conditions and Events.
type Error struct {
	Op         string        // "create", "get", "list", "revoke", "rotate", "login", "detect-path", "config"
	Code       Code          // classification
	StatusCode int           // HTTP status, 0 when no answer arrived
	Detail     string        // NOMAD's detail, or a description of the transport failure
	RetryAfter time.Duration // from a 429/503 Retry-After header, 0 when absent

	// cause is the transport error behind a Transient Error without an answer (a timeout, a reset),
	// so that errors.Is(err, context.Canceled) works. It never carries a credential: transport
	// errors name the method and URL only, and the URL never holds credentials.
	cause error
}

func (e *Error) Error() string {
	if e.StatusCode == 0 {
		return fmt.Sprintf("nomad %s: %s", e.Op, e.Detail)
	}
	return fmt.Sprintf("nomad %s: HTTP %d: %s", e.Op, e.StatusCode, e.Detail)
}

// Unwrap exposes the transport failure behind the error, if any.
func (e *Error) Unwrap() error { return e.cause }

// Transient reports whether retrying later may succeed without anyone changing anything.
func (e *Error) Transient() bool { return e.Code == CodeTransient }

// CodeOf returns the Code of err, CodeTransient for errors this package did not classify
// (a context deadline, say), and "" for nil.
func CodeOf(err error) Code {
	if err == nil {
		return ""
	}
	var ne *Error
	if errors.As(err, &ne) {
		return ne.Code
	}
	return CodeTransient
}

// IsNotFound reports whether err says the PAT id does not exist (or no longer exists) for this user.
func IsNotFound(err error) bool { return CodeOf(err) == CodeNotFound }

// IsTransient reports whether err is worth retrying with backoff.
func IsTransient(err error) bool { return err != nil && CodeOf(err) == CodeTransient }

// RetryAfterOf returns the server's requested wait, or 0.
func RetryAfterOf(err error) time.Duration {
	var ne *Error
	if errors.As(err, &ne) {
		return ne.RetryAfter
	}
	return 0
}
