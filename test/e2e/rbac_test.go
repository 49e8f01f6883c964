package e2e

import (
	"context"
	"path/filepath"
	"slices"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/test/harness"
)

// group is the API group of the operator's kinds.
const group = "tokens.nomad-operator.dev"

// The people of the RBAC specs: each holds one built-in ClusterRole, which kube-controller-manager
// extends with config/rbac's nomadtoken-editor and nomadtoken-viewer.
const (
	teamEditor    = "alice"  // edit, through a RoleBinding in rbacTeamA
	teamViewer    = "victor" // view, through a RoleBinding in rbacTeamA
	clusterEditor = "carol"  // edit, through a ClusterRoleBinding
)

// The tenants of the RBAC specs (not team-a: config/samples' spec has that one).
const (
	rbacTeamA = "rbac-team-a"
	rbacTeamB = "rbac-team-b"
)

var _ = Describe("RBAC from config/rbac, aggregated by kube-controller-manager", Ordered, func() {
	BeforeAll(func(ctx SpecContext) {
		c := controlPl.Client
		for _, ns := range []string{rbacTeamA, rbacTeamB} {
			Expect(c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
		}
		// Another team's token Secret, as the operator writes it.
		Expect(c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: rbacTeamB, Name: "ci-uploader",
			Labels: map[string]string{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue}},
			StringData: map[string]string{v1alpha1.DefaultSecretKey: "not a real token"}})).To(Succeed())
		Expect(c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: rbacTeamA, Name: "ci-uploader",
			Labels: map[string]string{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue}},
			StringData: map[string]string{v1alpha1.DefaultSecretKey: "not a real token"}})).To(Succeed())
		for user, role := range map[string]string{teamEditor: "edit", teamViewer: "view"} {
			Expect(c.Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: rbacTeamA, Name: user + "-" + role},
				RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
				Subjects: []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}}})).To(Succeed())
		}
		crb := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "e2e-" + clusterEditor + "-edit"},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "edit"},
			Subjects: []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: clusterEditor}}}
		Expect(c.Create(ctx, crb)).To(Succeed())
		DeferCleanup(func(ctx SpecContext) { Expect(client.IgnoreNotFound(c.Delete(ctx, crb))).To(Succeed()) })

		By("waiting for kube-controller-manager to aggregate nomadtoken-editor and nomadtoken-viewer into edit and view")
		// Until then every "cannot" below would hold for the wrong reason.
		eventually(ctx, func(g Gomega) {
			g.Expect(grants(ctx, g, "edit", "create", "nomadtokens")).To(BeTrue(), "edit lets create nomadtokens")
			g.Expect(grants(ctx, g, "edit", "list", "clusternomadconnections")).To(BeTrue(), "edit lets list clusternomadconnections (from nomadtoken-viewer)")
			g.Expect(grants(ctx, g, "admin", "delete", "nomadconnections")).To(BeTrue(), "admin lets delete nomadconnections")
			g.Expect(grants(ctx, g, "view", "watch", "nomadtokens")).To(BeTrue(), "view lets watch nomadtokens")
		}).Should(Succeed())
	})

	It("lets a namespace's editor create NomadTokens and NomadConnections there, and nowhere else", func(ctx SpecContext) {
		alice := impersonate(teamEditor)
		for _, obj := range []client.Object{
			harness.NomadToken(rbacTeamA, "ci-uploader", "oasis", v1alpha1.Rotation{}),
			&v1alpha1.NomadConnection{ObjectMeta: metav1.ObjectMeta{Namespace: rbacTeamA, Name: "oasis"},
				Spec: v1alpha1.NomadConnectionSpec{URL: stub.APIURL, Credentials: v1alpha1.Credentials{SecretRef: v1alpha1.CredentialsSecretRef{Name: "nomad-bot"}}}},
		} {
			// A dry run is authorized like a real create and leaves nothing for the manager.
			Expect(alice.Create(ctx, obj, client.DryRunAll)).To(Succeed(), "%T in %s", obj, rbacTeamA)
			obj.SetNamespace(rbacTeamB)
			obj.SetResourceVersion("")
			Expect(alice.Create(ctx, obj, client.DryRunAll)).To(Satisfy(apierrors.IsForbidden), "%T in %s", obj, rbacTeamB)
		}
		Expect(alice.List(ctx, &v1alpha1.NomadTokenList{}, client.InNamespace(rbacTeamA))).To(Succeed())
	})

	It("does not let an editor write the status the operator keeps", func(ctx SpecContext) {
		for _, resource := range []string{"nomadtokens/status", "nomadconnections/status"} {
			res, sub, _ := strings.Cut(resource, "/")
			attrs := authorizationv1.ResourceAttributes{Namespace: rbacTeamA, Verb: "update", Group: group, Resource: res, Subresource: sub}
			Expect(may(ctx, user(teamEditor), attrs)).To(BeFalse(), "update %s", resource)
			Expect(may(ctx, user(clusterEditor), attrs)).To(BeFalse(), "update %s (cluster-wide editor)", resource)
			attrs.Verb = "get"
			Expect(may(ctx, user(teamEditor), attrs)).To(BeTrue(), "get %s", resource)
		}
	})

	It("does not let editors create ClusterNomadConnections, not even cluster-wide ones", func(ctx SpecContext) {
		// ClusterNomadConnection is cluster-scoped: which namespaces may use a bot account is the
		// cluster admin's decision. (Asked by SubjectAccessReview: the kind may not be served yet.)
		write := authorizationv1.ResourceAttributes{Verb: "create", Group: group, Resource: "clusternomadconnections"}
		Expect(may(ctx, user(teamEditor), write)).To(BeFalse(), "team editor")
		Expect(may(ctx, user(clusterEditor), write)).To(BeFalse(), "cluster-wide editor")
		for _, verb := range []string{"update", "patch", "delete"} {
			write.Verb = verb
			Expect(may(ctx, user(clusterEditor), write)).To(BeFalse(), "cluster-wide editor: %s", verb)
		}
		// Reading them takes a cluster-wide grant; a tenant's RoleBinding cannot reach them.
		read := authorizationv1.ResourceAttributes{Verb: "list", Group: group, Resource: "clusternomadconnections"}
		Expect(may(ctx, user(clusterEditor), read)).To(BeTrue(), "cluster-wide editor reads them")
		Expect(may(ctx, user(teamEditor), read)).To(BeFalse(), "a RoleBinding grants nothing cluster-scoped")
	})

	It("keeps another namespace's token Secret from an editor", func(ctx SpecContext) {
		alice := impersonate(teamEditor)
		var s corev1.Secret
		Expect(alice.Get(ctx, client.ObjectKey{Namespace: rbacTeamB, Name: "ci-uploader"}, &s)).To(Satisfy(apierrors.IsForbidden))
		Expect(alice.List(ctx, &corev1.SecretList{}, client.InNamespace(rbacTeamB))).To(Satisfy(apierrors.IsForbidden))
	})

	It("lets a viewer list NomadTokens but read no Secret", func(ctx SpecContext) {
		victor := impersonate(teamViewer)
		Expect(victor.List(ctx, &v1alpha1.NomadTokenList{}, client.InNamespace(rbacTeamA))).To(Succeed())
		Expect(victor.List(ctx, &v1alpha1.NomadConnectionList{}, client.InNamespace(rbacTeamA))).To(Succeed())
		Expect(victor.Create(ctx, harness.NomadToken(rbacTeamA, "x", "oasis", v1alpha1.Rotation{}), client.DryRunAll)).To(Satisfy(apierrors.IsForbidden))
		var s corev1.Secret
		Expect(victor.Get(ctx, client.ObjectKey{Namespace: rbacTeamA, Name: "ci-uploader"}, &s)).To(Satisfy(apierrors.IsForbidden))
		Expect(victor.List(ctx, &corev1.SecretList{}, client.InNamespace(rbacTeamA))).To(Satisfy(apierrors.IsForbidden))
		Expect(victor.List(ctx, &v1alpha1.NomadTokenList{}, client.InNamespace(rbacTeamB))).To(Satisfy(apierrors.IsForbidden))
	})

	It("gives the manager's ServiceAccount only what its code uses", func(ctx SpecContext) {
		sa := serviceAccount(operatorNamespace, "controller-manager")
		secret := func(verb string) authorizationv1.ResourceAttributes {
			return authorizationv1.ResourceAttributes{Namespace: rbacTeamB, Verb: verb, Resource: "secrets"}
		}
		// What it does to Secrets (cluster-wide in this mode).
		// (patch: the in-use finalizer of opted-in credentials Secrets, by a patch of finalizers alone.)
		for _, verb := range []string{"get", "list", "watch", "create", "update", "patch", "delete"} {
			Expect(may(ctx, sa, secret(verb))).To(BeTrue(), "secrets: %s", verb)
		}
		// Nothing deletes Secrets wholesale.
		Expect(may(ctx, sa, secret("deletecollection"))).To(BeFalse(), "secrets: deletecollection")
		for what, attrs := range map[string]authorizationv1.ResourceAttributes{
			"read ConfigMaps":           {Namespace: rbacTeamB, Verb: "get", Resource: "configmaps"},
			"create Pods":               {Namespace: rbacTeamB, Verb: "create", Resource: "pods"},
			"exec into Pods":            {Namespace: rbacTeamB, Verb: "create", Resource: "pods", Subresource: "exec"},
			"create Deployments":        {Namespace: rbacTeamB, Verb: "create", Group: "apps", Resource: "deployments"},
			"create NomadTokens":        {Namespace: rbacTeamB, Verb: "create", Group: group, Resource: "nomadtokens"},
			"delete NomadConnections":   {Namespace: rbacTeamB, Verb: "delete", Group: group, Resource: "nomadconnections"},
			"grant itself more (Roles)": {Namespace: rbacTeamB, Verb: "create", Group: rbacv1.GroupName, Resource: "roles"},
			"impersonate":               {Verb: "impersonate", Resource: "users"},
		} {
			Expect(may(ctx, sa, attrs)).To(BeFalse(), what)
		}
	})

	It("puts only namespaced resources in manager-role, so config/namespaced's Roles grant all of it", func(ctx SpecContext) {
		objs, err := harness.LoadKustomization(filepath.Join(repoRoot, "config", "rbac"))
		Expect(err).NotTo(HaveOccurred())
		mapper := controlPl.Client.RESTMapper()
		var generated int
		for _, u := range objs {
			if u.GetKind() != "ClusterRole" || !strings.HasPrefix(u.GetName(), "manager-") {
				continue
			}
			generated++
			wantScope := meta.RESTScopeNameNamespace
			if u.GetName() == "manager-cluster-role" {
				wantScope = meta.RESTScopeNameRoot
			}
			var role rbacv1.ClusterRole
			Expect(runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &role)).To(Succeed())
			for _, rule := range role.Rules {
				for _, g := range rule.APIGroups {
					for _, r := range rule.Resources {
						gr := schema.GroupResource{Group: g, Resource: strings.SplitN(r, "/", 2)[0]}
						gvk, err := mapper.KindFor(gr.WithVersion(""))
						Expect(err).NotTo(HaveOccurred(), "%s names %s, which this API server does not serve", u.GetName(), gr)
						mapping, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
						Expect(err).NotTo(HaveOccurred())
						Expect(mapping.Scope.Name()).To(Equal(wantScope), "%s names %s", u.GetName(), gr)
					}
				}
			}
		}
		Expect(generated).To(BeNumerically(">=", 1), "config/rbac has the generated manager-role")
	})
})

// grants reports whether the ClusterRole name has, as kube-controller-manager aggregated it, a rule
// for verb on resource of the operator's group.
func grants(ctx context.Context, g Gomega, name, verb, resource string) bool {
	var role rbacv1.ClusterRole
	g.Expect(controlPl.Client.Get(ctx, client.ObjectKey{Name: name}, &role)).To(Succeed())
	return slices.ContainsFunc(role.Rules, func(r rbacv1.PolicyRule) bool {
		return slices.Contains(r.APIGroups, group) && slices.Contains(r.Resources, resource) && slices.Contains(r.Verbs, verb)
	})
}

// subject is who a SubjectAccessReview asks about.
type subject struct {
	name   string
	groups []string
}

func user(name string) subject { return subject{name: name, groups: []string{"system:authenticated"}} }

func serviceAccount(namespace, name string) subject {
	return subject{name: "system:serviceaccount:" + namespace + ":" + name,
		groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + namespace, "system:authenticated"}}
}

// may asks the API server's authorizer (a SubjectAccessReview) whether s may do attrs.
func may(ctx context.Context, s subject, attrs authorizationv1.ResourceAttributes) bool {
	GinkgoHelper()
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: s.name, Groups: s.groups, ResourceAttributes: &attrs}}
	Expect(controlPl.Client.Create(ctx, sar)).To(Succeed())
	return sar.Status.Allowed
}

// impersonate is a client that sends every request as the user name (the admin may impersonate),
// so that the API server authorizes the real request.
func impersonate(name string) client.Client {
	GinkgoHelper()
	cfg := rest.CopyConfig(controlPl.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: name, Groups: []string{"system:authenticated"}}
	c, err := client.New(cfg, client.Options{Scheme: controlPl.Scheme})
	Expect(err).NotTo(HaveOccurred())
	return c
}
