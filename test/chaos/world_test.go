package chaos

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/test/harness"
)

// connectionName is every tenant's one NomadConnection.
const connectionName = harness.TenantConnection

// tenant is one namespace with a NomadConnection logging in as a stand-in account of its own, so
// that the PATs of one spec never count among another's.
type tenant struct {
	ns, user, password string
}

// newTenant adds the stand-in account and creates the namespace, the credentials Secret and the
// NomadConnection. It does not wait for the connection: no manager may be running yet.
func newTenant(ctx context.Context, ns string) *tenant {
	GinkgoHelper()
	user, password, _, err := harness.CreateTenant(ctx, controlPl.Client, stub, ns)
	Expect(err).NotTo(HaveOccurred())
	return &tenant{ns: ns, user: user, password: password}
}

// createToken creates a NomadToken (Secret of the same name) with one scope. With a renewBefore in
// rot, the PAT lives one day, so that renewBefore close to a day renews it seconds after issuance.
func (t *tenant) createToken(ctx context.Context, name string, rot v1alpha1.Rotation) {
	GinkgoHelper()
	Expect(controlPl.Client.Create(ctx, harness.NomadToken(t.ns, name, connectionName, rot))).To(Succeed())
}

// patPath is the PAT prefix the tenant's connection detected, for harness.ProbePAT.
func (t *tenant) patPath(ctx context.Context) (v1alpha1.PATPathMode, error) {
	var conn v1alpha1.NomadConnection
	if err := controlPl.Client.Get(ctx, client.ObjectKey{Namespace: t.ns, Name: connectionName}, &conn); err != nil {
		return "", err
	}
	if readyOf(conn.Status.Conditions).Status != metav1.ConditionTrue || conn.Status.PATPath == "" {
		return "", fmt.Errorf("NomadConnection %s/%s is not Ready: %+v", t.ns, connectionName, readyOf(conn.Status.Conditions))
	}
	return conn.Status.PATPath, nil
}

// world is one look at the stand-in and then at Kubernetes, and what is wrong with it.
type world struct {
	// pats are every PAT the tenant's account ever had, revoked ones included.
	pats []harness.StubPAT
	// tokens are the tenant's NomadTokens, by name.
	tokens map[string]v1alpha1.NomadToken
	// strays are active PATs that nothing accounts for: leaks.
	strays []harness.StubPAT
	// problems are everything wrong, strays included; empty means the world is consistent.
	problems []string
}

// observe reads the stand-in first and Kubernetes right after, so that a PAT created in between is
// simply not seen, and checks:
//
//  1. every NomadToken is Ready=True for its current generation;
//  2. every NomadToken's Secret holds the PAT its status names, and NOMAD's API accepts it
//     (harness.ProbePAT, which NOMAD answers 403 "Missing scopes" for a valid PAT);
//  3. every active PAT of the tenant's account is accounted for: it is some NomadToken's
//     status.tokenID, previousTokenID or revokePending entry, a Secret's token-id annotation, or it
//     carries the marker of a create still in flight (status.pendingIssuance). Any other is a stray.
//
// The world keeps moving (short lifetimes rotate), so a rotation in progress can fail one look;
// callers retry the whole look, and a real leak fails every one of them.
func (t *tenant) observe(ctx context.Context) (*world, error) {
	st, err := stub.State(ctx)
	if err != nil {
		return nil, err
	}
	var tokens v1alpha1.NomadTokenList
	if err := controlPl.Client.List(ctx, &tokens, client.InNamespace(t.ns)); err != nil {
		return nil, err
	}
	var secrets corev1.SecretList
	if err := controlPl.Client.List(ctx, &secrets, client.InNamespace(t.ns)); err != nil {
		return nil, err
	}
	mode, err := t.patPath(ctx)
	if err != nil {
		return nil, err
	}
	w := &world{pats: st.Users[t.user].PATs, tokens: map[string]v1alpha1.NomadToken{}}
	problem := func(format string, args ...any) { w.problems = append(w.problems, fmt.Sprintf(format, args...)) }

	accounted := map[string]string{} // PAT id -> what holds it
	var pendingMarkers []string
	secretByName := map[string]corev1.Secret{}
	for _, s := range secrets.Items {
		secretByName[s.Name] = s
	}
	for _, tok := range tokens.Items {
		w.tokens[tok.Name] = tok
		if r := readyOf(tok.Status.Conditions); r.Status != metav1.ConditionTrue {
			problem("NomadToken %s: Ready=%s %s: %s", tok.Name, r.Status, r.Reason, harness.Redact(r.Message))
		} else if tok.Status.ObservedGeneration != tok.Generation {
			problem("NomadToken %s: observedGeneration %d, generation %d", tok.Name, tok.Status.ObservedGeneration, tok.Generation)
		}
		for what, id := range map[string]string{"tokenID": tok.Status.TokenID, "previousTokenID": tok.Status.PreviousTokenID} {
			if id != "" {
				accounted[id] = tok.Name + " status." + what
			}
		}
		for _, r := range tok.Status.RevokePending {
			accounted[r.ID] = tok.Name + " status.revokePending"
		}
		if p := tok.Status.PendingIssuance; p != nil && p.Marker != "" {
			pendingMarkers = append(pendingMarkers, "[nomad-token-operator "+p.Marker+"]")
		}

		name := tok.Status.SecretName
		if name == "" {
			name = tok.Name
		}
		s, ok := secretByName[name]
		if !ok {
			problem("NomadToken %s: no Secret %s", tok.Name, name)
			continue
		}
		id := s.Annotations[v1alpha1.AnnotationTokenID]
		if id != "" {
			accounted[id] = "Secret " + s.Name
		}
		if id != tok.Status.TokenID {
			problem("NomadToken %s: its Secret holds PAT %q, status.tokenID is %q", tok.Name, id, tok.Status.TokenID)
		}
		raw := s.Data[v1alpha1.DefaultSecretKey]
		res, err := harness.ProbePAT(ctx, stub.APIURL, mode, raw)
		switch {
		case err != nil:
			return nil, err
		case !res.Valid():
			problem("NomadToken %s: NOMAD answers %s for the PAT %s in its Secret %s", tok.Name, res, id, harness.Describe(raw))
		}
	}
	if len(tokens.Items) == 0 {
		problem("no NomadTokens in %s", t.ns)
	}
	for _, p := range st.ActivePATs(t.user) {
		if _, ok := accounted[p.ID]; ok {
			continue
		}
		desc := description(p)
		if slices.ContainsFunc(pendingMarkers, func(m string) bool { return strings.Contains(desc, m) }) {
			continue // a create in flight; recovery finds it by its marker
		}
		w.strays = append(w.strays, p)
		problem("stray active PAT %s (created %s, description %q): no NomadToken or Secret accounts for it", p.ID, p.CreatedAt, desc)
	}
	return w, nil
}

// err is nil for a consistent world, or lists what is wrong.
func (w *world) err() error {
	if len(w.problems) == 0 {
		return nil
	}
	return errors.New(strings.Join(w.problems, "\n"))
}

// awaitConsistent retries observe until one look finds nothing wrong, for at most timeout, and
// returns that world; on timeout it fails with the last look's problems.
func (t *tenant) awaitConsistent(ctx context.Context, timeout time.Duration) *world {
	GinkgoHelper()
	var w *world
	Eventually(ctx, func() error {
		var err error
		if w, err = t.observe(ctx); err != nil {
			return err
		}
		return w.err()
	}).WithTimeout(timeout).WithPolling(500*time.Millisecond).Should(Succeed(),
		"every NomadToken Ready, every Secret's PAT valid at NOMAD, no stray PAT")
	return w
}

// patsOf are the PATs minted for one NomadToken (their description carries its marker prefix,
// "[nomad-token-operator <first 8 of the UID>-"), oldest first.
func patsOf(pats []harness.StubPAT, tok v1alpha1.NomadToken) []harness.StubPAT {
	uid := string(tok.UID)
	if len(uid) > 8 {
		uid = uid[:8]
	}
	prefix := "[nomad-token-operator " + uid + "-"
	var out []harness.StubPAT
	for _, p := range pats {
		if strings.Contains(description(p), prefix) {
			out = append(out, p)
		}
	}
	slices.SortStableFunc(out, func(a, b harness.StubPAT) int { return stubTime(a.CreatedAt).Compare(stubTime(b.CreatedAt)) })
	return out
}

// stubTime parses one of the stand-in's datetimes; the zero time if it cannot.
func stubTime(s string) time.Time {
	t, err := harness.ParseStubTime(s)
	if err != nil {
		return time.Time{}
	}
	return t
}

func description(p harness.StubPAT) string {
	if p.Description == nil {
		return ""
	}
	return *p.Description
}

// deleteAll deletes every NomadToken of the tenant, waits until they are gone (their finalizer
// revokes their PATs) and checks that the account holds no active PAT afterwards.
func (t *tenant) deleteAll(ctx context.Context) {
	GinkgoHelper()
	Expect(controlPl.Client.DeleteAllOf(ctx, &v1alpha1.NomadToken{}, client.InNamespace(t.ns))).To(Succeed())
	Eventually(ctx, func(g Gomega) {
		var list v1alpha1.NomadTokenList
		g.Expect(controlPl.Client.List(ctx, &list, client.InNamespace(t.ns))).To(Succeed())
		g.Expect(list.Items).To(BeEmpty(), "NomadTokens left")
	}).WithTimeout(time.Minute).WithPolling(200 * time.Millisecond).Should(Succeed())
	st, err := stub.State(ctx)
	Expect(err).NotTo(HaveOccurred())
	var left []string
	for _, p := range st.ActivePATs(t.user) {
		left = append(left, fmt.Sprintf("%s %q", p.ID, description(p)))
	}
	Expect(left).To(BeEmpty(), "deleting every NomadToken revokes every PAT")
}

// expectNoLeaks scans manager logs for raw PATs and the tenant's password.
func (t *tenant) expectNoLeaks(logs []string) {
	GinkgoHelper()
	for _, path := range logs {
		leaks, err := harness.ScanFile(path, t.password)
		Expect(err).NotTo(HaveOccurred())
		Expect(leaks).To(BeEmpty(), "secret #0 is the bot password")
	}
}
