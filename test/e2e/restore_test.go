package e2e

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/test/harness"
)

// A restore from backup (docs/lifecycle.md, "Restore from backup") re-creates a namespace's objects under
// new UIDs and without status. The spec backs up a tenant's namespace, deletes it as a cluster rebuild
// would (finalizers stripped: no PAT is revoked), and restores it from the dump the way Velero does:
// name, namespace, labels, annotations and data kept, everything else (UID, resourceVersion, status,
// finalizers, ownerReferences) dropped, Secrets before custom resources. Other tools (a dump applied
// again) keep ownerReferences, pointing at UIDs that no longer exist: two of the three token Secrets
// keep theirs. A real kube-controller-manager runs the garbage collector, which deletes a dependent
// whose owners are all gone within a second of its creation, before any operator could adopt it: those
// Secrets are lost, and their tokens mint new PATs. The Secret restored without ownerReference is
// adopted with the PAT it holds. The manager runs with --orphan-sweep=revoke and its clock two hours
// ahead (--testing-clock-offset), so that every PAT is old enough for the sweep to consider it: the sweep
// revokes the PATs nothing restored holds, and never the one the adopted Secret holds.
var _ = Describe("A restore from backup", func() {
	const (
		ns = "restore"
		// sweepInterval is the restored manager's --verification-interval: the connection check, and so
		// the orphan sweep, runs this often.
		sweepInterval = 2 * time.Second
	)

	It("adopts a Secret restored without ownerReference and its PAT, which the orphan sweep leaves alone; a Secret restored with its dead ownerReference is garbage-collected", func(ctx SpecContext) {
		c := controlPl.Client

		By("running a manager of the spec's own, with --orphan-sweep=revoke, and a stand-in of its own")
		stopSuiteManager()
		DeferCleanup(startSuiteManager) // runs last: after this spec's manager stopped
		own, _ := startOwnStub(ctx, "restore", harness.StubOptions{})
		var running *harness.Manager
		startManager := func(ctx context.Context) {
			GinkgoHelper()
			m, err := harness.StartManager(ctx, harness.ManagerOptions{
				Bin:        os.Getenv("MANAGER_BIN"),
				Kubeconfig: managerKubeconfig,
				LogPath:    filepath.Join(workDir, "manager-restore.log"),
				Args: []string{
					"--zap-log-level=debug",
					"--verification-interval=" + sweepInterval.String(),
					"--orphan-sweep=revoke",
					// The sweep leaves PATs younger than an hour alone; the PATs of a backup are older.
					"--testing-clock-offset=2h",
				},
			})
			succeed(err)
			running = m
		}
		stopManager := func() {
			GinkgoHelper()
			if running != nil {
				m := running
				running = nil
				Expect(m.Stop(20 * time.Second)).To(Succeed())
			}
		}
		startManager(ctx)
		DeferCleanup(stopManager)
		// The restored manager joins the report of a failed spec (the suite's AfterEach shows the suite's manager).
		DeferCleanup(func() {
			if CurrentSpecReport().Failed() && running != nil {
				AddReportEntry("restore manager log (tail)", running.Tail(80))
			}
		})

		user, _, conn, err := harness.CreateTenant(ctx, c, own, ns)
		Expect(err).NotTo(HaveOccurred())
		deleteNamespaceAtCleanup(ns)
		connKey := client.ObjectKeyFromObject(conn)

		// alpha and gamma keep their ownerReferences through the restore (dead UIDs), beta loses it, as
		// Velero's restore does; late is created after the backup, so nothing restored accounts for its
		// PAT: the sweep's control, which must be revoked.
		restored := []string{"alpha", "beta", "gamma"}
		keepsOwner := map[string]bool{"alpha": true, "gamma": true}
		var keys []client.ObjectKey
		for _, name := range restored {
			tok := harness.NomadToken(ns, name, conn.Name, v1alpha1.Rotation{})
			Expect(c.Create(ctx, tok)).To(Succeed())
			keys = append(keys, client.ObjectKeyFromObject(tok))
		}
		ids, raws, oldUIDs := map[string]string{}, map[string][]byte{}, map[string]types.UID{}
		for _, key := range keys {
			tok := waitReady(ctx, key)
			var s corev1.Secret
			Expect(c.Get(ctx, key, &s)).To(Succeed())
			Expect(s.Annotations[v1alpha1.AnnotationTokenID]).To(Equal(tok.Status.TokenID))
			Expect(metav1.GetControllerOf(&s)).To(HaveField("UID", tok.UID))
			ids[key.Name], raws[key.Name], oldUIDs[key.Name] = tok.Status.TokenID, s.Data[v1alpha1.DefaultSecretKey], tok.UID
		}

		By("backing up the namespace: the NomadConnection, its credentials Secret, the NomadTokens and their Secrets")
		var backup []client.Object
		backupOf := func(key client.ObjectKey, obj client.Object) {
			GinkgoHelper()
			Expect(c.Get(ctx, key, obj)).To(Succeed())
			backup = append(backup, obj)
		}
		// Velero's order on restore: Secrets before custom resources.
		backupOf(client.ObjectKey{Namespace: ns, Name: credentialsSecret}, &corev1.Secret{})
		for _, key := range keys {
			backupOf(key, &corev1.Secret{})
		}
		backupOf(connKey, &v1alpha1.NomadConnection{})
		for _, key := range keys {
			backupOf(key, &v1alpha1.NomadToken{})
		}

		lateKey := client.ObjectKey{Namespace: ns, Name: "late"}
		Expect(c.Create(ctx, harness.NomadToken(ns, lateKey.Name, conn.Name, v1alpha1.Rotation{}))).To(Succeed())
		lateID := waitReady(ctx, lateKey).Status.TokenID

		st, err := own.State(ctx)
		Expect(err).NotTo(HaveOccurred())
		allIDs := append(mapValues(ids), lateID)
		Expect(idsOf(st.ActivePATs(user))).To(ConsistOf(allIDs), "one active PAT per token before the backup is restored")
		calls, err := own.Calls(ctx)
		Expect(err).NotTo(HaveOccurred())
		creates := calls["create"]
		Expect(creates).To(Equal(len(allIDs)), "one create per token")

		By("rebuilding the cluster: the manager stops and the namespace goes, finalizers stripped so that no PAT is revoked")
		stopManager()
		stripFinalizers(ctx, ns)
		Expect(c.Delete(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
		Eventually(ctx, func() error { return namespaceGone(ctx, ns) }).
			WithTimeout(teardownPatience).WithPolling(500 * time.Millisecond).Should(Succeed())
		st, err = own.State(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(idsOf(st.ActivePATs(user))).To(ConsistOf(allIDs), "the rebuild revoked no PAT")

		By("restoring the namespace from the backup: new UIDs, no status, ownerReferences kept for alpha and gamma only")
		Expect(c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
		for _, obj := range backup {
			owners := obj.GetOwnerReferences()
			_, isSecret := obj.(*corev1.Secret)
			keep := isSecret && keepsOwner[obj.GetName()]
			restoredObj := asRestored(obj)
			if keep {
				restoredObj.SetOwnerReferences(owners)
			}
			Expect(c.Create(ctx, restoredObj)).To(Succeed(), "restoring %T %s", obj, obj.GetName())
		}

		By("checking, before the manager is back, what the garbage collector did to the Secrets whose owner is gone")
		// The garbage collector deletes a dependent all of whose owners are absent (not found, or found
		// under another UID), and it does so within a second of the restore, long before any operator
		// could adopt the Secret: a restore that keeps ownerReferences loses those Secrets. Velero drops
		// ownerReferences on restore, which is why its restores keep them.
		for _, key := range keys {
			if keepsOwner[key.Name] {
				awaitNotFound(ctx, key, &corev1.Secret{}, 10*time.Second)
			}
		}
		Consistently(ctx, func(g Gomega) {
			for _, key := range keys {
				if !keepsOwner[key.Name] {
					g.Expect(c.Get(ctx, key, &corev1.Secret{})).To(Succeed(), "Secret %s, restored without ownerReference, stays", key.Name)
				}
			}
		}).WithTimeout(2 * time.Second).WithPolling(200 * time.Millisecond).Should(Succeed())

		By("starting the manager again")
		startManager(ctx)
		// Before this spec's manager stops: the tokens are revoked through the spec's stand-in, and the
		// connection goes once they are gone, so the namespace deletion finds nothing held.
		DeferCleanup(func(ctx SpecContext) {
			for _, key := range append(keys, lateKey) {
				Expect(client.IgnoreNotFound(c.Delete(ctx, &v1alpha1.NomadToken{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: key.Name}}))).To(Succeed())
			}
			for _, key := range keys {
				awaitNotFound(ctx, key, &v1alpha1.NomadToken{}, teardownPatience)
			}
			Expect(client.IgnoreNotFound(c.Delete(ctx, &v1alpha1.NomadConnection{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: connKey.Name}}))).To(Succeed())
			awaitNotFound(ctx, connKey, &v1alpha1.NomadConnection{}, teardownPatience)
		})

		By("waiting until every restored token is Ready and controls its Secret")
		newIDs := map[string]string{}
		for _, key := range keys {
			tok := waitReady(ctx, key)
			Expect(tok.UID).NotTo(Equal(oldUIDs[key.Name]), "restored under a new UID")
			newIDs[key.Name] = tok.Status.TokenID
			eventually(ctx, func(g Gomega) {
				var s corev1.Secret
				g.Expect(c.Get(ctx, key, &s)).To(Succeed())
				g.Expect(metav1.GetControllerOf(&s)).To(HaveField("UID", tok.UID), "the restored token controls the Secret")
				g.Expect(ownerUIDs(&s)).NotTo(ContainElement(oldUIDs[key.Name]), "no dead ownerReference")
				g.Expect(s.Annotations[v1alpha1.AnnotationTokenID]).To(Equal(tok.Status.TokenID))
			}).Should(Succeed())
		}
		var lost []string // the PATs of the Secrets the garbage collector took
		for _, key := range keys {
			if keepsOwner[key.Name] {
				Expect(newIDs[key.Name]).NotTo(Equal(ids[key.Name]), "%s's Secret was garbage-collected: a new PAT", key.Name)
				lost = append(lost, ids[key.Name])
				continue
			}
			Expect(newIDs[key.Name]).To(Equal(ids[key.Name]), "%s took over the PAT its Secret holds", key.Name)
			eventually(ctx, func(g Gomega) {
				var s corev1.Secret
				g.Expect(c.Get(ctx, key, &s)).To(Succeed())
				g.Expect(bytes.Equal(s.Data[v1alpha1.DefaultSecretKey], raws[key.Name])).To(BeTrue(), "the Secret holds the same raw token")
				g.Expect(tokenEvents(ctx, g, key)).To(HaveKeyWithValue(v1alpha1.EventAdopted, ContainElements(
					ContainSubstring("Adopted Secret "+key.Name), ContainSubstring("Adopted PAT "+ids[key.Name]))))
			}).Should(Succeed())
		}

		By("waiting for the orphan sweep to revoke the PATs nothing restored accounts for: late's, and those of the collected Secrets")
		orphans := append([]string{lateID}, lost...)
		Eventually(ctx, func(g Gomega) {
			st, err := own.State(ctx)
			g.Expect(err).NotTo(HaveOccurred())
			for _, id := range orphans {
				p, ok := st.PAT(user, id)
				g.Expect(ok).To(BeTrue())
				g.Expect(p.Revoked).To(BeTrue(), "orphan %s is revoked by the sweep", id)
			}
		}).WithTimeout(time.Minute).WithPolling(500 * time.Millisecond).Should(Succeed())
		// Two more checks after the revocations, with everything settled.
		calls, err = own.Calls(ctx)
		Expect(err).NotTo(HaveOccurred())
		lists := calls["list"]
		eventually(ctx, func(g Gomega) {
			now, err := own.Calls(ctx)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(now["list"]).To(BeNumerically(">=", lists+2))
		}).Should(Succeed())

		By("checking in the stand-in: a new PAT only for each collected Secret, and the PAT a restored Secret holds still active")
		st, err = own.State(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(idsOf(st.ActivePATs(user))).To(ConsistOf(mapValues(newIDs)), "the restored tokens' PATs, and no other, are active")
		Expect(st.Users[user].PATs).To(HaveLen(len(allIDs)+len(lost)), "one new PAT per collected Secret")
		calls, err = own.Calls(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(calls["create"]).To(Equal(creates+len(lost)), "no PAT was minted for a token whose Secret survived")
		for _, key := range keys {
			ok, err := own.Authenticates(ctx, raws[key.Name])
			Expect(err).NotTo(HaveOccurred())
			Expect(ok).To(Equal(!keepsOwner[key.Name]), "the raw token %s's Secret held before the backup authenticates", key.Name)
		}
		var restoredConn v1alpha1.NomadConnection
		Expect(c.Get(ctx, connKey, &restoredConn)).To(Succeed())
		Expect(restoredConn.Status.OrphanedPATs).To(BeEmpty(), "no orphan listed")
		for _, key := range keys {
			var tok v1alpha1.NomadToken
			Expect(c.Get(ctx, key, &tok)).To(Succeed())
			Expect(tok.Status.TokenID).To(Equal(newIDs[key.Name]))
			Expect(readyOf(tok.Status.Conditions)).To(HaveField("Status", metav1.ConditionTrue))
		}
	}, NodeTimeout(5*time.Minute))
})

// asRestored is obj as Velero restores it: name, namespace, labels, annotations and the content,
// without UID, resourceVersion, ownerReferences, finalizers or status.
func asRestored(obj client.Object) client.Object {
	out := obj.DeepCopyObject().(client.Object)
	out.SetUID("")
	out.SetResourceVersion("")
	out.SetGeneration(0)
	out.SetCreationTimestamp(metav1.Time{})
	out.SetManagedFields(nil)
	out.SetOwnerReferences(nil)
	out.SetFinalizers(nil)
	out.SetDeletionTimestamp(nil)
	out.SetDeletionGracePeriodSeconds(nil)
	switch o := out.(type) {
	case *v1alpha1.NomadToken:
		o.Status = v1alpha1.NomadTokenStatus{}
	case *v1alpha1.NomadConnection:
		o.Status = v1alpha1.NomadConnectionStatus{}
	}
	return out
}

// stripFinalizers removes every finalizer from the NomadTokens, NomadConnections and Secrets of ns,
// so that their deletion revokes nothing: the cluster is being rebuilt, not torn down.
func stripFinalizers(ctx context.Context, ns string) {
	GinkgoHelper()
	c := controlPl.Client
	var toks v1alpha1.NomadTokenList
	var conns v1alpha1.NomadConnectionList
	var secrets corev1.SecretList
	Expect(c.List(ctx, &toks, client.InNamespace(ns))).To(Succeed())
	Expect(c.List(ctx, &conns, client.InNamespace(ns))).To(Succeed())
	Expect(c.List(ctx, &secrets, client.InNamespace(ns))).To(Succeed())
	var objs []client.Object
	for i := range toks.Items {
		objs = append(objs, &toks.Items[i])
	}
	for i := range conns.Items {
		objs = append(objs, &conns.Items[i])
	}
	for i := range secrets.Items {
		objs = append(objs, &secrets.Items[i])
	}
	for _, obj := range objs {
		if len(obj.GetFinalizers()) == 0 {
			continue
		}
		patch := client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`))
		err := c.Patch(ctx, obj, patch)
		Expect(client.IgnoreNotFound(err)).To(Succeed(), "stripping the finalizers of %T %s", obj, obj.GetName())
	}
}

func mapValues(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}
