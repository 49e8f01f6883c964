// Package connection turns a NomadConnection into a ready-to-use NOMAD client: it reads the
// credentials and CA Secrets and hands out one long-lived client per connection, so that every
// NomadToken of a connection shares one cached access token and one rate limiter.
package connection

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/internal/nomad"
)

// ConfigError is a problem only a person can fix (a missing Secret or key, a bad CA bundle, a URL or
// PAT path nomad.New refuses). Reason is the condition reason to report; Message says what to change.
// Every other error of Resolver.Client (the API server failing, RBAC) is not the user's to fix.
type ConfigError struct {
	Reason  string
	Message string
	// SpecOnly says the NomadConnection's own spec is at fault: editing it triggers a reconcile, so
	// nothing needs polling. Otherwise a Secret is at fault, and users' Secrets are not watched.
	SpecOnly bool
	// Err is the error behind it, if any (the *nomad.Error of a refused Config).
	Err error
}

func (e *ConfigError) Error() string { return e.Message }

// Unwrap exposes Err, so that nomad.CodeOf still sees CodeInvalidConfig behind a refused Config.
func (e *ConfigError) Unwrap() error { return e.Err }

// Resolver reads what a NomadConnection references. Reader should bypass the operator's cache:
// the cache only holds Secrets the operator labelled, and credentials Secrets belong to users.
type Resolver struct {
	Reader client.Reader
	// Writer stores a refresh token the realm rotated into its credentials Secret (writeBack); nil
	// refuses to (tests that need no write-back).
	Writer client.Writer
	Pool   *Pool
	// ClusterResourceNamespace is where every ClusterNomadConnection's Secrets live: the operator's
	// own namespace, which tenants cannot read.
	ClusterResourceNamespace string
	// AllowedURLs are the addresses a namespaced NomadConnection may make the manager call
	// (--allowed-nomad-urls); nil allows any.
	AllowedURLs *URLAllowlist
}

// SecretNamespace is the one namespace whose Secrets conn may read: a NomadConnection's own, or the
// cluster resource namespace for a ClusterNomadConnection.
func (r *Resolver) SecretNamespace(conn v1alpha1.Connection) string {
	if ns := conn.GetNamespace(); ns != "" {
		return ns
	}
	return r.ClusterResourceNamespace
}

// Client returns the shared client for conn, rebuilding it only when its settings or Secrets changed.
func (r *Resolver) Client(ctx context.Context, conn v1alpha1.Connection) (nomad.Client, error) {
	key := client.ObjectKeyFromObject(conn)
	cfg, err := r.Config(ctx, conn)
	if err != nil {
		var ce *ConfigError
		if errors.As(err, &ce) {
			// The Secrets no longer give usable settings (deleted, emptied, or their label withdrawn):
			// the pooled client, which holds the old password and an access token, goes, so that
			// nothing can mint with credentials their owner took back.
			r.Pool.ForgetConnection(key)
		}
		return nil, err
	}
	if err := r.storeLiveRefreshToken(ctx, conn, &cfg); err != nil {
		return nil, err
	}
	nc, err := r.Pool.Get(key, string(conn.GetUID()), cfg, conn.ConnectionSpec().RateLimit)
	var ne *nomad.Error
	if errors.As(err, &ne) && ne.Code == nomad.CodeInvalidConfig {
		// The Secrets were read and the CA bundle parsed (see Config), so what nomad.New refused
		// is the spec: its URL or PAT path.
		return nil, &ConfigError{Reason: v1alpha1.ReasonInvalidSpec, Message: ne.Detail, SpecOnly: true, Err: err}
	}
	return nc, err
}

// Config builds the nomad.Config of conn from its spec and Secrets.
func (r *Resolver) Config(ctx context.Context, conn v1alpha1.Connection) (nomad.Config, error) {
	// First: a refused address costs no Secret read, and no client is built that could call it.
	if err := r.checkURLs(conn); err != nil {
		return nomad.Config{}, err
	}
	spec := conn.ConnectionSpec()
	ref := spec.Credentials.SecretRef
	namespace := r.SecretNamespace(conn)
	if ref.Namespace != "" && ref.Namespace != namespace {
		return nomad.Config{}, &ConfigError{
			Reason:   v1alpha1.ReasonInvalidSpec,
			Message:  fmt.Sprintf("spec.credentials.secretRef.namespace is %q, but a %s reads Secrets only from %q: move the Secret there", ref.Namespace, conn.ConnectionKind(), namespace),
			SpecOnly: true,
		}
	}
	creds, err := r.secret(ctx, namespace, ref.Name, "credentials")
	if err != nil {
		return nomad.Config{}, err
	}
	cfg := nomad.Config{
		URL:          spec.URL,
		PATPath:      nomad.PATPath(defaulted(string(spec.PATPath), string(v1alpha1.PATPathAuto))),
		KnownPATPath: knownPATPath(conn),
	}
	if err := r.credentials(&cfg, conn, creds, spec.Credentials); err != nil {
		return nomad.Config{}, err
	}
	ca, caSource := []byte(spec.CABundle), "spec.caBundle"
	caRef := spec.CASecretRef
	if caRef != nil {
		caSecret, err := r.secret(ctx, namespace, caRef.Name, "CA")
		if err != nil {
			return nomad.Config{}, err
		}
		key := defaulted(caRef.Key, "ca.crt")
		if ca, err = secretValue(caSecret, key); err != nil {
			return nomad.Config{}, err
		}
		caSource = fmt.Sprintf("key %q of CA Secret %s/%s", key, namespace, caRef.Name)
	}
	// nomad.New would refuse it too, but only as one of several InvalidConfig errors; checked here,
	// it is reported as InvalidCABundle with where the bundle came from.
	if len(ca) > 0 && !x509.NewCertPool().AppendCertsFromPEM(ca) {
		return nomad.Config{}, &ConfigError{
			Reason:   v1alpha1.ReasonInvalidCABundle,
			Message:  caSource + " contains no PEM certificate: it must hold the PEM-encoded CA certificate(s) that signed NOMAD's TLS certificate",
			SpecOnly: caRef == nil,
		}
	}
	cfg.CABundle = ca
	return cfg, nil
}

// knownPATPath is the PAT path the connection's status records, if a check of its current spec found
// it (Ready for this generation: a failed check after a URL change leaves the old URL's path in
// status), so that a new client, after a restart say, need not detect it again. It is no setting:
// the pool's fingerprint leaves it out, so recording it rebuilds no client.
func knownPATPath(conn v1alpha1.Connection) nomad.PATPath {
	st := conn.ConnectionStatus()
	ready := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionReady)
	if ready == nil || ready.Status != metav1.ConditionTrue || ready.ObservedGeneration != conn.GetGeneration() {
		return ""
	}
	return nomad.PATPath(st.PATPath)
}

func (r *Resolver) secret(ctx context.Context, namespace, name, what string) (*corev1.Secret, error) {
	s := &corev1.Secret{}
	err := r.Reader.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, s)
	if apierrors.IsNotFound(err) {
		return nil, &ConfigError{
			Reason:  v1alpha1.ReasonSecretNotFound,
			Message: fmt.Sprintf("%s Secret %s/%s not found: create it or fix the NomadConnection's reference", what, namespace, name),
		}
	}
	if err != nil {
		return nil, err
	}
	if !OptedIn(s) {
		// Not a word of its data leaves this function: a connection's author must not be able to
		// point the operator at any Secret of the namespace.
		return nil, notOptedIn(what, s)
	}
	return s, nil
}

func secretValue(s *corev1.Secret, key string) ([]byte, error) {
	v, ok := s.Data[key]
	if !ok || len(v) == 0 {
		return nil, &ConfigError{
			Reason:  v1alpha1.ReasonSecretKeyMissing,
			Message: fmt.Sprintf("Secret %s/%s has no (or an empty) key %q", s.Namespace, s.Name, key),
		}
	}
	return v, nil
}

func defaulted(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// fingerprint identifies a Config's settings without keeping a secret around in clear. The refresh
// token is in it only when withRefreshToken says so: the pool leaves it out, because the operator
// itself rewrites it on every rotation (Pool.Get asks the client whether it holds the Secret's one).
func fingerprint(cfg nomad.Config, rl *v1alpha1.RateLimit, withRefreshToken bool) string {
	h := sha256.New()
	o := cfg.OIDC
	parts := []string{cfg.URL, string(cfg.PATPath), string(cfg.Method), cfg.Username, cfg.Password, o.IssuerURL, o.ClientID, o.ClientSecret,
		string(cfg.CABundle), fmt.Sprint(qpsBurst(rl))}
	if withRefreshToken {
		parts = append(parts, o.RefreshToken)
	}
	for _, part := range parts {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}
