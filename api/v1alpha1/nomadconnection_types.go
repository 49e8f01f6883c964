package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// PATPathMode says where NOMAD serves its PAT routes. NOMAD's documentation writes {api}/v1/pats while
// every published NOMAD version serves {api}/v1/auth/pats, so the operator detects it by default.
// +kubebuilder:validation:Enum=Auto;Pats;AuthPats
type PATPathMode string

const (
	// PATPathAuto detects the prefix from {api}/v1/openapi.json, or by a probe that answers 404.
	PATPathAuto PATPathMode = "Auto"
	// PATPathPats is {api}/v1/pats, the documented form.
	PATPathPats PATPathMode = "Pats"
	// PATPathAuthPats is {api}/v1/auth/pats, the form of the published source.
	PATPathAuthPats PATPathMode = "AuthPats"
)

// CredentialMethod is how the operator signs in to NOMAD's Keycloak realm.
// +kubebuilder:validation:Enum=Password;RefreshToken;ClientCredentials
type CredentialMethod string

const (
	// CredentialMethodPassword sends a username and password to NOMAD's /auth/token (Keycloak's
	// password grant, run by NOMAD). Accounts that sign in through ORCID, GitHub or Google have no
	// password and cannot use it.
	CredentialMethodPassword CredentialMethod = "Password"
	// CredentialMethodRefreshToken exchanges an (offline) refresh token at the realm's own token
	// endpoint; `kubectl nomadtoken login` puts one into the Secret. A rotated refresh token is
	// written back into the Secret.
	CredentialMethodRefreshToken CredentialMethod = "RefreshToken"
	// CredentialMethodClientCredentials signs in as a confidential client's service account at the
	// realm's token endpoint.
	CredentialMethodClientCredentials CredentialMethod = "ClientCredentials"
)

// Default data keys of the credentials Secret, and NOMAD's own OIDC client.
const (
	DefaultUsernameKey     = "username"
	DefaultPasswordKey     = "password"
	DefaultRefreshTokenKey = "refresh_token"
	DefaultClientSecretKey = "client_secret"
	DefaultOIDCClientID    = "nomad_public"
)

// CredentialsSecretRef names the Secret holding what the operator signs in with. Which keys it reads
// depends on spec.credentials.method.
type CredentialsSecretRef struct {
	// name is the Secret's name, in the NomadConnection's namespace (for a ClusterNomadConnection, in
	// the operator's namespace). The Secret must carry the label
	// tokens.nomad-operator.dev/credentials: "true"; otherwise it is not read
	// (Ready=False, CredentialsNotLabelled).
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	Name string `json:"name"`
	// namespace of the Secret. A NomadConnection reads only its own namespace, and a
	// ClusterNomadConnection only the operator's (the manager's --cluster-resource-namespace): a
	// value naming any other namespace is refused (InvalidSpec). Optional; it documents where the
	// Secret is.
	// +optional
	Namespace string `json:"namespace,omitempty"`
	// usernameKey is the data key holding the username (method Password). Default "username".
	// +kubebuilder:default=username
	// +optional
	UsernameKey string `json:"usernameKey,omitempty"`
	// passwordKey is the data key holding the password (method Password). Default "password".
	// +kubebuilder:default=password
	// +optional
	PasswordKey string `json:"passwordKey,omitempty"`
	// refreshTokenKey is the data key holding the refresh token (method RefreshToken). Default
	// "refresh_token". When the realm rotates refresh tokens, the operator writes each new one back
	// into this key, and only this key.
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	// +optional
	RefreshTokenKey string `json:"refreshTokenKey,omitempty"`
	// clientSecretKey is the data key holding the OIDC client's secret: for method ClientCredentials
	// (default "client_secret"), and for method RefreshToken only when the client is confidential
	// (no default there: a public client such as nomad_public has no secret).
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	// +optional
	ClientSecretKey string `json:"clientSecretKey,omitempty"`
}

// OIDCProvider is NOMAD's Keycloak realm, used directly by the RefreshToken and ClientCredentials
// methods: NOMAD accepts any access token of its realm for the PAT API.
type OIDCProvider struct {
	// issuerURL is the realm's issuer, e.g.
	// https://nomad-lab.eu/fairdi/keycloak/auth/realms/fairdi_nomad_prod. The token endpoint is found
	// at {issuerURL}/.well-known/openid-configuration. It must be https, or plain http on a loopback
	// address only (then reported by the InsecureTransport condition).
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:XValidation:rule="self.matches('^https://[^/?#@\\\\s]+([/?#][^\\\\s]*)?$') || self.matches('^http://(localhost|127[.][0-9]{1,3}[.][0-9]{1,3}[.][0-9]{1,3}|\\\\[::1\\\\])(:[0-9]{1,5})?([/?#][^\\\\s]*)?$')",message="issuerURL must be https, or http on a loopback address (localhost, 127.0.0.0/8, [::1])"
	IssuerURL string `json:"issuerURL"`
	// clientID is the realm client the operator signs in through. Default nomad_public (NOMAD's own
	// public client); method ClientCredentials needs a confidential client with a service account.
	// +kubebuilder:default=nomad_public
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	// +optional
	ClientID string `json:"clientID,omitempty"`
}

// Credentials say how the operator signs in to NOMAD. Only a Keycloak access token of NOMAD's realm
// may manage PATs; a PAT can never mint PATs.
// +kubebuilder:validation:XValidation:rule="!has(self.method) || self.method == 'Password' || has(self.oidc)",message="oidc is required unless method is Password"
type Credentials struct {
	// method is how to sign in: Password (default; NOMAD's /auth/token with a username and
	// password), RefreshToken (an offline refresh token at the realm's token endpoint) or
	// ClientCredentials (a confidential client's service account).
	// +kubebuilder:default=Password
	// +optional
	Method CredentialMethod `json:"method,omitempty"`
	// secretRef names the Secret with the credentials of the method.
	SecretRef CredentialsSecretRef `json:"secretRef"`
	// oidc is NOMAD's Keycloak realm; required unless method is Password.
	// +optional
	OIDC *OIDCProvider `json:"oidc,omitempty"`
}

// RefreshTokenKey is the data key holding the refresh token: secretRef.refreshTokenKey, or its default.
func (c Credentials) RefreshTokenKey() string {
	return orDefault(c.SecretRef.RefreshTokenKey, DefaultRefreshTokenKey)
}

// ClientSecretKey is the data key holding the OIDC client's secret, "" when none is read: the
// default applies to method ClientCredentials only, as a public client (RefreshToken with
// nomad_public) has no secret.
func (c Credentials) ClientSecretKey() string {
	if c.MethodOrDefault() == CredentialMethodClientCredentials {
		return orDefault(c.SecretRef.ClientSecretKey, DefaultClientSecretKey)
	}
	return c.SecretRef.ClientSecretKey
}

// ClientID is the OIDC client the operator signs in through: oidc.clientID, or NOMAD's own.
func (c Credentials) ClientID() string {
	if c.OIDC == nil {
		return DefaultOIDCClientID
	}
	return orDefault(c.OIDC.ClientID, DefaultOIDCClientID)
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// MethodOrDefault is the method, Password when unset.
func (c Credentials) MethodOrDefault() CredentialMethod {
	if c.Method == "" {
		return CredentialMethodPassword
	}
	return c.Method
}

// CASecretRef names a Secret key holding PEM CA certificates.
type CASecretRef struct {
	// name is the Secret's name, in the same namespace as the credentials Secret. It must carry the
	// label tokens.nomad-operator.dev/credentials: "true".
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	Name string `json:"name"`
	// key is the data key holding the PEM bundle. Default "ca.crt".
	// +kubebuilder:default=ca.crt
	// +optional
	Key string `json:"key,omitempty"`
}

// RateLimit bounds the calls the operator makes to one NOMAD connection, shared by every NomadToken
// that uses it, so a burst of tokens cannot overload someone's NOMAD server.
type RateLimit struct {
	// qps is the sustained number of requests per second. Default 5.
	// +kubebuilder:default=5
	// +kubebuilder:validation:Minimum=1
	// +optional
	QPS int32 `json:"qps,omitempty"`
	// burst is the number of requests allowed at once above qps. Default 10.
	// +kubebuilder:default=10
	// +kubebuilder:validation:Minimum=1
	// +optional
	Burst int32 `json:"burst,omitempty"`
}

// NomadConnectionSpec says where a NOMAD deployment is and how to log in to it.
// +kubebuilder:validation:XValidation:rule="!(has(self.caBundle) && has(self.caSecretRef))",message="set at most one of caBundle and caSecretRef"
type NomadConnectionSpec struct {
	// url is NOMAD's API root, e.g. https://nomad-lab.eu/prod/v1/api or
	// http://localhost:8000/nomad-oasis/api. A trailing "/v1" is accepted and normalised.
	// Plain http is allowed (a local Oasis) and reported by the InsecureTransport condition.
	// +kubebuilder:validation:Pattern=`^https?://[^\s]+$`
	URL string `json:"url"`
	// patPath says where the PAT routes live: Auto (detect), Pats ({api}/v1/pats, the documented form)
	// or AuthPats ({api}/v1/auth/pats, the published source). Default Auto.
	// +kubebuilder:default=Auto
	// +optional
	PATPath PATPathMode `json:"patPath,omitempty"`
	// credentials say how the operator signs in to NOMAD, and so which account every PAT belongs to.
	Credentials Credentials `json:"credentials"`
	// caBundle is PEM CA certificates trusted for NOMAD's TLS certificate, on top of the system pool.
	// +optional
	CABundle string `json:"caBundle,omitempty"`
	// caSecretRef names a Secret key with the PEM CA bundle instead of caBundle.
	// +optional
	CASecretRef *CASecretRef `json:"caSecretRef,omitempty"`
	// rateLimit bounds the requests per second to this NOMAD. Default qps 5, burst 10.
	// +optional
	RateLimit *RateLimit `json:"rateLimit,omitempty"`
	// policy sets ceilings on what NomadTokens may mint through this connection. They are checked
	// before any NOMAD call; a NomadToken over a ceiling gets Ready=False, reason PolicyViolation.
	// +optional
	Policy *ConnectionPolicy `json:"policy,omitempty"`
}

// ConnectionPolicy is the platform's ceiling on the PATs minted through a connection. An unset field
// sets no ceiling.
type ConnectionPolicy struct {
	// allowedScopes are the only scopes a NomadToken may request. Empty or unset: any scope.
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=64
	// +listType=set
	// +optional
	AllowedScopes []string `json:"allowedScopes,omitempty"`
	// maxExpiresInDays is the longest lifetime (spec.expiresInDays) a NomadToken may request.
	// +kubebuilder:validation:Minimum=1
	// +optional
	MaxExpiresInDays *int32 `json:"maxExpiresInDays,omitempty"`
	// maxTokens is how many live PATs the NomadTokens of the namespaces it covers may hold through
	// the connection. A place is taken by each NomadToken (those holding a PAT first, then the
	// oldest), each PAT in a revocation queue, and each PAT left behind that no NomadToken will
	// revoke: retained (deletionPolicy Retain) until it expires, and those of NomadTokens being
	// deleted. A NomadToken without a place gets PolicyViolation and mints nothing
	// (docs/multi-tenancy.md).
	// +kubebuilder:validation:Minimum=0
	// +optional
	MaxTokens *int32 `json:"maxTokens,omitempty"`
	// allowRetain says whether a NomadToken may ask for deletionPolicy: Retain, which leaves its PAT
	// active after the NomadToken is gone. false: such a NomadToken gets PolicyViolation and no PAT.
	// Default true. A retained PAT counts against maxTokens until it expires either way.
	// +optional
	AllowRetain *bool `json:"allowRetain,omitempty"`
	// minRotationInterval is the least time between two PATs of one NomadToken that a rotation
	// (its planned renewal or the tokens.nomad-operator.dev/rotate annotation) may cause, e.g. 24h.
	// A rotate request sooner after the last issuance waits until the interval has passed; a spec
	// whose renewal schedule is more frequent (spec.expiresInDays less its renewBefore share) gets
	// PolicyViolation. Unset: rotate requests are only debounced by one minute.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('0s')",message="minRotationInterval must not be negative"
	// +optional
	MinRotationInterval *metav1.Duration `json:"minRotationInterval,omitempty"`
}

// NomadConnectionStatus is what the operator last observed about the connection.
type NomadConnectionStatus struct {
	// conditions: Ready says whether the credentials work, the API answers and the PAT path is known;
	// InsecureTransport is True while the URL is plain http.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// observedGeneration is the spec generation the conditions describe.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// patPath is the PAT path prefix in use (Pats or AuthPats), detected or configured.
	// +optional
	PATPath PATPathMode `json:"patPath,omitempty"`
	// credentials is the health of the connection's sign-in: the method, the account NOMAD sees, the
	// last successful sign-in and, when Keycloak says so, when the refresh token ends.
	// +optional
	Credentials *CredentialsStatus `json:"credentials,omitempty"`
	// activeTokens is how many active PATs the bot account holds in NOMAD (all of them, not only
	// this operator's); NOMAD caps this per user (100 by default).
	// +optional
	ActiveTokens *int32 `json:"activeTokens,omitempty"`
	// patLimit is the per-user cap on active PATs the operator assumes for NOMAD (the manager's
	// --nomad-pat-limit); NearPATLimit compares activeTokens with it.
	// +optional
	PATLimit *int32 `json:"patLimit,omitempty"`
	// nomadTokens is how many NomadTokens mint through this connection (spec.connectionRef).
	// +optional
	NomadTokens *int32 `json:"nomadTokens,omitempty"`
	// inUseSecrets are the Secrets (credentials, CA) this connection holds with the
	// tokens.nomad-operator.dev/in-use finalizer while NomadTokens depend on it, so that it can let
	// go of them again after the spec names other Secrets. Only those that exist and carry the
	// tokens.nomad-operator.dev/credentials: "true" label are actually held.
	// +listType=set
	// +optional
	InUseSecrets []string `json:"inUseSecrets,omitempty"`
	// orphanedPATs are active PATs of the bot account that carry this operator's marker but that no
	// NomadToken accounts for (a finalizer removed by hand, a cluster restored from an old backup). At
	// most 50 are listed; orphanedPATCount counts them all. The manager's --orphan-sweep=revoke
	// revokes them; the default, dry-run, only lists them.
	// +listType=map
	// +listMapKey=id
	// +optional
	OrphanedPATs []OrphanedPAT `json:"orphanedPATs,omitempty"`
	// orphanedPATCount is how many orphaned PATs the last check found.
	// +optional
	OrphanedPATCount *int32 `json:"orphanedPATCount,omitempty"`
	// retainedPATs are PATs that NomadTokens deleted with deletionPolicy Retain left active on purpose.
	// The orphan sweep never touches them; an entry is dropped once its PAT has expired.
	// +listType=map
	// +listMapKey=id
	// +optional
	RetainedPATs []RetainedPAT `json:"retainedPATs,omitempty"`
	// abandonedPATs are PATs this connection minted that a deleted NomadToken had to revoke and could
	// not: no connection logs in any more as the NOMAD user that owns them (the credentials Secret
	// moved to another user), so they stay active until they expire. Revoke them in NOMAD as that
	// user. At most 50 are listed; an entry is dropped once its PAT has expired. Unlike retainedPATs
	// they are not protected from the orphan sweep: a connection that logs in as their owner again
	// finds them as orphans.
	// +listType=map
	// +listMapKey=id
	// +kubebuilder:validation:MaxItems=50
	// +optional
	AbandonedPATs []AbandonedPAT `json:"abandonedPATs,omitempty"`
}

// CredentialsStatus is what the last successful sign-in showed about the credentials.
type CredentialsStatus struct {
	// method the connection signs in with.
	Method CredentialMethod `json:"method"`
	// account is the NOMAD user the access token belongs to (its preferred_username; for method
	// Password, the username). Every PAT of the connection belongs to it.
	// +optional
	Account string `json:"account,omitempty"`
	// userID is the account's NOMAD user_id (the access token's sub), when known.
	// +optional
	UserID string `json:"userID,omitempty"`
	// lastSignInTime is when the operator last signed in successfully. It is written at most once an
	// hour (the metric nomadconnection_last_signin_timestamp_seconds is exact).
	// +optional
	LastSignInTime *metav1.Time `json:"lastSignInTime,omitempty"`
	// refreshTokenExpiresAt is when the refresh token (or its offline session) ends unless it is
	// used again, when Keycloak says so (refresh_expires_in, or the refresh token's exp).
	// +optional
	RefreshTokenExpiresAt *metav1.Time `json:"refreshTokenExpiresAt,omitempty"`
	// signInRequest is the value of the tokens.nomad-operator.dev/sign-in annotation that the last
	// successful sign-in answered: kubectl nomadtoken login waits for it to know that the refresh
	// token it stored works.
	// +optional
	SignInRequest string `json:"signInRequest,omitempty"`
}

// OrphanedPAT is an active PAT of the bot account that no NomadToken accounts for.
type OrphanedPAT struct {
	// id of the PAT in NOMAD.
	ID string `json:"id"`
	// name of the PAT in NOMAD.
	// +optional
	Name string `json:"name,omitempty"`
	// createdAt is when NOMAD created it.
	CreatedAt metav1.Time `json:"createdAt"`
}

// RetainedPAT is a PAT left active on purpose when its NomadToken was deleted with deletionPolicy Retain.
type RetainedPAT struct {
	// id of the PAT in NOMAD.
	ID string `json:"id"`
	// nomadToken is the deleted NomadToken, as namespace/name.
	NomadToken string `json:"nomadToken"`
	// expiresAt is when the PAT expires.
	// +optional
	ExpiresAt *metav1.Time `json:"expiresAt,omitempty"`
}

// AbandonedPAT is a PAT that had to be revoked when its NomadToken was deleted, and that no connection
// could revoke: none logs in as the NOMAD user that owns it.
type AbandonedPAT struct {
	// id of the PAT in NOMAD.
	ID string `json:"id"`
	// nomadToken is the deleted NomadToken, as namespace/name.
	NomadToken string `json:"nomadToken"`
	// expiresAt is when the PAT expires.
	// +optional
	ExpiresAt *metav1.Time `json:"expiresAt,omitempty"`
}

// NomadConnection is a NOMAD deployment and the bot account used to manage PATs in it. Only NomadTokens
// in the same namespace may use it.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=nomadconn,categories=nomad
// +kubebuilder:printcolumn:name="URL",type=string,JSONPath=`.spec.url`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Path",type=string,JSONPath=`.status.patPath`
// +kubebuilder:printcolumn:name="Active",type=integer,JSONPath=`.status.activeTokens`
// +kubebuilder:printcolumn:name="Tokens",type=integer,JSONPath=`.status.nomadTokens`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type NomadConnection struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   NomadConnectionSpec   `json:"spec"`
	Status NomadConnectionStatus `json:"status,omitempty"`
}

// NomadConnectionList is a list of NomadConnections.
//
// +kubebuilder:object:root=true
type NomadConnectionList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []NomadConnection `json:"items"`
}

func init() {
	SchemeBuilder.Register(&NomadConnection{}, &NomadConnectionList{})
}
