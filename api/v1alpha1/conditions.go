package v1alpha1

// Condition types and reasons are API: alerts, dashboards and scripts match on them.

// ConditionReady is the one condition of both kinds.
//
// On a NomadToken, Ready=True means the Secret holds an active PAT minted for the current spec.
// Ready=False means the operator cannot provide one; the reason says why and whether a person must act:
//   - Progressing: a PAT is being issued or replaced (transient, no action needed).
//   - SecretConflict: a Secret of that name exists and is not owned by this NomadToken; rename one of them.
//   - SecretTemplateInvalid: a key of spec.secret.template.data does not parse or execute (the message
//     names it). Checked before any NOMAD call: no PAT is minted, and the Secret is not rewritten; a
//     current PAT keeps serving until it expires, unrenewed.
//   - ConnectionNotFound / ConnectionNotReady: the referenced NomadConnection is missing or not Ready
//     (or its Secrets do not resolve, e.g. CredentialsNotLabelled, which the message names).
//   - CredentialsInvalid: NOMAD or its Keycloak realm refused the connection's credentials: a wrong
//     password (or an account without one: ORCID, GitHub, Google), a pending required action, a spent,
//     revoked or expired refresh token, a wrong client secret. The connection's message says what to do
//     for its method, e.g. the `kubectl nomadtoken login` command that signs it in again.
//   - InvalidScopes, LifetimeExceeded, TokenLimitReached, Forbidden, NomadRejected: NOMAD refused the
//     request; the message carries NOMAD's own words and what to change. Not retried until the spec,
//     the connection or its Secret changes.
//   - NomadUnavailable: NOMAD answered 5xx/429 or not at all; retried with exponential backoff. While
//     the connection's circuit breaker is open (consecutive failures), the message says so and no
//     request is sent until its cool-down ends (docs/performance.md).
//   - RevokeFailed: on deletion, the PAT could not be revoked; the message says how to proceed.
//   - RevokedWithoutReplacement: revoke-now revoked the PAT although NOMAD refused (or failed) to mint
//     its successor; the Secret holds a dead token until a new PAT can be minted. The message carries
//     NOMAD's refusal.
//   - AccountChanged (Events only): a replaced PAT belongs to another NOMAD user than the connection
//     now logs in as, so the operator cannot revoke it; revoke it in NOMAD.
//
// On a NomadConnection, Ready=True (reason Connected) means the credentials work, the API answers and
// the PAT path is known. Ready=False reasons: SecretNotFound, SecretKeyMissing, CredentialsNotLabelled,
// CredentialsInvalid, RefreshTokenNotStored, Unreachable, PATPathNotFound, Forbidden, InvalidCABundle,
// InvalidSpec.
const ConditionReady = "Ready"

// ConditionReconciling and ConditionStalled are the standard conditions that GitOps tools read
// (kstatus, and so Flux; the Argo CD health check in config/argocd), with abnormal-true polarity: they
// are present only while True. The operator derives both from Ready, in one place
// (controllers/gitops_status.go), so they never disagree with it:
//   - Ready=False with a reason that retrying, or another object appearing, can fix (Progressing,
//     NomadUnavailable, ConnectionNotFound, ConnectionNotReady, SecretNotFound, Unreachable): Reconciling
//     is True (kstatus InProgress, Argo CD Progressing).
//   - Ready=False with a reason only a person can fix (a wrong spec, Secret, policy or NOMAD account):
//     Stalled is True (kstatus Failed, Argo CD Degraded), and status.observedGeneration is the
//     generation judged, so a tool knows the verdict is about the current spec.
//   - Ready=True: neither (kstatus Current, Argo CD Healthy).
//
// Both carry Ready's reason and message. docs/gitops.md lists every reason's verdict.
const (
	ConditionReconciling = "Reconciling"
	ConditionStalled     = "Stalled"
)

// ConditionInsecureTransport is True on a NomadConnection whose URL is plain http: the bot password,
// access tokens and raw PATs cross the network unencrypted. Fine for a local Oasis, not elsewhere.
const ConditionInsecureTransport = "InsecureTransport"

// Reasons of NomadToken conditions.
const (
	ReasonIssued         = "Issued"
	ReasonProgressing    = "Progressing"
	ReasonSecretConflict = "SecretConflict"
	// ReasonSecretRejected: the API server refuses to write the token's Secret, and not for a reason
	// that passes by itself (invalid labels or annotations, a full quota, an admission policy, an
	// immutable Secret). No PAT is minted until the spec changes or the hold-off ends.
	ReasonSecretRejected     = "SecretRejected"
	ReasonConnectionNotFound = "ConnectionNotFound"
	ReasonConnectionNotReady = "ConnectionNotReady"
	ReasonCredentialsInvalid = "CredentialsInvalid"
	ReasonInvalidScopes      = "InvalidScopes"
	ReasonLifetimeExceeded   = "LifetimeExceeded"
	ReasonTokenLimitReached  = "TokenLimitReached"
	ReasonForbidden          = "Forbidden"
	ReasonNomadRejected      = "NomadRejected"
	ReasonNomadUnavailable   = "NomadUnavailable"
	ReasonRevokeFailed       = "RevokeFailed"
	ReasonAccountChanged     = "AccountChanged"
	// ReasonRevokedWithoutReplacement: see ConditionReady.
	ReasonRevokedWithoutReplacement = "RevokedWithoutReplacement"
	// ReasonConnectionNotAllowed: the token's namespace may not use the referenced connection (a
	// ClusterNomadConnection whose allowedNamespaces leave it out). No NOMAD call is made.
	ReasonConnectionNotAllowed = "ConnectionNotAllowed"
	// ReasonSecretTemplateInvalid: spec.secret.template.data does not parse, or does not execute with
	// a dry data set; the message names the key. Checked before any NOMAD call, so no PAT is minted.
	ReasonSecretTemplateInvalid = "SecretTemplateInvalid"
	// ReasonPolicyViolation: the token asks for more than the connection's policy allows (a scope,
	// a lifetime, or one token too many); the message names the field and the limit. No NOMAD call
	// is made.
	ReasonPolicyViolation = "PolicyViolation"
)

// ConditionRestartTargets on a NomadToken with spec.rotation.restartTargets is False (reason
// RestartTargetNotOptedIn) while a target lacks the AnnotationRestartOnRotation opt-in naming the
// token, and True (reason RestartTargetsOptedIn) once every existing target opted in. It is absent
// when the token has no restart targets, and does not affect Ready.
const ConditionRestartTargets = "RestartTargets"

// Reasons of the RestartTargets condition.
const (
	ReasonRestartTargetNotOptedIn = "RestartTargetNotOptedIn"
	ReasonRestartTargetsOptedIn   = "RestartTargetsOptedIn"
)

// ConditionConsumersMoved on a NomadToken with spec.rotation.waitForConsumers says whether the PAT an
// Overlap rotation replaced may go: True (reason ConsumersMoved) when no replaced PAT waits; Unknown
// (reason GracePeriod) during the fixed gracePeriod; False past it while the replaced PAT is kept:
// OldTokenInUse (NOMAD saw it used within unusedFor; the message has the last use and the latest
// revoke time), OldTokenUseUnknown (its use could not be read, e.g. NOMAD is down), or
// RolloutInProgress (a restart target has not finished rolling out). It does not affect Ready: the
// Secret holds a working PAT all along.
const ConditionConsumersMoved = "ConsumersMoved"

// Reasons of the ConsumersMoved condition.
const (
	ReasonConsumersMoved     = "ConsumersMoved"
	ReasonGracePeriod        = "GracePeriod"
	ReasonOldTokenInUse      = "OldTokenInUse"
	ReasonOldTokenUseUnknown = "OldTokenUseUnknown"
	ReasonRolloutInProgress  = "RolloutInProgress"
)

// ConditionNearPATLimit on a connection is True when the bot account's active PATs reach the manager's
// --pat-limit-warning-ratio of NOMAD's per-user cap (--nomad-pat-limit): Overlap rotation needs a free
// slot per token, so at the cap it falls back to NOMAD's rotate endpoint or fails.
const ConditionNearPATLimit = "NearPATLimit"

// Reasons of the NearPATLimit condition.
const (
	ReasonNearPATLimit   = "NearPATLimit"
	ReasonWithinPATLimit = "WithinPATLimit"
)

// Reasons of Events on a NomadToken, beyond the condition reasons above (which are also emitted as
// Warning Events when they first appear). Scripts and alerts match on them.
const (
	// EventIssued: a PAT was minted and the Secret holds it (Normal).
	EventIssued = "Issued"
	// EventAdopted: a NomadToken without status (restored from a backup, or re-created) took over its
	// Secret, or the valid PAT the Secret holds, instead of minting one (Normal).
	EventAdopted = "Adopted"
	// EventRotated: a PAT replaced an earlier one by rotation (Normal).
	EventRotated = "Rotated"
	// EventPreviousRevoked: a replaced PAT was revoked in NOMAD (Normal).
	EventPreviousRevoked = "PreviousRevoked"
	// EventPreviousExpired: a replaced PAT left the revoke queue because it expired (Normal).
	EventPreviousExpired = "PreviousExpired"
	// EventRevokeWaiting: a replaced PAT could not be revoked yet and stays queued (Warning).
	EventRevokeWaiting = "RevokeWaiting"
	// EventRevoked: the PAT of a NomadToken being deleted was revoked (Normal).
	EventRevoked = "Revoked"
	// EventRevokeAbandoned: a NomadToken being deleted gave up on a replaced PAT that no connection
	// can revoke (none logs in as the NOMAD user that owns it); it stays active until it expires and
	// is listed in the minting connection's status.abandonedPATs (Warning).
	EventRevokeAbandoned = "RevokeAbandoned"
	// EventRevokeNowRequested: revoke-now was carried out (Warning: it is incident response).
	EventRevokeNowRequested = "RevokeNowRequested"
	// EventFallbackToRotate: NOMAD's PAT cap left no room for an overlapping PAT, so NOMAD's rotate
	// endpoint was used and the old PAT stopped working at once (Warning).
	EventFallbackToRotate = "FallbackToRotate"
	// EventPreviousRevokedAtPATLimit: NOMAD's PAT cap refused a new PAT while the previous one was kept
	// (its grace period or its consumers' wait); the previous one was revoked first to make room, and
	// the current one was replaced as usual (Warning).
	EventPreviousRevokedAtPATLimit = "PreviousRevokedAtPATLimit"
	// EventRotateFailed: NOMAD's rotate endpoint revoked the old PAT and refused its successor (Warning).
	EventRotateFailed = "RotateFailed"
	// EventRevokedOrphan: a PAT whose raw token never reached the Secret was revoked (Warning).
	EventRevokedOrphan = "RevokedOrphan"
	// EventOldTokenInUse: past gracePeriod, NOMAD still sees the replaced PAT used, so it is kept until
	// its consumers move, at the latest until maxGracePeriod (Normal, once per wait). A wait that starts
	// for another reason is told with the ConsumersMoved condition's reason instead
	// (ReasonRolloutInProgress, ReasonOldTokenUseUnknown).
	EventOldTokenInUse = "OldTokenInUse"
	// EventMaxGracePeriodReached: the replaced PAT was revoked at maxGracePeriod although its consumers
	// had not moved; the message names its last use (Warning).
	EventMaxGracePeriodReached = "MaxGracePeriodReached"
	// EventRestartTargetNotFound: a restart target does not exist (Warning).
	EventRestartTargetNotFound = "RestartTargetNotFound"
	// EventRestartedTarget: a restart target was rolled for a new PAT (Normal).
	EventRestartedTarget = "RestartedTarget"
	// EventRestartFailed: rolling a restart target failed; it is retried (Warning). Ready is not affected.
	EventRestartFailed = "RestartFailed"
	// EventRestartTargetNotOptedIn: a restart target lacks the AnnotationRestartOnRotation opt-in
	// naming this NomadToken, so it was not restarted (Warning).
	EventRestartTargetNotOptedIn = "RestartTargetNotOptedIn"
)

// Reasons of Events on a NomadConnection.
const (
	// EventDeletionWaiting: the connection is being deleted and waits for the NomadTokens (or queued
	// revocations) that still need it (Normal).
	EventDeletionWaiting = "DeletionWaiting"
	// EventOrphansFound: the bot account holds active PATs with the operator's marker that no
	// NomadToken accounts for; they are listed in status.orphanedPATs (Warning).
	EventOrphansFound = "OrphansFound"
	// EventOrphanRevoked: the orphan sweep revoked such a PAT (Normal).
	EventOrphanRevoked = "OrphanRevoked"
)

// Reasons of NomadConnection conditions (CredentialsInvalid and Forbidden are shared with NomadToken).
const (
	ReasonConnected        = "Connected"
	ReasonSecretNotFound   = "SecretNotFound"
	ReasonSecretKeyMissing = "SecretKeyMissing"
	ReasonUnreachable      = "Unreachable"
	ReasonPATPathNotFound  = "PATPathNotFound"
	ReasonInvalidCABundle  = "InvalidCABundle"
	ReasonInvalidSpec      = "InvalidSpec"
	// ReasonCredentialsNotLabelled: the credentials or CA Secret lacks the LabelCredentials opt-in.
	ReasonCredentialsNotLabelled = "CredentialsNotLabelled"
	// ReasonRefreshTokenNotStored: the realm rotated the refresh token and the credentials Secret
	// refuses the new one (immutable, a policy, or RBAC without patch on Secrets). The new token lives
	// in the operator's memory only; the connection signs in with it once the Secret takes it.
	ReasonRefreshTokenNotStored = "RefreshTokenNotStored"
	ReasonPlainHTTP             = "PlainHTTP"
	ReasonTLS                   = "TLS"
	// ReasonURLNotAllowed: a namespaced NomadConnection's spec.url, or the OIDC issuer its method
	// signs in at, is not among the addresses the operator allows such connections to call
	// (--allowed-nomad-urls). Nothing is called, and no Secret is read.
	ReasonURLNotAllowed = "URLNotAllowed"
)

// Labels, annotations and the finalizer the operator puts on objects.
const (
	// LabelManagedBy marks every Secret the operator writes; the operator watches only Secrets with it.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// ManagedByValue is LabelManagedBy's value.
	ManagedByValue = "nomad-token-operator"

	// LabelRetained marks a Secret released by a NomadToken deleted with deletionPolicy Retain: the PAT
	// it holds (AnnotationTokenID) was kept on purpose, and the orphan sweep leaves it alone while the
	// Secret exists.
	LabelRetained = "tokens.nomad-operator.dev/retained"

	// LabelCredentials: "true" on a Secret opts it in as NOMAD credentials or a CA bundle. The operator
	// reads no other Secret a connection names, so a connection's author cannot point it at an
	// arbitrary Secret of the namespace.
	LabelCredentials = "tokens.nomad-operator.dev/credentials"
	// AnnotationRestartOnRotation on a Deployment, StatefulSet or DaemonSet opts it in as a restart
	// target: its value lists, comma-separated, the NomadTokens (of the workload's namespace) whose
	// rotations may restart it. "*" is not accepted: each token is named.
	AnnotationRestartOnRotation = "tokens.nomad-operator.dev/restart-on-rotation"

	// AnnotationTokenID on the Secret is the id of the PAT it holds.
	AnnotationTokenID = "tokens.nomad-operator.dev/token-id"
	// AnnotationExpiresAt on the Secret is the PAT's expiry (RFC 3339).
	AnnotationExpiresAt = "tokens.nomad-operator.dev/expires-at"
	// AnnotationIssuedAt on the Secret is the PAT's creation time (RFC 3339).
	AnnotationIssuedAt = "tokens.nomad-operator.dev/issued-at"
	// AnnotationPreviousTokenID on the Secret is the id of the replaced PAT spec.secret.previousKey
	// holds; it goes with that key when the PAT is revoked.
	AnnotationPreviousTokenID = "tokens.nomad-operator.dev/previous-token-id"
	// AnnotationPreviousRevokeBy on the Secret is when that PAT is revoked at the latest (RFC 3339).
	AnnotationPreviousRevokeBy = "tokens.nomad-operator.dev/previous-revoke-by"

	// AnnotationRotate on a NomadToken asks for a rotation now, with the normal strategy. Any new value
	// triggers one rotation; the value handled is kept in status, so re-applying it does nothing.
	AnnotationRotate = "tokens.nomad-operator.dev/rotate"
	// AnnotationRevokeNow on a NomadToken is incident response: issue a new PAT, write it, and revoke
	// the current one at once, without grace. Handled once per value, like AnnotationRotate.
	AnnotationRevokeNow = "tokens.nomad-operator.dev/revoke-now"
	// AnnotationSignIn on a NomadConnection asks it to sign in again now, with its credentials Secret
	// as it is (kubectl nomadtoken login sets a fresh value after it stored a refresh token). The
	// value a successful sign-in answered is echoed in status.credentials.signInRequest.
	AnnotationSignIn = "tokens.nomad-operator.dev/sign-in"
	// AnnotationRestartedAt on a restart target's pod template is when the operator last restarted the
	// workload for a new PAT (RFC 3339); changing it rolls the workload.
	AnnotationRestartedAt = "tokens.nomad-operator.dev/restarted-at"

	// AnnotationHeldBy on a credentials or CA Secret lists, comma-separated, the UIDs of the
	// connections that hold it with FinalizerInUse; the finalizer goes when the last one lets go.
	AnnotationHeldBy = "tokens.nomad-operator.dev/held-by"

	// FinalizerRevoke holds a NomadToken until its PAT is revoked (or deletionPolicy is Retain).
	FinalizerRevoke = "tokens.nomad-operator.dev/revoke"
	// FinalizerInUse holds a NomadConnection while NomadTokens (or queued revocations) depend on it,
	// and its credentials and CA Secrets while such a connection needs them, so that a namespace
	// deletion or a GitOps prune in any order still lets every PAT be revoked.
	FinalizerInUse = "tokens.nomad-operator.dev/in-use"

	// DefaultSecretKey is the Secret data key of the raw PAT unless spec.secret.key says otherwise.
	DefaultSecretKey = "token"
)
