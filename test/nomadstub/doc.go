// Package nomadstub is a faithful in-process stand-in for the parts of NOMAD (the FAIR
// materials-science data platform, nomad-lab.eu; not HashiCorp Nomad) that the operator talks to:
// the OIDC password grant at {base}/v1/auth/token and the Personal Access Token (PAT) API under
// {base}/v1/pats and {base}/v1/auth/pats, plus {base}/v1/openapi.json for path detection.
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
// # Test hooks
//
// On *Server: AddUser, the limit and path setters, ExpireAccessTokens, InjectFault/ClearFaults,
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
//
// # Not modelled, on purpose
//
//   - Legacy simple/app tokens (HS256 {user, exp}), Upload-Token, and real Keycloak JWTs (kid,
//     issuer, JWKS): access tokens are opaque strings known to the server. The rarer auth failures
//     (unknown user 403, user lookup 500, authorized_users) cannot happen.
//   - Keycloak's refresh grant: NOMAD has no refresh endpoint; refresh_token/id_token are null.
//   - Version variants other than the V-A list shape (LegacyList): no V-A revoke-sets-expired_at,
//     no V-A/B float `{max}` or unvalidated scopes, no M2024 token response.
//   - Python's set order in "Invalid scopes: {...}" (sorted here; clients must match a prefix) and
//     the exact text of Python's JSONDecodeError (the 422's type and msg are exact).
//   - Automatic pruning (use PrunePAT), anonymous-readable endpoints (none are served), HTTP/2.
package nomadstub
