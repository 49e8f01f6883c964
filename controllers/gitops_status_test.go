package controllers

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
)

// tokenAt is a NomadToken of generation gen whose Ready condition was set by the report step's own
// helper, after observed was recorded (0: never reconciled successfully).
func tokenAt(gen, observed int64, ready metav1.ConditionStatus, reason string) *v1alpha1.NomadToken {
	tok := &v1alpha1.NomadToken{ObjectMeta: metav1.ObjectMeta{Name: "t", Namespace: "ns", Generation: gen}}
	tok.Status.ObservedGeneration = observed
	setReady(tok, ready, reason, "the message of "+reason)
	return tok
}

// connectionAt is a connection of generation gen after check() set Ready (it records the
// generation on every verdict).
func connectionAt(conn v1alpha1.Connection, gen int64, ready metav1.ConditionStatus, reason string) client.Object {
	conn.SetName("c")
	conn.SetGeneration(gen)
	st := conn.ConnectionStatus()
	setReadyCondition(&st.Conditions, gen, ready, reason, "the message of "+reason)
	st.ObservedGeneration = gen
	return conn
}

// waitingForConsumers is a Ready token past an Overlap rotation with spec.rotation.waitForConsumers,
// whose ConsumersMoved condition is status and reason: the Secret holds a working PAT all along, so
// whatever the old PAT's fate, GitOps tools must see the token as done.
func waitingForConsumers(status metav1.ConditionStatus, reason string) *v1alpha1.NomadToken {
	tok := tokenAt(3, 3, metav1.ConditionTrue, v1alpha1.ReasonIssued)
	setCondition(&tok.Status.Conditions, 3, v1alpha1.ConditionConsumersMoved, status, reason, "the message of "+reason)
	return tok
}

func TestGitOpsVerdicts(t *testing.T) {
	deleting := tokenAt(1, 1, metav1.ConditionFalse, v1alpha1.ReasonRevokeFailed)
	deleting.DeletionTimestamp = &metav1.Time{Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	deleting.Finalizers = []string{v1alpha1.FinalizerRevoke}
	recovered := tokenAt(2, 2, metav1.ConditionFalse, v1alpha1.ReasonInvalidScopes)
	setReady(recovered, metav1.ConditionTrue, v1alpha1.ReasonIssued, "Secret t holds PAT p")
	retrying := tokenAt(2, 1, metav1.ConditionTrue, v1alpha1.ReasonIssued)
	setReady(retrying, metav1.ConditionFalse, v1alpha1.ReasonNomadUnavailable, "NOMAD did not answer")

	tests := []struct {
		name    string
		obj     client.Object
		want    status.Status
		wantArg string // when Argo CD's verdict deliberately differs from argoFor[want]
	}{
		{name: "a token being issued is in progress", obj: tokenAt(1, 0, metav1.ConditionFalse, v1alpha1.ReasonProgressing), want: status.InProgressStatus},
		{name: "a Ready token is current", obj: tokenAt(1, 1, metav1.ConditionTrue, v1alpha1.ReasonIssued), want: status.CurrentStatus},
		{name: "a Ready token whose spec changed is in progress (observedGeneration lags)", obj: tokenAt(2, 1, metav1.ConditionTrue, v1alpha1.ReasonIssued), want: status.InProgressStatus},
		{name: "a token re-issued after a spec change is in progress", obj: tokenAt(2, 1, metav1.ConditionFalse, v1alpha1.ReasonProgressing), want: status.InProgressStatus},
		{name: "a token whose new spec NOMAD refuses has failed, though observedGeneration lagged", obj: tokenAt(2, 1, metav1.ConditionFalse, v1alpha1.ReasonInvalidScopes), want: status.FailedStatus},
		{name: "a token refused by the connection's policy has failed", obj: tokenAt(1, 0, metav1.ConditionFalse, v1alpha1.ReasonPolicyViolation), want: status.FailedStatus},
		{name: "a token not allowed on a cluster connection has failed", obj: tokenAt(1, 0, metav1.ConditionFalse, v1alpha1.ReasonConnectionNotAllowed), want: status.FailedStatus},
		{name: "a token whose Secret name is taken has failed", obj: tokenAt(1, 0, metav1.ConditionFalse, v1alpha1.ReasonSecretConflict), want: status.FailedStatus},
		{name: "a token with refused credentials has failed", obj: tokenAt(1, 0, metav1.ConditionFalse, v1alpha1.ReasonCredentialsInvalid), want: status.FailedStatus},
		{name: "a token left with a revoked PAT by revoke-now has failed", obj: tokenAt(1, 1, metav1.ConditionFalse, v1alpha1.ReasonRevokedWithoutReplacement), want: status.FailedStatus},
		{name: "a token waiting for NOMAD to come back is in progress", obj: tokenAt(1, 0, metav1.ConditionFalse, v1alpha1.ReasonNomadUnavailable), want: status.InProgressStatus},
		{name: "a Ready token that failed over to NOMAD being down is in progress", obj: retrying, want: status.InProgressStatus},
		{name: "a token waiting for its connection to exist is in progress", obj: tokenAt(1, 0, metav1.ConditionFalse, v1alpha1.ReasonConnectionNotFound), want: status.InProgressStatus},
		{name: "a token waiting for its connection to be Ready is in progress", obj: tokenAt(1, 0, metav1.ConditionFalse, v1alpha1.ReasonConnectionNotReady), want: status.InProgressStatus},
		{name: "a token Ready again after a refusal is current", obj: recovered, want: status.CurrentStatus},
		{name: "a Ready token whose old PAT is still in use (ConsumersMoved=False OldTokenInUse) is current", obj: waitingForConsumers(metav1.ConditionFalse, v1alpha1.ReasonOldTokenInUse), want: status.CurrentStatus},
		{name: "a Ready token whose old PAT's use NOMAD cannot tell (ConsumersMoved=False OldTokenUseUnknown) is current", obj: waitingForConsumers(metav1.ConditionFalse, v1alpha1.ReasonOldTokenUseUnknown), want: status.CurrentStatus},
		{name: "a Ready token whose restart targets still roll out (ConsumersMoved=False RolloutInProgress) is current", obj: waitingForConsumers(metav1.ConditionFalse, v1alpha1.ReasonRolloutInProgress), want: status.CurrentStatus},
		{name: "a Ready token in its old PAT's grace period (ConsumersMoved=Unknown GracePeriod) is current", obj: waitingForConsumers(metav1.ConditionUnknown, v1alpha1.ReasonGracePeriod), want: status.CurrentStatus},
		{name: "a Ready token whose consumers moved (ConsumersMoved=True) is current", obj: waitingForConsumers(metav1.ConditionTrue, v1alpha1.ReasonConsumersMoved), want: status.CurrentStatus},
		{name: "a token being deleted is terminating, whatever blocks it", obj: deleting, want: status.TerminatingStatus},
		{
			name: "a token the operator has not seen yet: kstatus assumes current, Argo CD waits",
			obj:  &v1alpha1.NomadToken{ObjectMeta: metav1.ObjectMeta{Name: "t", Namespace: "ns", Generation: 1}},
			want: status.CurrentStatus, wantArg: "Progressing",
		},
		{name: "a connected NomadConnection is current", obj: connectionAt(&v1alpha1.NomadConnection{}, 1, metav1.ConditionTrue, v1alpha1.ReasonConnected), want: status.CurrentStatus},
		{name: "a NomadConnection with a wrong password has failed", obj: connectionAt(&v1alpha1.NomadConnection{}, 3, metav1.ConditionFalse, v1alpha1.ReasonCredentialsInvalid), want: status.FailedStatus},
		{name: "a NomadConnection whose Secret is not there yet is in progress", obj: connectionAt(&v1alpha1.NomadConnection{}, 1, metav1.ConditionFalse, v1alpha1.ReasonSecretNotFound), want: status.InProgressStatus},
		{name: "a NomadConnection whose NOMAD is unreachable is in progress", obj: connectionAt(&v1alpha1.NomadConnection{}, 1, metav1.ConditionFalse, v1alpha1.ReasonUnreachable), want: status.InProgressStatus},
		{name: "a connected ClusterNomadConnection is current", obj: connectionAt(&v1alpha1.ClusterNomadConnection{}, 1, metav1.ConditionTrue, v1alpha1.ReasonConnected), want: status.CurrentStatus},
		{name: "a ClusterNomadConnection with an invalid spec has failed", obj: connectionAt(&v1alpha1.ClusterNomadConnection{}, 2, metav1.ConditionFalse, v1alpha1.ReasonInvalidSpec), want: status.FailedStatus},
		{name: "a ClusterNomadConnection without the PAT API has failed", obj: connectionAt(&v1alpha1.ClusterNomadConnection{}, 1, metav1.ConditionFalse, v1alpha1.ReasonPATPathNotFound), want: status.FailedStatus},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := kstatusOf(tt.obj)
			if err != nil {
				t.Fatal(err)
			}
			if res.Status != tt.want {
				t.Errorf("kstatus: %s (%s), want %s", res.Status, res.Message, tt.want)
			}
			wantArgo := argoFor[tt.want]
			if tt.wantArg != "" {
				wantArgo = tt.wantArg
			}
			got, msg, err := argoHealthOf(tt.obj)
			if err != nil {
				t.Fatal(err)
			}
			if got != wantArgo {
				t.Errorf("health.lua: %s (%s), want %s", got, msg, wantArgo)
			}
		})
	}
}

func TestSetReadyConditionKeepsReconcilingAndStalledInStep(t *testing.T) {
	var conds []metav1.Condition
	steps := []struct {
		status            metav1.ConditionStatus
		reason            string
		stalled, progress bool
	}{
		{metav1.ConditionFalse, v1alpha1.ReasonProgressing, false, true},
		{metav1.ConditionFalse, v1alpha1.ReasonInvalidScopes, true, false},
		{metav1.ConditionFalse, v1alpha1.ReasonNomadUnavailable, false, true},
		{metav1.ConditionTrue, v1alpha1.ReasonIssued, false, false},
		{metav1.ConditionFalse, "SomeReasonAddedLater", false, true},
	}
	for _, s := range steps {
		got := setReadyCondition(&conds, 4, s.status, s.reason, "why")
		if got != s.stalled {
			t.Errorf("%s: stalled %v, want %v", s.reason, got, s.stalled)
		}
		for condType, want := range map[string]bool{v1alpha1.ConditionStalled: s.stalled, v1alpha1.ConditionReconciling: s.progress} {
			c := meta.FindStatusCondition(conds, condType)
			if (c != nil) != want {
				t.Errorf("after %s %s: %s present %v, want %v", s.status, s.reason, condType, c != nil, want)
			}
			if c != nil && (c.Status != metav1.ConditionTrue || c.Reason != s.reason || c.Message != "why" || c.ObservedGeneration != 4) {
				t.Errorf("after %s: %s is %+v, want True with Ready's reason and message", s.reason, condType, c)
			}
		}
	}
}

// TestReadyReasonsAreClassified: every reason declared in api/v1alpha1 that Ready=False can carry has
// a GitOps verdict in readyFalseNeedsPerson; a new reason must be placed there on purpose.
func TestReadyReasonsAreClassified(t *testing.T) {
	notReadyFalse := map[string]bool{
		v1alpha1.ReasonIssued: true, v1alpha1.ReasonConnected: true, // Ready=True
		v1alpha1.ReasonAccountChanged: true,                           // Events only
		v1alpha1.ReasonPlainHTTP:      true, v1alpha1.ReasonTLS: true, // InsecureTransport
		v1alpha1.ReasonNearPATLimit: true, v1alpha1.ReasonWithinPATLimit: true, // NearPATLimit
		v1alpha1.ReasonRestartTargetNotOptedIn: true, v1alpha1.ReasonRestartTargetsOptedIn: true, // RestartTargets
		v1alpha1.ReasonConsumersMoved: true, v1alpha1.ReasonGracePeriod: true, v1alpha1.ReasonOldTokenInUse: true, // ConsumersMoved
		v1alpha1.ReasonOldTokenUseUnknown: true, v1alpha1.ReasonRolloutInProgress: true,
	}
	_, here, _, _ := runtime.Caller(0)
	f, err := parser.ParseFile(token.NewFileSet(), filepath.Join(filepath.Dir(here), "..", "api", "v1alpha1", "conditions.go"), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	ast.Inspect(f, func(n ast.Node) bool {
		vs, ok := n.(*ast.ValueSpec)
		if !ok || len(vs.Names) != 1 || len(vs.Values) != 1 || !strings.HasPrefix(vs.Names[0].Name, "Reason") {
			return true
		}
		lit, ok := vs.Values[0].(*ast.BasicLit)
		if !ok {
			return true
		}
		reason, _ := strconv.Unquote(lit.Value)
		found++
		if _, classified := readyFalseNeedsPerson[reason]; !classified && !notReadyFalse[reason] {
			t.Errorf("%s (%q) has no GitOps verdict: add it to readyFalseNeedsPerson (and docs/gitops.md)", vs.Names[0].Name, reason)
		}
		return true
	})
	if found < 20 {
		t.Fatalf("found only %d Reason constants in conditions.go: the parse is wrong", found)
	}
}

// TestArgoCDSnippetIsTheTestedScript: docs/gitops.md installs exactly config/argocd/health.lua, for
// each kind of the operator.
func TestArgoCDSnippetIsTheTestedScript(t *testing.T) {
	script, err := healthLua()
	if err != nil {
		t.Fatal(err)
	}
	_, here, _, _ := runtime.Caller(0)
	doc, err := os.ReadFile(filepath.Join(filepath.Dir(here), "..", "docs", "gitops.md"))
	if err != nil {
		t.Fatal(err)
	}
	var indented strings.Builder
	for _, line := range strings.SplitAfter(script, "\n") {
		if strings.TrimSpace(line) != "" {
			indented.WriteString("    ")
		}
		indented.WriteString(line)
	}
	for _, kind := range []string{"NomadToken", "NomadConnection", "ClusterNomadConnection"} {
		want := "  resource.customizations.health." + v1alpha1.GroupVersion.Group + "_" + kind + ": |\n" + indented.String()
		if !strings.Contains(string(doc), want) {
			t.Errorf("docs/gitops.md does not install config/argocd/health.lua for %s as\n%s", kind, want)
		}
	}
}
