package nomad

import (
	"context"
	"time"
)

// CredentialMethod is how a client signs in to NOMAD's Keycloak realm (the NomadConnection's
// spec.credentials.method).
type CredentialMethod string

const (
	// MethodPassword runs the password grant through NOMAD's own POST {api}/v1/auth/token.
	MethodPassword CredentialMethod = "Password"
	// MethodRefreshToken exchanges a refresh token at the realm's token endpoint
	// (grant_type=refresh_token), writing a rotated one back through OIDCConfig.RefreshTokenRotated.
	MethodRefreshToken CredentialMethod = "RefreshToken"
	// MethodClientCredentials signs in as a confidential client's service account at the realm's
	// token endpoint (grant_type=client_credentials).
	MethodClientCredentials CredentialMethod = "ClientCredentials"
)

// DefaultClientID is NOMAD's own public client.
const DefaultClientID = "nomad_public"

// OIDCConfig is NOMAD's Keycloak realm and what the client signs in to it with, for MethodRefreshToken
// and MethodClientCredentials (nomad-pat-api.md §9a). NOMAD accepts any RS256 access token of its
// realm for the PAT API, so the token endpoint is used directly, never NOMAD's /auth/token.
type OIDCConfig struct {
	// IssuerURL is the realm's issuer; the token endpoint is read (once per client) from
	// {IssuerURL}/.well-known/openid-configuration.
	IssuerURL string
	// ClientID is the realm client; "" means DefaultClientID.
	ClientID string
	// ClientSecret is the client's secret: required for MethodClientCredentials, and for
	// MethodRefreshToken only with a confidential client.
	ClientSecret string
	// RefreshToken is the refresh token to start from (MethodRefreshToken).
	RefreshToken string
	// RefreshTokenRotated is called when the realm answered a refresh with a new refresh token (its
	// "Revoke Refresh Token" setting: the previous one is dead from now on), before the new access
	// token is used for anything. The callee stores current durably (the credentials Secret). An
	// error fails the sign-in as Transient; the client keeps current in memory, uses it for the next
	// refresh and calls RefreshTokenRotated again for it before any access token is used.
	RefreshTokenRotated func(ctx context.Context, previous, current string) error
}

// SignIn is what the client's last successful sign-in showed about its credentials.
type SignIn struct {
	Method CredentialMethod
	// Account is the user NOMAD sees: the access token's preferred_username, or for MethodPassword
	// the username when the access token does not say.
	Account string
	// UserID is the access token's sub (NOMAD's user_id), "" when the access token is opaque.
	UserID string
	// At is when the sign-in was made (the client's clock).
	At time.Time
	// RefreshTokenExpiresAt is when the refresh token or its offline session ends unless used
	// again, as Keycloak said (refresh_expires_in > 0, or the refresh token's exp); zero if unknown,
	// and always for MethodPassword and MethodClientCredentials, which use no refresh token.
	RefreshTokenExpiresAt time.Time
}
