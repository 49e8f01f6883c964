// Package nomadstub is a faithful in-process stand-in for the parts of NOMAD (the FAIR
// materials-science data platform, nomad-lab.eu; not HashiCorp Nomad) that the operator talks to:
// the OIDC password grant at {base}/v1/auth/token and the Personal Access Token (PAT) API under
// {base}/v1/pats and {base}/v1/auth/pats, plus {base}/v1/openapi.json for path detection, and
// NOMAD's Keycloak realm (below).
//
// The behaviour follows /work/shared/nomad-pat-api.md (the V-C/DOCS contract): field names, status
// codes and `detail` strings are byte-for-byte those of NOMAD's FastAPI app, including the order in
// which FastAPI reports problems: an undecodable JSON body (FastAPI's body step) and pagination
// model errors (raised inside a dependency) come first, then 401, then 403, then body/parameter
// 422s, then the service's 400s.
//
// The package deliberately does not import the operator's client (internal/nomad): a stand-in that
// shares code with the client it tests would agree with the client's bugs.
//
// # The Keycloak realm
//
// The same Server serves NOMAD's realm at /keycloak/auth/realms/{realm} (Options.Realm, default
// "nomad"; IssuerURL gives the issuer for a server URL), following nomad-pat-api.md §9a:
//
//	GET  {issuer}/.well-known/openid-configuration   absolute URLs from the request's Host
//	GET  {issuer}/protocol/openid-connect/certs      JWKS: one RSA 2048 key (kid, RS256, sig)
//	POST {issuer}/protocol/openid-connect/token      password, refresh_token, client_credentials,
//	                                                 authorization_code (PKCE S256); operation "realm_token"
//	GET  {issuer}/protocol/openid-connect/auth       no login form: signs in SetAuthorizeUser's user
//	                                                 and answers 302 redirect_uri?code=&state=&iss=
//
// Access and ID tokens are RS256 JWTs; refresh tokens are HS256 JWTs (typ "Refresh" or "Offline")
// backed by sessions that idle out on the Server's clock (SetSessionTimeouts), can be revoked
// (RevokeSessions), and, with SetRefreshTokenRotation, refuse a refresh token once used. Errors are
// Keycloak's {"error","error_description"} with its status codes; no error body holds a token.
// Clients: nomad_public (public, direct grants on) plus AddClient's; a client's service-account
// user is a NOMAD user like any other.
//
// NOMAD's side: the PAT API accepts a realm access token after NOMAD's checks (signature by kid,
// iss equal to the issuer as the request reaches the server, exp, iat not ahead of the clock; no
// aud/azp check), then 403 "You are logged in with an unknown user" for a realm-only account
// (AddRealmOnlyUser). /auth/token still issues opaque tokens, but its password check is the realm's:
// a pending required action (SetRequiredAction) or direct grants off for nomad_public
// (SetDirectGrants) give NOMAD's 500 with Keycloak's 400 inside detail.exception.
// ExpireAccessTokens ends both kinds of access token.
//
// # Test hooks
//
// On *Server: AddUser, the limit and path setters, ExpireAccessTokens, InjectFault/ClearFaults,
// the realm's AddClient, SetDirectGrants, SetRefreshTokenRotation, SetSessionTimeouts,
// IssueRefreshToken, RevokeSessions, SetRequiredAction, SetAuthorizeUser, AddRealmOnlyUser,
// LastIDPHint and Grants/GrantFailures (successful and refused token-endpoint exchanges per
// grant_type; NOMAD's /auth/token counts only in Logins),
// Calls/ResetCalls, InFlight, RequestLog/Requests (every request with its real arrival time and
// account, e.g. to check a client's rate limit; in-process only), and a view of the store (PATs,
// ActivePATs, Authenticates, RevokePAT, PrunePAT).
// For the binary cmd/nomad-stub and e2e tests the other hooks are HTTP routes under /_stub/, which
// is outside every NOMAD URL:
//
//	GET    /_stub/state                     users, their PATs (with "active"), config, call counts
//	POST   /_stub/clock/advance?by=720h     only with an *OffsetClock, else 409
//	POST   /_stub/authenticates             body: a raw token → {"active": bool}; no side effect
//	POST   /_stub/faults?op=create&times=1&status=503&retry_after=2s&lose_response=true&delay=1s&hold=200ms&hang=true&detail=...
//	DELETE /_stub/faults
//	POST   /_stub/revoke?id=...             out-of-band revoke (204, 404 if unknown)
//	POST   /_stub/prune?id=...              delete the document, as NOMAD's TTL index does
//	POST   /_stub/config?max_lifetime_days=N|none&max_active=N&pats=B&auth_pats=B&legacy_list=B
//	POST   /_stub/expire-access-tokens
//	POST   /_stub/users?username=...&password=...
//	GET    /_stub/calls, DELETE /_stub/calls
//	GET    /_stub/inflight                  requests each operation is handling right now
//	GET    /_stub/realm                     the realm: settings, clients (no secrets), sessions per user, grant counts
//	POST   /_stub/realm/clients?id=&secret=&service_account_user=&direct_grants=B
//	POST   /_stub/realm/direct-grants?client_id=&on=B
//	POST   /_stub/realm/config?rotate_refresh_tokens=B&sso_idle=D&offline_idle=D&offline_max=D
//	POST   /_stub/realm/refresh-tokens?username=&client_id=nomad_public&offline=B   → {"refresh_token": ...}
//	POST   /_stub/realm/revoke-sessions?username=
//	POST   /_stub/realm/required-action?username=&on=B   (on defaults to true)
//	POST   /_stub/realm/authorize-user?username=
//	POST   /_stub/realm/users?username=&password=        a realm-only account → {"user_id": ...}
//
// GET /_stub/state carries the realm too ("realm", see RealmState), and /_stub/calls counts the
// token endpoint as "realm_token".
//
// # Not modelled, on purpose
//
//   - Legacy simple/app tokens (HS256 {user, exp}) and Upload-Token. /auth/token's access tokens
//     are opaque strings known to the server (the realm's are real JWTs). The user lookup 500 and
//     authorized_users cannot happen; an unknown kid gives the common 401, not NOMAD's other text.
//   - NOMAD has no refresh endpoint: /auth/token's refresh_token/id_token are null; refresh at the
//     realm.
//   - In the realm: no login form, consent, logout endpoint, userinfo, introspection, device grant
//     or token exchange; no SSO session max lifespan (only the idle timeout); no key rotation; the
//     loopback redirect_uri rule applies to every client; the realm's keys are made on first use.
//   - Version variants other than the V-A list shape (LegacyList): no V-A revoke-sets-expired_at,
//     no V-A/B float `{max}` or unvalidated scopes, no M2024 token response.
//   - Python's set order in "Invalid scopes: {...}" (sorted here; clients must match a prefix) and
//     the exact text of Python's JSONDecodeError (the 422's type and msg are exact).
//   - Automatic pruning (use PrunePAT), anonymous-readable endpoints (none are served), HTTP/2.
package nomadstub
