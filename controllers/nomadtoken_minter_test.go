package controllers

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/internal/nomad"
	"github.com/nomad-operator/nomad-token-operator/test/nomadstub"
)

// A PAT belongs to one NOMAD user, and NOMAD answers 404 to anyone else, the same answer as for a
// pruned PAT. These tests move a NomadToken between connections, addresses and users and check that
// every PAT is revoked by its owner, or named in a Warning when nothing the operator holds can.

func TestConnectionRefChangeRevokesTheOldPATThroughTheConnectionThatMintedIt(t *testing.T) {
	w, first := newTwoAccountWorld(t)

	w.update(t, func(tok *v1alpha1.NomadToken) { tok.Spec.ConnectionRef.Name = "oasis2" })
	w.mustReconcile(t)
	tok := w.token(t)
	if w.active("bot", first.Status.TokenID) {
		t.Fatal("the first PAT is still active in the first bot account: it was 'revoked' through the new connection, whose account NOMAD answers 404")
	}
	if len(w.stub.ActivePATs("bot2")) != 1 || !w.active("bot2", tok.Status.TokenID) || tok.Status.ConnectionName != "oasis2" {
		t.Fatalf("new PAT %q through %q; bot2 active %v", tok.Status.TokenID, tok.Status.ConnectionName, w.stub.ActivePATs("bot2"))
	}
	if len(tok.Status.RevokePending) != 0 || !isReady(tok.Status.Conditions) {
		t.Fatalf("status not settled: revokePending %v conditions %v", tok.Status.RevokePending, tok.Status.Conditions)
	}
}

func TestCredentialsMovedToAnotherNomadUserReplaceThePATAndNameTheOneLeftBehind(t *testing.T) {
	w := newCrashWorld(t, interceptor.Funcs{})
	w.r.Verifier = NewVerifier(0)
	w.mustReconcile(t)
	first := w.assertOneActivePATInSecret(t)
	if first.Status.Account == "" {
		t.Fatal("status.account must record the NOMAD user that owns the PAT")
	}
	recorder := w.r.Recorder.(*events.FakeRecorder)
	drainEvents(recorder)

	// The team points the connection's credentials Secret at a new bot user; the connection's next
	// check lists that user's PATs, and the token's PAT is not among them.
	w.stub.AddUser("bot2", "pw2")
	w.moveCredentialsTo(t, "bot2", "pw2")
	w.recordList(client.ObjectKey{Namespace: "team-a", Name: "oasis"}, "", nil)

	// The old PAT stays queued (only its owner can revoke it), so the token is retried with backoff.
	if err := w.reconcile(t); err == nil || classify(err).reason != v1alpha1.EventRevokeWaiting {
		t.Fatalf("reconcile = %v, want the old PAT waiting for its owner", err)
	}
	tok := w.token(t)
	if tok.Status.TokenID == first.Status.TokenID || !w.active("bot2", tok.Status.TokenID) || !isReady(tok.Status.Conditions) {
		t.Fatalf("want a new PAT owned by the new user: tokenID %q, bot2 active %v", tok.Status.TokenID, w.stub.ActivePATs("bot2"))
	}
	if tok.Status.Account == first.Status.Account || len(tok.Status.RevokePending) != 1 || tok.Status.RevokePending[0].ID != first.Status.TokenID {
		t.Fatalf("account %q (was %q), revokePending %v: the old PAT must stay queued until it is revoked or expires",
			tok.Status.Account, first.Status.Account, tok.Status.RevokePending)
	}
	// The new user cannot revoke the old user's PAT (NOMAD would answer 404, which looks like
	// success): the operator must say so, not report it revoked.
	if !w.active("bot", first.Status.TokenID) {
		t.Fatal("test premise: only the old user could have revoked the old PAT")
	}
	got := drainEvents(recorder)
	if countPrefixed(got, corev1.EventTypeNormal+" PreviousRevoked") > 0 {
		t.Errorf("the old PAT was reported revoked: %q", got)
	}
	if countPrefixed(got, corev1.EventTypeWarning+" "+v1alpha1.EventRevokeWaiting) != 1 {
		t.Errorf("want one Warning naming the PAT left waiting, got %q", got)
	}
	// Once it has expired it is dead, and leaves the queue without a revocation.
	w.clock.SetTime(first.Status.ExpiresAt.Add(expirySkew + time.Minute))
	_ = w.reconcile(t)
	if pending := w.token(t).Status.RevokePending; slices.ContainsFunc(pending, func(r v1alpha1.PATReference) bool { return r.ID == first.Status.TokenID }) {
		t.Fatalf("revokePending %v: an expired PAT needs no revocation", pending)
	}
	if got := drainEvents(recorder); countPrefixed(got, corev1.EventTypeNormal+" "+v1alpha1.EventPreviousExpired) != 1 {
		t.Errorf("want a PreviousExpired Event, got %q", got)
	}
}

// newTwoAccountWorld is a world with a second connection, oasis2, logging in as another NOMAD user
// (bot2), and a token that holds its first PAT, minted through oasis as bot.
func newTwoAccountWorld(t *testing.T) (*crashWorld, *v1alpha1.NomadToken) {
	t.Helper()
	w := newCrashWorld(t, interceptor.Funcs{})
	w.stub.AddUser("bot2", "pw2")
	w.addConnection(t, "oasis2", "bot2", "pw2")
	w.mustReconcile(t)
	return w, w.assertOneActivePATInSecret(t)
}

// addConnection adds a Ready NomadConnection to the stand-in, logging in as user.
func (w *crashWorld) addConnection(t *testing.T, name, user, password string) {
	t.Helper()
	conn := w.oasis(t)
	creds := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: w.key.Namespace, Name: name + "-creds", Labels: credentialsLabels()},
		Data: map[string][]byte{"username": []byte(user), "password": []byte(password)}}
	other := &v1alpha1.NomadConnection{
		ObjectMeta: metav1.ObjectMeta{Namespace: w.key.Namespace, Name: name, UID: types.UID(name + "-uid"), Finalizers: []string{v1alpha1.FinalizerInUse}},
		Spec:       conn.Spec,
	}
	other.Spec.Credentials.SecretRef.Name = creds.Name
	for _, obj := range []client.Object{creds, other} {
		if err := w.client.Create(context.Background(), obj); err != nil {
			t.Fatal(err)
		}
	}
	w.setConnectionReady(t, name, metav1.ConditionTrue)
	if err := w.client.Get(context.Background(), client.ObjectKeyFromObject(other), other); err != nil {
		t.Fatal(err)
	}
	other.Status.InUseSecrets = secretsOf(other)
	if err := w.client.Status().Update(context.Background(), other); err != nil {
		t.Fatal(err)
	}
}

// moveURL points the connection at another address of the same NOMAD (127.0.0.1 -> localhost), as
// when a team moves from an in-cluster address to the ingress.
func (w *crashWorld) moveURL(t *testing.T) {
	t.Helper()
	conn := w.oasis(t)
	conn.Spec.URL = strings.Replace(conn.Spec.URL, "127.0.0.1", "localhost", 1)
	if err := w.client.Update(context.Background(), conn); err != nil {
		t.Fatal(err)
	}
	w.setConnectionReady(t, "oasis", metav1.ConditionTrue)
}

func TestAnotherAddressOfTheSameNomadStillRevokesReplacedPATs(t *testing.T) {
	w := newCrashWorld(t, interceptor.Funcs{})
	w.mustReconcile(t)
	first := w.assertOneActivePATInSecret(t)
	w.moveURL(t) // the account hash changes with the address; the NOMAD user does not

	w.clock.SetTime(tokenRenewalTime(first).Add(time.Second))
	w.mustReconcile(t)
	w.clock.Step(time.Hour) // past the grace period
	w.mustReconcile(t)
	if w.active("bot", first.Status.TokenID) {
		t.Fatalf("replaced PAT %s is still active an hour after renewal", first.Status.TokenID)
	}
	tok := w.assertOneActivePATInSecret(t)

	if err := w.client.Delete(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	w.mustReconcile(t)
	if err := w.client.Get(context.Background(), w.key, &v1alpha1.NomadToken{}); err == nil {
		t.Fatal("deletion is blocked although the connection still logs in as the PAT's owner")
	}
	if len(w.stub.ActivePATs("bot")) != 0 {
		t.Fatal("the PAT was not revoked on deletion")
	}
}

func TestStatusWithoutMinterIsBackfilledBeforeTheConnectionChanges(t *testing.T) {
	w, first := newTwoAccountWorld(t)
	// Status as written before connectionName and account were recorded.
	tok := w.token(t)
	tok.Status.ConnectionName, tok.Status.Account = "", ""
	if err := w.client.Status().Update(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	w.mustReconcile(t)
	if got := w.token(t).Status.ConnectionName; got != "oasis" {
		t.Fatalf("connectionName %q after a reconcile, want it backfilled from the unchanged spec", got)
	}

	w.update(t, func(tok *v1alpha1.NomadToken) { tok.Spec.ConnectionRef.Name = "oasis2" })
	w.mustReconcile(t)
	if w.active("bot", first.Status.TokenID) {
		t.Fatal("the old PAT was 'revoked' through the new connection")
	}
}

func TestAVerificationListFromAnotherAddressKeepsTheGracePeriod(t *testing.T) {
	w := newCrashWorld(t, interceptor.Funcs{})
	w.r.Verifier = NewVerifier(0)
	w.mustReconcile(t)
	first := w.assertOneActivePATInSecret(t)
	w.moveURL(t)

	// The connection's check, now through the new address, lists the PAT: its user owns it.
	conn := w.oasis(t)
	nc, err := nomad.New(nomad.Config{URL: conn.Spec.URL, Username: "bot", Password: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	pat := nomad.PAT{ID: first.Status.TokenID}
	w.recordList(client.ObjectKeyFromObject(conn), nc.Account(), []nomad.PAT{pat})
	w.mustReconcile(t)
	if got := w.token(t).Status.Account; got != nc.Account() || got == first.Status.Account {
		t.Fatalf("account %q, want the listing user's %q", got, nc.Account())
	}

	// So the renewal is an ordinary Overlap rotation: the old PAT keeps its grace period.
	w.clock.SetTime(tokenRenewalTime(first).Add(time.Second))
	w.recordList(client.ObjectKeyFromObject(conn), nc.Account(), []nomad.PAT{pat})
	w.mustReconcile(t)
	if tok := w.token(t); tok.Status.PreviousTokenID != first.Status.TokenID || !w.active("bot", first.Status.TokenID) {
		t.Fatalf("previous %q, old PAT active %v: want the grace period kept", tok.Status.PreviousTokenID, w.active("bot", first.Status.TokenID))
	}
}

// recordList hands the token controller a connection's list of active PATs, requested a second
// from now on the test clock: PATs issued more than a second before that are expected in it.
func (w *crashWorld) recordList(conn types.NamespacedName, account string, active []nomad.PAT) {
	w.clock.Step(2 * time.Second)
	c := &v1alpha1.NomadConnection{ObjectMeta: metav1.ObjectMeta{Namespace: conn.Namespace, Name: conn.Name}}
	w.r.Verifier.record(context.Background(), c, account, active, w.clock.Now(), 0, nil)
}

// A replaced PAT whose minting connection now logs in as another NOMAD user is revoked through a
// ClusterNomadConnection of its owner, even one whose allowedNamespaces leave the token's namespace
// out: revoking takes nothing from anyone but the PAT.
func TestAClusterNomadConnectionOfTheOwnerRevokesWhatTheMinterCannot(t *testing.T) {
	w := newCrashWorld(t, interceptor.Funcs{})
	w.r.Verifier = NewVerifier(0)
	w.r.ClusterConnections, w.r.Resolver.ClusterResourceNamespace = true, "ops"
	w.mustReconcile(t)
	first := w.assertOneActivePATInSecret(t)

	conn := w.oasis(t)
	platformCreds := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ops", Name: "platform-bot", Labels: credentialsLabels()},
		Data: map[string][]byte{"username": []byte("bot"), "password": []byte("pw")}}
	shared := &v1alpha1.ClusterNomadConnection{ObjectMeta: metav1.ObjectMeta{Name: "platform", UID: "platform-uid"},
		Spec: v1alpha1.ClusterNomadConnectionSpec{NomadConnectionSpec: conn.Spec}} // allows no namespace
	shared.Spec.Credentials.SecretRef.Name = platformCreds.Name
	for _, obj := range []client.Object{platformCreds, shared} {
		if err := w.client.Create(context.Background(), obj); err != nil {
			t.Fatal(err)
		}
	}

	// The team's connection moves to another bot user, who cannot revoke the first PAT.
	w.stub.AddUser("bot2", "pw2")
	w.moveCredentialsTo(t, "bot2", "pw2")
	w.recordList(client.ObjectKey{Namespace: "team-a", Name: "oasis"}, "", nil)
	if err := w.reconcile(t); err != nil {
		t.Fatalf("reconcile = %v, want the old PAT revoked through the platform's connection", err)
	}
	tok := w.token(t)
	if w.active("bot", first.Status.TokenID) || len(tok.Status.RevokePending) != 0 {
		t.Fatalf("old PAT active %v, revokePending %v: its owner's ClusterNomadConnection must revoke it",
			w.active("bot", first.Status.TokenID), tok.Status.RevokePending)
	}
}

// moveCredentialsTo points the team's credentials Secret (team-a/bot, used by oasis) at another
// NOMAD user.
func (w *crashWorld) moveCredentialsTo(t *testing.T, user, password string) {
	t.Helper()
	creds := &corev1.Secret{}
	if err := w.client.Get(context.Background(), client.ObjectKey{Namespace: "team-a", Name: "bot"}, creds); err != nil {
		t.Fatal(err)
	}
	creds.Data = map[string][]byte{"username": []byte(user), "password": []byte(password)}
	if err := w.client.Update(context.Background(), creds); err != nil {
		t.Fatal(err)
	}
}

// An issuance whose answer was lost, and whose minting user no connection logs in as any more, is not
// dropped: it waits in the revoke queue, by its marker, until a connection of that user can look.
func TestALostIssuanceOutOfReachIsKeptUntilItsOwnerCanLook(t *testing.T) {
	w := newCrashWorld(t, interceptor.Funcs{})
	w.stub.InjectFault("create", 1, nomadstub.Fault{LoseResponse: true})
	if err := w.reconcile(t); err == nil {
		t.Fatal("test premise: the create's answer is lost")
	}
	orphan := w.stub.ActivePATs("bot")[0].ID
	// The credentials move to another user before the operator looks again.
	w.stub.AddUser("bot2", "pw2")
	w.moveCredentialsTo(t, "bot2", "pw2")
	_ = w.reconcile(t) // settles: nobody can look, so the queue waits (and the token backs off)
	tok := w.token(t)
	if tok.Status.PendingIssuance != nil || len(tok.Status.RevokePending) != 1 || tok.Status.RevokePending[0].Marker == "" ||
		tok.Status.RevokePending[0].ExpiresAt == nil {
		t.Fatalf("revokePending %v: the issuance must stay queued by its marker, with an expiry", tok.Status.RevokePending)
	}
	_ = w.reconcile(t) // the token gets a PAT of the new user; the marker entry keeps waiting
	if !w.active("bot", orphan) {
		t.Fatal("test premise: only the old user can revoke the orphan")
	}
	// A connection of the old user appears: the queue finds the orphan by its marker and revokes it.
	w.addConnection(t, "oasis-old", "bot", "pw")
	if err := w.reconcile(t); err != nil {
		t.Fatalf("reconcile: %v", err)
	}
	if w.active("bot", orphan) {
		t.Fatal("the orphan of the lost create stays active although its owner's connection is back")
	}
	if q := w.token(t).Status.RevokePending; len(q) != 0 {
		t.Fatalf("revokePending %v, want the marker entry gone once its PATs are revoked", q)
	}
}
