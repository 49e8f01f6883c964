package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
)

// fakeRealm is a Keycloak realm as login sees it: discovery, an authorize endpoint that signs user
// in without a form and redirects back with a code, and a token endpoint for authorization_code
// with PKCE.
type fakeRealm struct {
	*httptest.Server
	issuer string
	user   string
	// notOffline issues an online refresh token (typ Refresh); noIDToken leaves the id_token out.
	notOffline, noIDToken bool
	// clientSecret, when set, is required (HTTP basic) at the token endpoint.
	clientSecret string
	// forgeState redirects back with another state; denyWith redirects back with this error.
	forgeState bool
	denyWith   string

	mu        sync.Mutex
	authorize []url.Values
	codes     map[string]url.Values // code -> the authorize request
	issued    []string              // every token handed out: none may be printed
	refresh   string                // the last refresh token
}

// testBrowser plays the person's browser. It trusts any certificate, as a person who accepted a
// private CA's does; login itself must trust the realm through the connection's CA bundle.
var testBrowser = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}

func newFakeRealm(t *testing.T) *fakeRealm { return newFakeRealmOn(t, httptest.NewServer) }

// newFakeRealmOn serves the fake realm with start (httptest.NewServer, or NewTLSServer for a realm
// behind a private CA).
func newFakeRealmOn(t *testing.T, start func(http.Handler) *httptest.Server) *fakeRealm {
	r := &fakeRealm{user: "alice", codes: map[string]url.Values{}}
	mux := http.NewServeMux()
	r.Server = start(mux)
	t.Cleanup(r.Close)
	r.issuer = r.URL + "/realms/nomad"
	mux.HandleFunc("GET /realms/nomad/.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{
			"issuer":                 r.issuer,
			"authorization_endpoint": r.issuer + "/protocol/openid-connect/auth",
			"token_endpoint":         r.issuer + "/protocol/openid-connect/token",
		})
	})
	mux.HandleFunc("GET /realms/nomad/protocol/openid-connect/auth", r.serveAuthorize)
	mux.HandleFunc("POST /realms/nomad/protocol/openid-connect/token", r.serveToken)
	return r
}

func (r *fakeRealm) serveAuthorize(w http.ResponseWriter, req *http.Request) {
	q := req.URL.Query()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.authorize = append(r.authorize, q)
	if q.Get("response_type") != "code" || q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" ||
		!strings.HasPrefix(q.Get("redirect_uri"), "http://127.0.0.1:") {
		http.Error(w, "bad authorize request", http.StatusBadRequest)
		return
	}
	back, _ := url.Parse(q.Get("redirect_uri"))
	v := url.Values{"state": {q.Get("state")}}
	if r.forgeState {
		v.Set("state", "forged")
	}
	if r.denyWith != "" {
		v.Set("error", r.denyWith)
		v.Set("error_description", "the user said no")
	} else {
		code := fmt.Sprintf("code-%d", len(r.authorize))
		r.codes[code] = q
		v.Set("code", code)
	}
	back.RawQuery = v.Encode()
	http.Redirect(w, req, back.String(), http.StatusFound)
}

func (r *fakeRealm) serveToken(w http.ResponseWriter, req *http.Request) {
	_ = req.ParseForm()
	f := req.PostForm
	r.mu.Lock()
	defer r.mu.Unlock()
	fail := func(status int, code string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": code})
	}
	clientID := f.Get("client_id")
	if id, secret, ok := req.BasicAuth(); ok {
		clientID = id
		if r.clientSecret == "" || secret != r.clientSecret {
			fail(http.StatusUnauthorized, "unauthorized_client")
			return
		}
	} else if r.clientSecret != "" {
		fail(http.StatusUnauthorized, "unauthorized_client")
		return
	}
	auth, ok := r.codes[f.Get("code")]
	delete(r.codes, f.Get("code"))
	sum := sha256.Sum256([]byte(f.Get("code_verifier")))
	switch {
	case f.Get("grant_type") != "authorization_code" || !ok:
		fail(http.StatusBadRequest, "invalid_grant")
		return
	case base64.RawURLEncoding.EncodeToString(sum[:]) != auth.Get("code_challenge"):
		fail(http.StatusBadRequest, "invalid_grant") // PKCE verification failed
		return
	case clientID != auth.Get("client_id") || f.Get("redirect_uri") != auth.Get("redirect_uri"):
		fail(http.StatusBadRequest, "invalid_grant")
		return
	}
	typ := "Offline"
	if r.notOffline {
		typ = "Refresh"
	}
	n := len(r.issued)
	r.refresh = jwt(map[string]any{"typ": typ, "jti": fmt.Sprintf("refresh-%d", n)})
	access := jwt(map[string]any{"typ": "Bearer", "preferred_username": r.user, "jti": fmt.Sprintf("access-%d", n)})
	id := jwt(map[string]any{"typ": "ID", "preferred_username": r.user, "jti": fmt.Sprintf("id-%d", n)})
	r.issued = append(r.issued, r.refresh, access, id)
	body := map[string]any{"access_token": access, "token_type": "Bearer", "expires_in": 300, "refresh_token": r.refresh,
		"refresh_expires_in": 0, "scope": "openid offline_access"}
	if !r.noIDToken {
		body["id_token"] = id
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(body)
}

func jwt(claims map[string]any) string {
	enc := func(v any) string { b, _ := json.Marshal(v); return base64.RawURLEncoding.EncodeToString(b) }
	return enc(map[string]string{"alg": "RS256", "kid": "k1"}) + "." + enc(claims) + ".c2lnbmF0dXJl"
}

func (r *fakeRealm) lastRefreshToken() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.refresh
}

func (r *fakeRealm) authorizeRequests() []url.Values {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]url.Values(nil), r.authorize...)
}

// expectNoToken fails if any token the realm issued appears in what login printed or returned.
func (r *fakeRealm) expectNoToken(t *testing.T, res loginRun) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	all := res.out + res.errOut + res.page
	if res.err != nil {
		all += res.err.Error()
	}
	for _, tok := range r.issued {
		if strings.Contains(all, tok) {
			t.Errorf("a token the realm issued was printed:\n%s", all)
		}
	}
}

// loginRun is what one run of login printed and returned, and the page the browser saw.
type loginRun struct {
	out, errOut string
	err         error
	status      int
	page        string
}

const urlPrefix = "Open this URL to sign in: "

// runLogin runs the plugin with args against c and plays the browser: it opens the URL login prints
// on stderr and follows the realm's redirect to login's loopback callback.
func runLogin(t *testing.T, c client.WithWatch, args ...string) loginRun {
	t.Helper()
	pr, pw := io.Pipe()
	var out bytes.Buffer
	root := newRootCommand(genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: pw}, c)
	root.SetArgs(args)
	done := make(chan error, 1)
	go func() {
		err := root.Execute()
		_ = pw.Close()
		done <- err
	}()
	var res loginRun
	var browser sync.WaitGroup
	var errOut strings.Builder
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		line := sc.Text()
		errOut.WriteString(line + "\n")
		if u, ok := strings.CutPrefix(line, urlPrefix); ok {
			browser.Add(1)
			go func() {
				defer browser.Done()
				resp, err := testBrowser.Get(u)
				if err != nil {
					res.page = err.Error()
					return
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				res.status, res.page = resp.StatusCode, string(b)
			}()
		}
	}
	res.err = <-done
	browser.Wait()
	res.out, res.errOut = out.String(), errOut.String()
	return res
}

func loginClient(objs ...client.Object) client.WithWatch {
	return fake.NewClientBuilder().WithScheme(scheme()).WithObjects(objs...).
		WithStatusSubresource(&v1alpha1.NomadConnection{}, &v1alpha1.ClusterNomadConnection{}).Build()
}

func refreshTokenSpec(issuer string) v1alpha1.NomadConnectionSpec {
	return v1alpha1.NomadConnectionSpec{
		URL: "http://127.0.0.1:1/nomad-oasis/api",
		Credentials: v1alpha1.Credentials{
			Method:    v1alpha1.CredentialMethodRefreshToken,
			SecretRef: v1alpha1.CredentialsSecretRef{Name: "nomad-bot"},
			OIDC:      &v1alpha1.OIDCProvider{IssuerURL: issuer, ClientID: v1alpha1.DefaultOIDCClientID},
		},
	}
}

func refreshTokenConn(issuer string) *v1alpha1.NomadConnection {
	return &v1alpha1.NomadConnection{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "oasis"}, Spec: refreshTokenSpec(issuer)}
}

func getSecret(t *testing.T, c client.Client, ns, name string) *corev1.Secret {
	t.Helper()
	s := &corev1.Secret{}
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, s); err != nil {
		t.Fatalf("Secret %s/%s: %v", ns, name, err)
	}
	return s
}

func TestLoginCreatesTheLabelledSecret(t *testing.T) {
	realm := newFakeRealm(t)
	c := loginClient(refreshTokenConn(realm.issuer))
	res := runLogin(t, c, "login", "-n", "team-a", "oasis", "--no-browser", "--wait=false", "--idp-hint", "helmholtz-aai")
	if res.err != nil {
		t.Fatalf("%v\n%s", res.err, res.errOut)
	}
	realm.expectNoToken(t, res)
	s := getSecret(t, c, "team-a", "nomad-bot")
	if s.Labels[v1alpha1.LabelCredentials] != "true" || s.Type != corev1.SecretTypeOpaque {
		t.Errorf("Secret labels %v, type %q: want the credentials label and Opaque", s.Labels, s.Type)
	}
	if got := string(s.Data[v1alpha1.DefaultRefreshTokenKey]); got == "" || got != realm.lastRefreshToken() || len(s.Data) != 1 {
		t.Errorf("Secret data keys %d; refresh_token is the realm's: %v", len(s.Data), got == realm.lastRefreshToken())
	}
	if res.status != http.StatusOK || !strings.Contains(res.page, "Signed in; you can close this window") {
		t.Errorf("browser saw %d %q", res.status, res.page)
	}
	if !strings.Contains(res.out, "Signed in as alice") {
		t.Errorf("stdout %q does not name the account", res.out)
	}
	if strings.Contains(res.errOut, "Warning") {
		t.Errorf("an offline token was warned about:\n%s", res.errOut)
	}
	auth := realm.authorizeRequests()
	if len(auth) != 1 {
		t.Fatalf("%d authorize requests", len(auth))
	}
	q := auth[0]
	for k, want := range map[string]string{"kc_idp_hint": "helmholtz-aai", "scope": "openid offline_access",
		"client_id": "nomad_public", "code_challenge_method": "S256", "response_type": "code"} {
		if q.Get(k) != want {
			t.Errorf("authorize %s=%q, want %q", k, q.Get(k), want)
		}
	}
	if len(q.Get("state")) < 32 {
		t.Errorf("state %q is not a long random value", q.Get("state"))
	}

	t.Run("no kc_idp_hint without --idp-hint; an online token is warned about", func(t *testing.T) {
		realm.notOffline = true
		res := runLogin(t, c, "login", "-n", "team-a", "oasis", "--no-browser", "--wait=false")
		if res.err != nil {
			t.Fatal(res.err)
		}
		realm.expectNoToken(t, res)
		if q := realm.authorizeRequests()[1]; q.Has("kc_idp_hint") {
			t.Errorf("kc_idp_hint sent: %v", q)
		}
		if !strings.Contains(res.errOut, "not an offline token") {
			t.Errorf("no warning about the online token:\n%s", res.errOut)
		}
	})
}

func TestLoginUpdatesOnlyItsKey(t *testing.T) {
	realm := newFakeRealm(t)
	conn := refreshTokenConn(realm.issuer)
	conn.Spec.Credentials.SecretRef.RefreshTokenKey = "rt"
	existing := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "nomad-bot",
			Labels: map[string]string{v1alpha1.LabelCredentials: "true", "team": "a"}, Annotations: map[string]string{"note": "keep"}},
		Data: map[string][]byte{"rt": []byte("old"), "username": []byte("bot"), "ca.crt": []byte("PEM")},
	}
	c := loginClient(conn, existing)
	res := runLogin(t, c, "login", "-n", "team-a", "oasis", "--no-browser", "--wait=false")
	if res.err != nil {
		t.Fatalf("%v\n%s", res.err, res.errOut)
	}
	realm.expectNoToken(t, res)
	s := getSecret(t, c, "team-a", "nomad-bot")
	if string(s.Data["rt"]) != realm.lastRefreshToken() {
		t.Error("the refresh token key was not updated")
	}
	if string(s.Data["username"]) != "bot" || string(s.Data["ca.crt"]) != "PEM" || len(s.Data) != 3 {
		t.Errorf("other keys changed: %d keys", len(s.Data))
	}
	if s.Labels["team"] != "a" || s.Annotations["note"] != "keep" {
		t.Errorf("metadata changed: %v %v", s.Labels, s.Annotations)
	}
	if !strings.Contains(res.errOut, "Secret team-a/nomad-bot (key rt)") {
		t.Errorf("stderr does not say where the token went:\n%s", res.errOut)
	}
}

func TestLoginRefusesAnUnlabelledSecret(t *testing.T) {
	realm := newFakeRealm(t)
	existing := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "nomad-bot"},
		Data: map[string][]byte{"refresh_token": []byte("old")}}
	c := loginClient(refreshTokenConn(realm.issuer), existing)
	res := runLogin(t, c, "login", "-n", "team-a", "oasis", "--no-browser", "--wait=false")
	if !errors.Is(res.err, errNotLabelled) ||
		!strings.Contains(res.err.Error(), "kubectl label secret -n team-a nomad-bot tokens.nomad-operator.dev/credentials=true") ||
		!strings.Contains(res.err.Error(), "opt-in") {
		t.Fatalf("err %v", res.err)
	}
	if n := len(realm.authorizeRequests()); n != 0 {
		t.Errorf("%d sign-ins before the refusal: it should come before the browser", n)
	}
	s := getSecret(t, c, "team-a", "nomad-bot")
	if string(s.Data["refresh_token"]) != "old" || len(s.Labels) != 0 {
		t.Error("the unlabelled Secret was changed")
	}
}

func TestLoginRefusesABadCallback(t *testing.T) {
	for name, set := range map[string]func(*fakeRealm){
		"a state that does not match": func(r *fakeRealm) { r.forgeState = true },
		"an error from the realm":     func(r *fakeRealm) { r.denyWith = "access_denied" },
	} {
		t.Run(name, func(t *testing.T) {
			realm := newFakeRealm(t)
			set(realm)
			c := loginClient(refreshTokenConn(realm.issuer))
			res := runLogin(t, c, "login", "-n", "team-a", "oasis", "--no-browser", "--wait=false")
			want := "state does not match"
			if realm.denyWith != "" {
				want = "access_denied (the user said no)"
			}
			if res.err == nil || !strings.Contains(res.err.Error(), want) {
				t.Fatalf("err %v, want %q", res.err, want)
			}
			if res.status != http.StatusBadRequest || !strings.Contains(res.page, "Sign-in failed") {
				t.Errorf("browser saw %d %q", res.status, res.page)
			}
			if err := c.Get(context.Background(), client.ObjectKey{Namespace: "team-a", Name: "nomad-bot"}, &corev1.Secret{}); err == nil {
				t.Error("a Secret was written")
			}
		})
	}
}

func TestLoginRefusesAConnectionNotUsingRefreshTokens(t *testing.T) {
	realm := newFakeRealm(t)
	password := refreshTokenConn(realm.issuer)
	password.Name, password.Spec.Credentials.Method, password.Spec.Credentials.OIDC = "password", "", nil
	noIssuer := refreshTokenConn(realm.issuer)
	noIssuer.Name, noIssuer.Spec.Credentials.OIDC = "no-issuer", nil
	c := loginClient(password, noIssuer)
	for name, want := range map[string]string{
		"password":  "signs in with method Password; login stores a refresh token, for method RefreshToken: set spec.credentials.method: RefreshToken and spec.credentials.oidc.issuerURL",
		"no-issuer": "has no spec.credentials.oidc.issuerURL",
		"missing":   "not found",
	} {
		res := runLogin(t, c, "login", "-n", "team-a", name, "--no-browser", "--wait=false")
		if res.err == nil || !strings.Contains(res.err.Error(), want) {
			t.Errorf("%s: err %v, want %q", name, res.err, want)
		}
	}
	if n := len(realm.authorizeRequests()); n != 0 {
		t.Errorf("%d sign-ins", n)
	}
}

func TestLoginClusterConnection(t *testing.T) {
	realm := newFakeRealm(t)
	cluster := &v1alpha1.ClusterNomadConnection{ObjectMeta: metav1.ObjectMeta{Name: "shared"},
		Spec: v1alpha1.ClusterNomadConnectionSpec{NomadConnectionSpec: refreshTokenSpec(realm.issuer)}}
	named := cluster.DeepCopy()
	named.Name, named.Spec.Credentials.SecretRef.Namespace = "named", "ops"
	c := loginClient(cluster, named)

	res := runLogin(t, c, "login", "--cluster", "shared", "--no-browser", "--wait=false", "-n", "ignored")
	if res.err != nil {
		t.Fatalf("%v\n%s", res.err, res.errOut)
	}
	realm.expectNoToken(t, res)
	if s := getSecret(t, c, defaultOperatorNamespace, "nomad-bot"); string(s.Data["refresh_token"]) != realm.lastRefreshToken() {
		t.Error("no refresh token in the operator namespace's Secret")
	}

	res = runLogin(t, c, "login", "named", "--cluster", "--secret-namespace", "elsewhere", "--no-browser", "--wait=false")
	if res.err != nil {
		t.Fatalf("%v\n%s", res.err, res.errOut)
	}
	if s := getSecret(t, c, "ops", "nomad-bot"); string(s.Data["refresh_token"]) != realm.lastRefreshToken() {
		t.Error("spec.credentials.secretRef.namespace was not used")
	}

	t.Run("a confidential client sends its secret", func(t *testing.T) {
		realm.clientSecret = "s3cret"
		conf := cluster.DeepCopy()
		conf.ResourceVersion, conf.Name, conf.Spec.Credentials.SecretRef.ClientSecretKey = "", "confidential", "client_secret"
		conf.Spec.Credentials.SecretRef.Name = "confidential-bot"
		sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ops", Name: "confidential-bot",
			Labels: map[string]string{v1alpha1.LabelCredentials: "true"}}, Data: map[string][]byte{"client_secret": []byte("s3cret")}}
		c := loginClient(conf, sec)
		res := runLogin(t, c, "login", "--cluster", "confidential", "--secret-namespace", "ops", "--no-browser", "--wait=false")
		if res.err != nil {
			t.Fatalf("%v\n%s", res.err, res.errOut)
		}
		if strings.Contains(res.out+res.errOut, "s3cret") {
			t.Error("the client secret was printed")
		}
		if s := getSecret(t, c, "ops", "confidential-bot"); string(s.Data["client_secret"]) != "s3cret" || string(s.Data["refresh_token"]) != realm.lastRefreshToken() {
			t.Error("the Secret does not hold both the client secret and the new refresh token")
		}
	})
}

func TestLoginWaitsUntilTheConnectionIsReady(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ready metav1.ConditionStatus
	}{
		{"a connection that was not Ready", metav1.ConditionFalse},
		// Ready before shows only the old sign-in: login waits for the echo of its sign-in request.
		{"a connection that was Ready with the old refresh token", metav1.ConditionTrue},
	} {
		t.Run(tc.name, func(t *testing.T) {
			realm := newFakeRealm(t)
			realm.noIDToken = true // the account then comes from the connection's status
			conn := refreshTokenConn(realm.issuer)
			conn.Status.Conditions = []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: tc.ready,
				Reason: v1alpha1.ReasonSecretNotFound, Message: "before", LastTransitionTime: metav1.Now()}}
			c := loginClient(conn)

			done := make(chan loginRun, 1)
			go func() {
				done <- runLogin(t, c, "login", "-n", "team-a", "oasis", "--no-browser", "--wait-timeout", "1m")
			}()
			res := playOperator(t, c, conn, done)
			if res.err != nil {
				t.Fatalf("%v\n%s", res.err, res.errOut)
			}
			realm.expectNoToken(t, res)
			if want := "Signed in as alice; NomadConnection team-a/oasis is Ready.\n"; res.out != want {
				t.Errorf("stdout %q, want %q", res.out, want)
			}
		})
	}
}

// playOperator plays the operator until login is done: once the Secret is there and the connection
// carries login's sign-in request, it reports a sign-in that answers it (again and again: the fake's
// watch does not replay changes made before it started).
func playOperator(t *testing.T, c client.Client, conn *v1alpha1.NomadConnection, done <-chan loginRun) loginRun {
	t.Helper()
	for {
		select {
		case res := <-done:
			return res
		case <-time.After(20 * time.Millisecond):
		}
		if err := c.Get(context.Background(), client.ObjectKey{Namespace: "team-a", Name: "nomad-bot"}, &corev1.Secret{}); err != nil {
			continue
		}
		var cur v1alpha1.NomadConnection
		if err := c.Get(context.Background(), client.ObjectKeyFromObject(conn), &cur); err != nil {
			t.Fatal(err)
		}
		request := cur.Annotations[v1alpha1.AnnotationSignIn]
		if request == "" || cur.Status.Credentials != nil && cur.Status.Credentials.SignInRequest == request {
			continue
		}
		// lastSignInTime is written at most hourly: it need not move for this sign-in.
		hourly := metav1.NewTime(time.Now().Add(-30 * time.Minute))
		cur.Status.Conditions[0].Status, cur.Status.Conditions[0].Reason = metav1.ConditionTrue, "SignedIn"
		cur.Status.Credentials = &v1alpha1.CredentialsStatus{Method: v1alpha1.CredentialMethodRefreshToken, Account: "alice",
			LastSignInTime: &hourly, SignInRequest: request}
		if err := c.Status().Update(context.Background(), &cur); err != nil {
			t.Fatal(err)
		}
	}
}

func TestLoginWaitReportsAConnectionThatStaysBroken(t *testing.T) {
	realm := newFakeRealm(t)
	conn := refreshTokenConn(realm.issuer)
	conn.Status.Conditions = []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse,
		Reason: v1alpha1.ReasonCredentialsInvalid, Message: "the realm refused the refresh token", LastTransitionTime: metav1.Now()}}
	c := loginClient(conn)
	res := runLogin(t, c, "login", "-n", "team-a", "oasis", "--no-browser", "--wait-timeout", "100ms")
	if !errors.Is(res.err, errTimedOut) || !strings.Contains(res.err.Error(), "the realm refused the refresh token") ||
		!strings.Contains(res.err.Error(), "the refresh token is stored") {
		t.Errorf("err %v", res.err)
	}
	realm.expectNoToken(t, res)
}

// A realm behind a private CA: login trusts it through the connection's spec.caBundle, as the operator does.
func TestLoginTrustsTheConnectionsCABundle(t *testing.T) {
	realm := newFakeRealmOn(t, httptest.NewTLSServer)
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: realm.Certificate().Raw})

	conn := refreshTokenConn(realm.issuer)
	res := runLogin(t, loginClient(conn), "login", "-n", "team-a", "oasis", "--no-browser", "--wait=false")
	if res.err == nil || !strings.Contains(res.err.Error(), "certificate") {
		t.Fatalf("without the CA bundle the realm's certificate must be refused, got %v", res.err)
	}

	conn = refreshTokenConn(realm.issuer)
	conn.Spec.CABundle = string(caPEM)
	c := loginClient(conn)
	res = runLogin(t, c, "login", "-n", "team-a", "oasis", "--no-browser", "--wait=false")
	if res.err != nil {
		t.Fatalf("%v\n%s", res.err, res.errOut)
	}
	if s := getSecret(t, c, "team-a", "nomad-bot"); string(s.Data["refresh_token"]) != realm.lastRefreshToken() {
		t.Error("the Secret does not hold the new refresh token")
	}
}
