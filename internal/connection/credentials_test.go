package connection

import (
	"context"
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/internal/nomad"
	nomadfake "github.com/nomad-operator/nomad-token-operator/internal/nomad/fake"
)

const issuer = "https://nomad.example.org/keycloak/auth/realms/nomad"

func withMethod(m v1alpha1.CredentialMethod, mutate func(*v1alpha1.Credentials)) func(*v1alpha1.NomadConnection) {
	return func(c *v1alpha1.NomadConnection) {
		c.Spec.Credentials.Method = m
		c.Spec.Credentials.OIDC = &v1alpha1.OIDCProvider{IssuerURL: issuer}
		if mutate != nil {
			mutate(&c.Spec.Credentials)
		}
	}
}

func TestResolverReadsTheKeysOfEachMethod(t *testing.T) {
	tests := []struct {
		name   string
		data   map[string]string
		mutate func(*v1alpha1.NomadConnection)
		check  func(t *testing.T, cfg nomad.Config)
	}{
		{"RefreshToken with NOMAD's public client", map[string]string{"refresh_token": "rt-1", "client_secret": "unused"},
			withMethod(v1alpha1.CredentialMethodRefreshToken, nil), func(t *testing.T, cfg nomad.Config) {
				o := cfg.OIDC
				if cfg.Method != nomad.MethodRefreshToken || o.RefreshToken != "rt-1" || o.ClientID != "nomad_public" || o.IssuerURL != issuer {
					t.Errorf("config = %+v", o)
				}
				if o.ClientSecret != "" {
					t.Error("a public client sends no secret: clientSecretKey is read only when set")
				}
				if o.RefreshTokenRotated == nil {
					t.Error("a rotated refresh token must be written back")
				}
			}},
		{"RefreshToken with a confidential client and other key names", map[string]string{"rt": "rt-1", "cs": "s3cret"},
			withMethod(v1alpha1.CredentialMethodRefreshToken, func(c *v1alpha1.Credentials) {
				c.SecretRef.RefreshTokenKey, c.SecretRef.ClientSecretKey, c.OIDC.ClientID = "rt", "cs", "operator"
			}), func(t *testing.T, cfg nomad.Config) {
				if o := cfg.OIDC; o.RefreshToken != "rt-1" || o.ClientSecret != "s3cret" || o.ClientID != "operator" {
					t.Errorf("config = %+v", o)
				}
			}},
		{"ClientCredentials reads client_secret by default", map[string]string{"client_secret": "s3cret"},
			withMethod(v1alpha1.CredentialMethodClientCredentials, func(c *v1alpha1.Credentials) { c.OIDC.ClientID = "operator" }),
			func(t *testing.T, cfg nomad.Config) {
				if o := cfg.OIDC; cfg.Method != nomad.MethodClientCredentials || o.ClientSecret != "s3cret" || o.RefreshToken != "" || o.RefreshTokenRotated != nil {
					t.Errorf("config = %+v", o)
				}
				if cfg.Username != "" || cfg.Password != "" {
					t.Error("no password is read for ClientCredentials")
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			built, err := resolveOnce(t, []*corev1.Secret{secret("bot", tt.data)}, tt.mutate)
			if err != nil || len(built) != 1 {
				t.Fatalf("err = %v, built %d", err, len(built))
			}
			tt.check(t, built[0])
		})
	}
}

func TestResolverSaysWhichKeyOfWhichMethodIsMissing(t *testing.T) {
	tests := []struct {
		name   string
		data   map[string]string
		mutate func(*v1alpha1.NomadConnection)
		reason string
	}{
		{"RefreshToken without refresh_token", map[string]string{"username": "u", "password": "p"},
			withMethod(v1alpha1.CredentialMethodRefreshToken, nil), v1alpha1.ReasonSecretKeyMissing},
		{"RefreshToken with a clientSecretKey the Secret lacks", map[string]string{"refresh_token": "rt"},
			withMethod(v1alpha1.CredentialMethodRefreshToken, func(c *v1alpha1.Credentials) { c.SecretRef.ClientSecretKey = "cs" }), v1alpha1.ReasonSecretKeyMissing},
		{"ClientCredentials without client_secret", map[string]string{"refresh_token": "rt"},
			withMethod(v1alpha1.CredentialMethodClientCredentials, nil), v1alpha1.ReasonSecretKeyMissing},
		{"RefreshToken without oidc (stored before the CEL rule)", map[string]string{"refresh_token": "rt"},
			func(c *v1alpha1.NomadConnection) { c.Spec.Credentials.Method = v1alpha1.CredentialMethodRefreshToken }, v1alpha1.ReasonInvalidSpec},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := resolveOnce(t, []*corev1.Secret{secret("bot", tt.data)}, tt.mutate)
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Reason != tt.reason {
				t.Fatalf("err = %v, want a ConfigError with reason %s", err, tt.reason)
			}
		})
	}
}

// refreshTokenResolver is a resolver (Reader and Writer: one fake API server) for a RefreshToken
// connection whose Secret holds rt, and whose clients hold the refresh tokens in held.
func refreshTokenResolver(t *testing.T, built *[]nomad.Config, rt string, held *[]string) (*Resolver, *v1alpha1.NomadConnection) {
	t.Helper()
	r := newResolver(t, built, secret("bot", map[string]string{"refresh_token": rt, "other": "kept"}))
	r.Writer = r.Reader.(client.Client)
	r.Pool.NewClient = func(cfg nomad.Config) (nomad.Client, error) {
		*built = append(*built, cfg)
		return &nomadfake.Client{RefreshTokens: *held}, nil
	}
	c := conn()
	withMethod(v1alpha1.CredentialMethodRefreshToken, nil)(c)
	return r, c
}

func readKey(t *testing.T, r *Resolver, key string) string {
	t.Helper()
	s := &corev1.Secret{}
	if err := r.Reader.Get(context.Background(), client.ObjectKey{Namespace: "team-a", Name: "bot"}, s); err != nil {
		t.Fatal(err)
	}
	return string(s.Data[key])
}

func TestARotatedRefreshTokenIsWrittenIntoItsKeyOnly(t *testing.T) {
	var built []nomad.Config
	held := []string{"rt-1", "rt-2"}
	r, c := refreshTokenResolver(t, &built, "rt-1", &held)
	ctx := context.Background()
	if _, err := r.Client(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := built[0].OIDC.RefreshTokenRotated(ctx, "rt-1", "rt-2"); err != nil {
		t.Fatal(err)
	}
	if got := readKey(t, r, "refresh_token"); got != "rt-2" {
		t.Fatalf("refresh_token = %q, want the rotated rt-2", got)
	}
	if got := readKey(t, r, "other"); got != "kept" {
		t.Fatalf("another key changed: %q", got)
	}
	// Storing it again (an answer lost on the way back) is no error and no write.
	if err := built[0].OIDC.RefreshTokenRotated(ctx, "rt-1", "rt-2"); err != nil {
		t.Fatal(err)
	}
	// The Secret now holds what the pooled client itself received: the same client is handed out.
	if _, err := r.Client(ctx, c); err != nil || len(built) != 1 {
		t.Fatalf("the operator's own write-back must not replace the client: built %d, err %v", len(built), err)
	}
}

// While a rotation rt-1 → rt-2 is stored, the Secret may hold something else: a token the owner wrote
// meanwhile (kubectl nomadtoken login) wins, and the pool builds a new client from it; a token the
// connection has already spent (a GitOps sync or a restored backup put it back) is overwritten, as
// keeping it would leave only a dead token in the Secret.
func TestARotationMeetsAnotherTokenInTheSecret(t *testing.T) {
	for _, tc := range []struct {
		name, inSecret, want string
		live                 string // the client's live token, if it moved on since rt-2
	}{
		{name: "the owner's new token wins", inSecret: "from-login", want: "from-login"},
		{name: "a spent token put back is overwritten", inSecret: "rt-0", want: "rt-2"},
		// A late store of rt-2 (storeLiveRefreshToken racing a sign-in) must not put back a spent token.
		{name: "a later rotation already stored stays", inSecret: "rt-3", want: "rt-3", live: "rt-3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var built []nomad.Config
			held := []string{"rt-0", "rt-1", "rt-2"}
			if tc.live != "" {
				held = append(held, tc.live)
			}
			r, c := refreshTokenResolver(t, &built, "rt-1", &held)
			ctx := context.Background()
			if _, err := r.Client(ctx, c); err != nil {
				t.Fatal(err)
			}
			kube := r.Writer.(client.Client)
			s := &corev1.Secret{}
			_ = kube.Get(ctx, client.ObjectKey{Namespace: "team-a", Name: "bot"}, s)
			s.Data["refresh_token"] = []byte(tc.inSecret)
			if err := kube.Update(ctx, s); err != nil {
				t.Fatal(err)
			}
			if err := built[0].OIDC.RefreshTokenRotated(ctx, "rt-1", "rt-2"); err != nil {
				t.Fatal(err)
			}
			if got := readKey(t, r, "refresh_token"); got != tc.want {
				t.Fatalf("refresh_token = %q, want %q", got, tc.want)
			}
			if tc.want != tc.inSecret || tc.live != "" {
				return
			}
			if _, err := r.Client(ctx, c); err != nil || len(built) != 2 || built[1].OIDC.RefreshToken != tc.inSecret {
				t.Fatalf("a refresh token the client does not hold must build a new client from it: built %d, err %v", len(built), err)
			}
		})
	}
}

func TestTheWriteBackIsLockedAndNeedsTheOptIn(t *testing.T) {
	var built []nomad.Config
	var held []string
	r, c := refreshTokenResolver(t, &built, "rt-1", &held)
	ctx := context.Background()
	if _, err := r.Client(ctx, c); err != nil {
		t.Fatal(err)
	}
	store := built[0].OIDC.RefreshTokenRotated

	// An edit between the read and the patch makes the patch fail instead of overwriting it.
	kube := r.Writer.(client.Client)
	r.Writer = staleWriter{Client: kube}
	if err := store(ctx, "rt-1", "rt-2"); !apierrors.IsConflict(errors.Unwrap(err)) {
		t.Fatalf("err = %v, want a conflict", err)
	}
	r.Writer = kube

	// The label withdrawn: nothing is written.
	s := &corev1.Secret{}
	_ = kube.Get(ctx, client.ObjectKey{Namespace: "team-a", Name: "bot"}, s)
	s.Labels = nil
	if err := kube.Update(ctx, s); err != nil {
		t.Fatal(err)
	}
	var ce *ConfigError
	if err := store(ctx, "rt-1", "rt-2"); !errors.As(err, &ce) || ce.Reason != v1alpha1.ReasonCredentialsNotLabelled {
		t.Fatalf("err = %v, want CredentialsNotLabelled", err)
	}
	if got := readKey(t, r, "refresh_token"); got != "rt-1" {
		t.Fatalf("refresh_token = %q, want it untouched", got)
	}
}

// staleWriter edits the Secret (another annotation) just before each patch, as a concurrent writer
// between the write-back's read and its patch would.
type staleWriter struct{ client.Client }

func (w staleWriter) Patch(ctx context.Context, obj client.Object, p client.Patch, opts ...client.PatchOption) error {
	s := &corev1.Secret{}
	if err := w.Get(ctx, client.ObjectKeyFromObject(obj), s); err != nil {
		return err
	}
	s.Annotations = map[string]string{"edited": "meanwhile"}
	if err := w.Update(ctx, s); err != nil {
		return err
	}
	return w.Client.Patch(ctx, obj, p, opts...)
}

// A client that moved on from the Secret's refresh token (a rotation whose write-back failed) holds
// the only one the realm still takes: before anything may replace that client (a spec change here),
// its live token is stored, and the new client starts from it instead of the spent one.
func TestTheLiveRefreshTokenIsStoredBeforeTheClientIsReplaced(t *testing.T) {
	var built []nomad.Config
	held := []string{"rt-1", "rt-2"} // started from rt-1, received rt-2, whose write-back failed
	r, c := refreshTokenResolver(t, &built, "rt-1", &held)
	ctx := context.Background()
	if _, err := r.Client(ctx, c); err != nil {
		t.Fatal(err)
	}
	c.Spec.RateLimit = &v1alpha1.RateLimit{QPS: 1, Burst: 2}
	if _, err := r.Client(ctx, c); err != nil {
		t.Fatal(err)
	}
	if got := readKey(t, r, "refresh_token"); got != "rt-2" {
		t.Fatalf("refresh_token = %q, want the live rt-2", got)
	}
	if len(built) != 2 || built[1].OIDC.RefreshToken != "rt-2" {
		t.Fatalf("the new client must start from the live rt-2: built %d", len(built))
	}
}

// A Secret that refuses the rotated token for good (immutable, a policy, RBAC) is the user's to fix:
// a ConfigError with its own reason, not an outage to retry with backoff.
func TestASecretThatRefusesTheRotatedTokenIsAConfigError(t *testing.T) {
	var built []nomad.Config
	var held []string
	r, c := refreshTokenResolver(t, &built, "rt-1", &held)
	ctx := context.Background()
	if _, err := r.Client(ctx, c); err != nil {
		t.Fatal(err)
	}
	r.Writer = refusingWriter{Client: r.Writer.(client.Client)}
	err := built[0].OIDC.RefreshTokenRotated(ctx, "rt-1", "rt-2")
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Reason != v1alpha1.ReasonRefreshTokenNotStored {
		t.Fatalf("err = %v, want a ConfigError with reason %s", err, v1alpha1.ReasonRefreshTokenNotStored)
	}
	if strings.Contains(ce.Message, "rt-2") {
		t.Fatalf("the message names the token: %s", ce.Message)
	}
}

// refusingWriter refuses every patch as an admission policy would.
type refusingWriter struct{ client.Client }

func (refusingWriter) Patch(context.Context, client.Object, client.Patch, ...client.PatchOption) error {
	return apierrors.NewForbidden(corev1.Resource("secrets"), "bot", errors.New("denied by policy"))
}
