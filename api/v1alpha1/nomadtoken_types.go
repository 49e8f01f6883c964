package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ConnectionRef names the connection a NomadToken's PAT is minted through.
type ConnectionRef struct {
	// name of the connection: an object name, so never one with a "/" (connection keys rely on it).
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	Name string `json:"name"`
	// kind of the connection: NomadConnection (default; in the NomadToken's namespace) or
	// ClusterNomadConnection (cluster-scoped; usable from the namespaces it allows).
	// +kubebuilder:validation:Enum=NomadConnection;ClusterNomadConnection
	// +kubebuilder:default=NomadConnection
	// +optional
	Kind string `json:"kind,omitempty"`
}

// RotationStrategy says how a PAT is replaced.
// +kubebuilder:validation:Enum=Overlap;Rotate
type RotationStrategy string

const (
	// RotationOverlap creates the new PAT, swaps it into the Secret, and revokes the old one after
	// gracePeriod, so consumers never hold a revoked token.
	RotationOverlap RotationStrategy = "Overlap"
	// RotationRotate uses NOMAD's rotate endpoint, which revokes the old PAT at once.
	RotationRotate RotationStrategy = "Rotate"
)

// RestartTarget is a workload in the NomadToken's namespace restarted after each rotation, if it opts
// in with the annotation tokens.nomad-operator.dev/restart-on-rotation naming the NomadToken.
type RestartTarget struct {
	// kind of the workload.
	// +kubebuilder:validation:Enum=Deployment;StatefulSet;DaemonSet
	Kind string `json:"kind"`
	// name of the workload.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
}

// WaitForConsumers keeps the PAT an Overlap rotation replaced until its consumers have moved to the
// new one: NOMAD no longer sees it used, and the restart targets finished rolling out.
// +kubebuilder:validation:XValidation:rule="duration(self.unusedFor) <= duration(self.maxGracePeriod)",message="unusedFor must not be longer than maxGracePeriod"
type WaitForConsumers struct {
	// unusedFor: after gracePeriod, the old PAT is revoked as soon as NOMAD has seen no use of it for
	// this long (its last_used_at is older, or was never set), e.g. 5m.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s')",message="unusedFor must be a positive duration, e.g. 5m"
	UnusedFor metav1.Duration `json:"unusedFor"`
	// maxGracePeriod: the old PAT is revoked at the latest this long after the Secret holds the new
	// one, used or not, e.g. 24h. At most 168h, as gracePeriod: the old PAT holds one of NOMAD's
	// per-user places all that time.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s')",message="maxGracePeriod must be a positive duration, e.g. 24h"
	// +kubebuilder:validation:XValidation:rule="duration(self) <= duration('168h')",message="maxGracePeriod must be at most 168h (7 days)"
	MaxGracePeriod metav1.Duration `json:"maxGracePeriod"`
}

// Rotation says when and how the PAT is replaced before it expires.
// +kubebuilder:validation:XValidation:rule="!(has(self.renewBefore) && has(self.renewBeforePercentage))",message="set at most one of renewBefore and renewBeforePercentage"
// +kubebuilder:validation:XValidation:rule="!has(self.waitForConsumers) || !has(self.strategy) || self.strategy == 'Overlap'",message="waitForConsumers needs strategy Overlap: NOMAD's rotate endpoint revokes the old PAT at once"
// +kubebuilder:validation:XValidation:rule="!has(self.waitForConsumers) || duration(self.waitForConsumers.maxGracePeriod) >= (has(self.gracePeriod) ? duration(self.gracePeriod) : duration('10m'))",message="waitForConsumers.maxGracePeriod must not be shorter than gracePeriod (default 10m)"
type Rotation struct {
	// renewBefore is how long before expiry the PAT is replaced, e.g. 240h.
	// Default: replace when 2/3 of the PAT's real lifetime has passed.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s')",message="renewBefore must be a positive duration, e.g. 240h"
	// +optional
	RenewBefore *metav1.Duration `json:"renewBefore,omitempty"`
	// renewBeforePercentage is the share of the PAT's lifetime, 1-99, left when it is replaced.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=99
	// +optional
	RenewBeforePercentage *int32 `json:"renewBeforePercentage,omitempty"`
	// strategy is Overlap (default: new PAT first, old revoked after gracePeriod) or Rotate
	// (NOMAD's rotate endpoint; the old PAT stops working at once).
	// +kubebuilder:default=Overlap
	// +optional
	Strategy RotationStrategy `json:"strategy,omitempty"`
	// gracePeriod is how long the old PAT stays valid after the Secret holds the new one
	// (Overlap only). Default 10m; 0s revokes the old PAT as soon as the Secret holds the new one.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// At most 168h (7 days): the old PAT stays active all that time, and on a shared bot account it
	// holds one of NOMAD's per-user places for every NomadToken of every tenant.
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('0s')",message="gracePeriod must not be negative"
	// +kubebuilder:validation:XValidation:rule="duration(self) <= duration('168h')",message="gracePeriod must be at most 168h (7 days)"
	// +optional
	GracePeriod *metav1.Duration `json:"gracePeriod,omitempty"`
	// restartTargets are workloads in this namespace restarted after each rotation, for pods that
	// read the token as an environment variable. A workload is restarted only if its annotation
	// tokens.nomad-operator.dev/restart-on-rotation lists this NomadToken's name (comma-separated;
	// "*" is not accepted); the RestartTargets condition names those that do not. At most 16: each is
	// read and patched after every rotation, within the same reconcile.
	// +kubebuilder:validation:MaxItems=16
	// +listType=atomic
	// +optional
	RestartTargets []RestartTarget `json:"restartTargets,omitempty"`
	// waitForConsumers keeps the replaced PAT past gracePeriod while NOMAD still sees it used, or a
	// restart target is still rolling out, up to maxGracePeriod (Overlap only).
	// +optional
	WaitForConsumers *WaitForConsumers `json:"waitForConsumers,omitempty"`
}

// An alias, not a type: the maxLength it puts on every label value bounds the cost the API server
// estimates for the CEL check of the values (an unbounded string is costed at the request size).

// LabelValue is a value of spec.secret.labels: at most 63 characters.
// +kubebuilder:validation:MaxLength=63
type LabelValue = string

// SecretDataTemplate renders extra data keys of the token's Secret.
type SecretDataTemplate struct {
	// data maps a data key to a Go text/template rendered with .Token (the raw PAT), .TokenID, .URL
	// (the connection's API root), .ExpiresAt (RFC 3339) and .Scopes. Keys may not equal
	// spec.secret.key or spec.secret.previousKey. A template that does not parse or execute gives
	// Ready=False, reason SecretTemplateInvalid, before any NOMAD call. At most 32 keys.
	// +kubebuilder:validation:MaxProperties=32
	// +kubebuilder:validation:XValidation:rule="self.all(k, k.size() <= 253 && k.matches('^[-._a-zA-Z0-9]+$'))",message="each template data key is a Secret data key: at most 253 alphanumerics, '-', '_' or '.'"
	// +kubebuilder:validation:XValidation:rule="self.all(k, self[k].size() <= 16384)",message="each template is at most 16 KiB"
	// +optional
	Data map[string]string `json:"data,omitempty"`
}

// SecretTemplate shapes the Secret that holds the raw PAT.
// Its DeepCopy is written by hand (secrettemplate_deepcopy.go): controller-gen's deepcopy does not
// follow the LabelValue alias and would copy no label.
// +kubebuilder:object:generate=false
// +kubebuilder:validation:XValidation:rule="!has(self.previousKey) || self.previousKey != (has(self.key) ? self.key : 'token')",message="previousKey must differ from key (default token)"
// +kubebuilder:validation:XValidation:rule="!has(self.template) || !has(self.template.data) || !((has(self.key) ? self.key : 'token') in self.template.data)",message="template.data must not set key (default token): the raw PAT goes there"
// +kubebuilder:validation:XValidation:rule="!has(self.template) || !has(self.template.data) || !has(self.previousKey) || !(self.previousKey in self.template.data)",message="template.data must not set previousKey"
type SecretTemplate struct {
	// name of the Secret, in the NomadToken's namespace. Default: the NomadToken's name.
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	// +optional
	Name string `json:"name,omitempty"`
	// key is the data key holding the raw PAT. Default "token".
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	// +optional
	Key string `json:"key,omitempty"`
	// previousKey, when set, is the data key that keeps the raw token an Overlap rotation replaced,
	// from the swap until that PAT is revoked, so a consumer can fall back to it. It must differ from
	// key. Not material: changing it rewrites the Secret and mints no PAT.
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	// +optional
	PreviousKey string `json:"previousKey,omitempty"`
	// template adds data keys rendered from the PAT (e.g. a client configuration or environment
	// variables), beside key.
	// +optional
	Template *SecretDataTemplate `json:"template,omitempty"`
	// labels are copied onto the Secret. Keys and values follow Kubernetes' label syntax (a key is an
	// optional DNS-subdomain prefix of at most 253 characters and "/", then a name of at most 63
	// alphanumerics, '-', '_' or '.', starting and ending alphanumeric; a value is such a name, or
	// empty), so the API server refuses here what it would otherwise refuse only at the Secret write.
	// Keys of the operator's own (tokens.nomad-operator.dev/, app.kubernetes.io/managed-by) are
	// refused. At most 64.
	// +kubebuilder:validation:MaxProperties=64
	// +kubebuilder:validation:XValidation:rule="self.all(k, k.size() <= 317 && (!k.contains('/') || k.indexOf('/') <= 253) && k.matches('^([a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$'))",message="each label key is an optional DNS-subdomain prefix (at most 253 characters) and '/', then a name of at most 63 characters: alphanumerics, '-', '_' or '.', starting and ending alphanumeric"
	// +kubebuilder:validation:XValidation:rule="self.all(k, self[k].size() <= 63 && self[k].matches('^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$'))",message="each label value is empty or at most 63 characters: alphanumerics, '-', '_' or '.', starting and ending alphanumeric (no spaces)"
	// +kubebuilder:validation:XValidation:rule="self.all(k, !k.startsWith('tokens.nomad-operator.dev/') && k != 'app.kubernetes.io/managed-by')",message="label keys under tokens.nomad-operator.dev/ and app.kubernetes.io/managed-by are the operator's own"
	// +optional
	Labels map[string]LabelValue `json:"labels,omitempty"`
	// annotations are copied onto the Secret. Keys follow the label key syntax; values are free, but
	// keys and values together stay within 256 KiB, as Kubernetes requires of an object's
	// annotations. Keys under tokens.nomad-operator.dev/ are the operator's own and refused. At most 64.
	// +kubebuilder:validation:MaxProperties=64
	// +kubebuilder:validation:XValidation:rule="self.all(k, k.size() <= 317 && (!k.contains('/') || k.indexOf('/') <= 253) && k.matches('^([a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$'))",message="each annotation key is an optional DNS-subdomain prefix (at most 253 characters) and '/', then a name of at most 63 characters: alphanumerics, '-', '_' or '.', starting and ending alphanumeric"
	// +kubebuilder:validation:XValidation:rule="self.map(k, k.size() + self[k].size()).sum() <= 262144",message="annotations (keys and values) must total at most 256 KiB"
	// +kubebuilder:validation:XValidation:rule="self.all(k, !k.startsWith('tokens.nomad-operator.dev/'))",message="annotation keys under tokens.nomad-operator.dev/ are the operator's own"
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
}

// DeletionPolicy says what happens to the PAT when its NomadToken is deleted.
// +kubebuilder:validation:Enum=Revoke;Retain
type DeletionPolicy string

const (
	// DeletionRevoke revokes the PAT in NOMAD before the NomadToken goes away.
	DeletionRevoke DeletionPolicy = "Revoke"
	// DeletionRetain leaves the PAT active in NOMAD until it expires.
	DeletionRetain DeletionPolicy = "Retain"
)

// NomadTokenSpec is the PAT wanted and where its raw token goes.
// +kubebuilder:validation:XValidation:rule="!has(self.rotation) || !has(self.rotation.renewBefore) || duration(self.rotation.renewBefore).getHours() < self.expiresInDays * 24",message="spec.rotation.renewBefore must be shorter than the lifetime (spec.expiresInDays)"
type NomadTokenSpec struct {
	// connectionRef names the NomadConnection or ClusterNomadConnection the PAT is minted through.
	ConnectionRef ConnectionRef `json:"connectionRef"`
	// tokenName is the PAT's name in NOMAD. Default "<namespace>/<name>". Names need not be unique
	// in NOMAD; the operator tracks PATs by id.
	// +kubebuilder:validation:MaxLength=256
	// +optional
	TokenName string `json:"tokenName,omitempty"`
	// description is the PAT's description in NOMAD. The operator appends a short reference of its
	// own so that it can find a PAT whose creation answer was lost.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Description string `json:"description,omitempty"`
	// scopes granted to the PAT, e.g. uploads:read. At least one; tokens:* scopes and wildcards are
	// refused (NOMAD never lets a PAT manage PATs, and PAT scopes are listed one by one).
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=64
	// +listType=set
	// +kubebuilder:validation:XValidation:rule="self.all(s, !s.startsWith('tokens:'))",message="tokens:* scopes are not allowed: NOMAD never lets a PAT create, read or delete PATs"
	// +kubebuilder:validation:XValidation:rule="self.all(s, !s.contains('*'))",message="wildcard scopes are not allowed in a PAT: list each scope, e.g. uploads:read"
	// +kubebuilder:validation:XValidation:rule="self.all(s, s.matches('^[a-z][a-z0-9_]*:[a-z][a-z0-9_]*$'))",message="each scope is <resource>:<action>, e.g. uploads:read"
	Scopes []string `json:"scopes"`
	// expiresInDays is the PAT's lifetime in days, at least 1. NOMAD caps it (365 by default).
	// Default 30.
	// +kubebuilder:default=30
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=36500
	// +optional
	ExpiresInDays int32 `json:"expiresInDays,omitempty"`
	// rotation says when and how the PAT is replaced before it expires.
	// +optional
	Rotation Rotation `json:"rotation,omitempty"`
	// secret shapes the Secret holding the raw PAT.
	// +optional
	Secret SecretTemplate `json:"secret,omitempty"`
	// deletionPolicy is Revoke (default: revoke the PAT when this NomadToken is deleted) or Retain.
	// +kubebuilder:default=Revoke
	// +optional
	DeletionPolicy DeletionPolicy `json:"deletionPolicy,omitempty"`
}

// PendingIssuance records that a PAT is about to be created, before the create call, so that a PAT
// whose answer is lost (crash, timeout, dropped connection) can be found in NOMAD and revoked.
type PendingIssuance struct {
	// marker is carried in the new PAT's description; it identifies the PAT among same-named ones.
	Marker string `json:"marker"`
	// startedAt is when the create was attempted; PATs created well before it are not candidates.
	StartedAt metav1.Time `json:"startedAt"`
	// specHash is the material-fields hash the PAT is being minted for.
	SpecHash string `json:"specHash"`
	// reason is why the PAT is being minted (e.g. RenewalDue); it decides what happens to the old PAT
	// if the new one has to be adopted after a crash.
	// +optional
	Reason string `json:"reason,omitempty"`
	// connectionName is the connection the PAT is being minted through (as in status.connectionName); recovery looks for it
	// with that connection's bot account.
	// +optional
	ConnectionName string `json:"connectionName,omitempty"`
	// account identifies the NOMAD user the PAT is being minted for (see PATReference.account).
	// +optional
	Account string `json:"account,omitempty"`
	// viaRotate is set when the PAT is being obtained from NOMAD's rotate endpoint, which revokes the
	// one it replaces itself; recovery then knows what became of that one whatever the spec says now.
	// +optional
	ViaRotate bool `json:"viaRotate,omitempty"`
	// restartsConsumers is set when the Secret held a token before this issuance: the new PAT owes
	// its consumers a restart, which recovery must not lose.
	// +optional
	RestartsConsumers bool `json:"restartsConsumers,omitempty"`
}

// PATReference is a PAT in NOMAD and the NomadConnection that minted it. Only that connection's bot
// account can revoke the PAT: NOMAD answers 404 to any other user, as it does for a pruned PAT.
type PATReference struct {
	// id of the PAT in NOMAD; empty for an entry that names an interrupted issuance by its marker.
	ID string `json:"id"`
	// marker names, instead of an id, an issuance whose outcome is unknown and that no connection could
	// settle (the minting user was out of reach): any PAT it created carries the NomadToken's marker in
	// its description and was created after createdAfter. It is looked for and revoked as soon as a
	// connection logs in as that user, and given up on (counted as abandoned) at expiresAt.
	// +optional
	Marker string `json:"marker,omitempty"`
	// createdAfter bounds the search for a marker entry's PATs (the issuance's start, less clock skew).
	// +optional
	CreatedAfter *metav1.Time `json:"createdAfter,omitempty"`
	// connectionName is the connection that minted the PAT: a NomadConnection of the NomadToken's
	// namespace by its name, or "ClusterNomadConnection/<name>".
	// +optional
	ConnectionName string `json:"connectionName,omitempty"`
	// account identifies the NOMAD user that owns the PAT: a hash of the API root and the bot's
	// username. When the connection's credentials move to another user, that user cannot revoke it.
	// +optional
	Account string `json:"account,omitempty"`
	// expiresAt is when the PAT expires, as NOMAD said. A queued PAT is dropped from the queue only
	// once it is revoked, or has expired by this time: until then it is alive and is retried.
	// +optional
	ExpiresAt *metav1.Time `json:"expiresAt,omitempty"`
	// lastError is why the last attempt to revoke this queued PAT failed; empty until one did.
	// +optional
	LastError string `json:"lastError,omitempty"`
}

// NomadTokenStatus is what the operator last did and observed.
type NomadTokenStatus struct {
	// conditions: Ready is True while the Secret holds a valid PAT matching the spec.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// observedGeneration is the spec generation last reconciled successfully, or last found to need a
	// person (the Stalled condition): the generation the conditions judge.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// tokenID is the id of the current PAT in NOMAD.
	// +optional
	TokenID string `json:"tokenID,omitempty"`
	// connectionName is the connection that minted tokenID and previousTokenID (a NomadConnection's
	// name, or "ClusterNomadConnection/<name>"). They are checked
	// and revoked through it, also after spec.connectionRef moved to another connection.
	// +optional
	ConnectionName string `json:"connectionName,omitempty"`
	// account identifies the NOMAD user that owns tokenID and previousTokenID (a hash of the API root
	// and the bot's username).
	// +optional
	Account string `json:"account,omitempty"`
	// secretName is the Secret holding the current PAT.
	// +optional
	SecretName string `json:"secretName,omitempty"`
	// issuedAt is when NOMAD created the current PAT.
	// +optional
	IssuedAt *metav1.Time `json:"issuedAt,omitempty"`
	// expiresAt is when the current PAT expires, as NOMAD says.
	// +optional
	ExpiresAt *metav1.Time `json:"expiresAt,omitempty"`
	// renewalTime is when the operator will replace the current PAT.
	// +optional
	RenewalTime *metav1.Time `json:"renewalTime,omitempty"`
	// lastRotationTime is when a PAT last replaced a previous one.
	// +optional
	LastRotationTime *metav1.Time `json:"lastRotationTime,omitempty"`
	// issuedSpecHash fingerprints the material fields (scopes, lifetime, name, description,
	// connection) the current PAT was minted with; a change means a new PAT is owed.
	// +optional
	IssuedSpecHash string `json:"issuedSpecHash,omitempty"`
	// tokenFingerprint is a salted, truncated hash of the raw PAT written to the Secret; a different
	// value in the Secret means someone edited it. It cannot be used to authenticate.
	// +optional
	TokenFingerprint string `json:"tokenFingerprint,omitempty"`
	// pendingIssuance is set while a PAT creation may have happened without its answer being stored.
	// +optional
	PendingIssuance *PendingIssuance `json:"pendingIssuance,omitempty"`
	// revokePending lists replaced PATs still to be revoked now, each with the connection that minted it.
	// +listType=map
	// +listMapKey=id
	// +optional
	RevokePending []PATReference `json:"revokePending,omitempty"`
	// previousTokenID is the PAT an Overlap rotation replaced; it stays valid until previousTokenRevokeAt
	// so that consumers still holding it keep working while the Secret update reaches them.
	// +optional
	PreviousTokenID string `json:"previousTokenID,omitempty"`
	// previousTokenRevokeAt is when previousTokenID is revoked (end of the grace period).
	// +optional
	PreviousTokenRevokeAt *metav1.Time `json:"previousTokenRevokeAt,omitempty"`
	// previousTokenRevokeBy is when previousTokenID is revoked at the latest, used or not (the swap plus
	// spec.rotation.waitForConsumers.maxGracePeriod). Unset without waitForConsumers: it is then
	// revoked at previousTokenRevokeAt.
	// +optional
	PreviousTokenRevokeBy *metav1.Time `json:"previousTokenRevokeBy,omitempty"`
	// previousTokenLastUsedAt is NOMAD's last use of previousTokenID as last seen (whole seconds, in
	// NOMAD's clock); unset while it was never used, or before it was looked at.
	// +optional
	PreviousTokenLastUsedAt *metav1.Time `json:"previousTokenLastUsedAt,omitempty"`
	// previousTokenFingerprint is the fingerprint (as tokenFingerprint) of previousTokenID's raw
	// token, which spec.secret.previousKey keeps in the Secret until it is revoked.
	// +optional
	PreviousTokenFingerprint string `json:"previousTokenFingerprint,omitempty"`
	// previousTokenExpiresAt is when previousTokenID expires; once it has, it needs no revocation.
	// +optional
	PreviousTokenExpiresAt *metav1.Time `json:"previousTokenExpiresAt,omitempty"`
	// lastUsedAt is when the current PAT last authenticated at NOMAD, as of the last verification,
	// rounded down to the manager's --last-used-granularity (default 1h): a PAT in constant use then
	// costs one status write per granularity period, not one per verification.
	// +optional
	LastUsedAt *metav1.Time `json:"lastUsedAt,omitempty"`
	// rotateRequestHandled is the value of the tokens.nomad-operator.dev/rotate annotation last acted on.
	// +optional
	RotateRequestHandled string `json:"rotateRequestHandled,omitempty"`
	// revokeNowRequestHandled is the value of the tokens.nomad-operator.dev/revoke-now annotation last
	// acted on.
	// +optional
	RevokeNowRequestHandled string `json:"revokeNowRequestHandled,omitempty"`
	// restartedForTokenID is the PAT for which spec.rotation.restartTargets were last restarted.
	// +optional
	RestartedForTokenID string `json:"restartedForTokenID,omitempty"`
}

// Expires and Renewal are string columns: kubectl prints a future time in a date column as <invalid>.

// NomadToken is a NOMAD Personal Access Token, minted through a NomadConnection, kept in a Secret and
// replaced before it expires.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=nomadtok,categories=nomad
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Secret",type=string,JSONPath=`.status.secretName`
// +kubebuilder:printcolumn:name="Expires",type=string,JSONPath=`.status.expiresAt`
// +kubebuilder:printcolumn:name="Renewal",type=string,JSONPath=`.status.renewalTime`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type NomadToken struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   NomadTokenSpec   `json:"spec"`
	Status NomadTokenStatus `json:"status,omitempty"`
}

// NomadTokenList is a list of NomadTokens.
//
// +kubebuilder:object:root=true
type NomadTokenList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []NomadToken `json:"items"`
}

func init() {
	SchemeBuilder.Register(&NomadToken{}, &NomadTokenList{})
}
