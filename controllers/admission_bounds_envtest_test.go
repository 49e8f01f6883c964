package controllers_test

import (
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
)

var _ = Describe("NomadToken admission of the Secret's metadata and of rotation bounds", func() {
	base := func() *v1alpha1.NomadToken {
		return &v1alpha1.NomadToken{
			ObjectMeta: metav1.ObjectMeta{Namespace: manualNamespace, Name: uniqueName("meta")},
			Spec:       v1alpha1.NomadTokenSpec{ConnectionRef: v1alpha1.ConnectionRef{Name: "oasis"}, Scopes: []string{"uploads:read"}},
		}
	}
	labels := func(kv ...string) func(*v1alpha1.NomadToken) {
		return func(t *v1alpha1.NomadToken) {
			t.Spec.Secret.Labels = map[string]string{}
			for i := 0; i < len(kv); i += 2 {
				t.Spec.Secret.Labels[kv[i]] = kv[i+1]
			}
		}
	}
	annotations := func(kv ...string) func(*v1alpha1.NomadToken) {
		return func(t *v1alpha1.NomadToken) {
			t.Spec.Secret.Annotations = map[string]string{}
			for i := 0; i < len(kv); i += 2 {
				t.Spec.Secret.Annotations[kv[i]] = kv[i+1]
			}
		}
	}
	targets := func(n int) func(*v1alpha1.NomadToken) {
		return func(t *v1alpha1.NomadToken) {
			for i := range n {
				t.Spec.Rotation.RestartTargets = append(t.Spec.Rotation.RestartTargets, v1alpha1.RestartTarget{Kind: "Deployment", Name: "d" + string(rune('a'+i))})
			}
		}
	}
	grace := func(d time.Duration) func(*v1alpha1.NomadToken) {
		return func(t *v1alpha1.NomadToken) { t.Spec.Rotation.GracePeriod = &metav1.Duration{Duration: d} }
	}
	wait := func(unused, max time.Duration) func(*v1alpha1.NomadToken) {
		return func(t *v1alpha1.NomadToken) {
			t.Spec.Rotation.WaitForConsumers = &v1alpha1.WaitForConsumers{UnusedFor: metav1.Duration{Duration: unused}, MaxGracePeriod: metav1.Duration{Duration: max}}
		}
	}
	both := func(fs ...func(*v1alpha1.NomadToken)) func(*v1alpha1.NomadToken) {
		return func(t *v1alpha1.NomadToken) {
			for _, f := range fs {
				f(t)
			}
		}
	}
	secretKeys := func(key, previousKey string, data ...string) func(*v1alpha1.NomadToken) {
		return func(t *v1alpha1.NomadToken) {
			t.Spec.Secret.Key, t.Spec.Secret.PreviousKey = key, previousKey
			if len(data) > 0 {
				t.Spec.Secret.Template = &v1alpha1.SecretDataTemplate{Data: map[string]string{}}
				for _, k := range data {
					t.Spec.Secret.Template.Data[k] = "{{ .Token }}"
				}
			}
		}
	}
	const keyRule, valueRule = "each label key is an optional DNS-subdomain prefix", "each label value is empty or at most 63 characters"

	DescribeTable("accepts what Kubernetes accepts on a Secret, and refuses the rest up front",
		func(mutate func(*v1alpha1.NomadToken), message string) {
			tok := base()
			mutate(tok)
			err := k8s.Create(ctx, tok)
			if message == "" {
				Expect(err).NotTo(HaveOccurred())
				Expect(k8s.Delete(ctx, tok)).To(Succeed())
				return
			}
			Expect(err).To(HaveOccurred())
			Expect(err.Error()).To(ContainSubstring(message))
		},
		Entry("a plain label", labels("team", "data-science"), ""),
		Entry("a prefixed label key and an empty value", labels("example.com/team", "", "a.b-c_d", "A_1"), ""),
		Entry("63-character name and value", labels(strings.Repeat("n", 63), strings.Repeat("v", 63)), ""),
		Entry("a 253-character prefix", labels(strings.Repeat("p", 253)+"/n", "v"), ""),
		Entry("a label value with a space", labels("team", "data science"), valueRule),
		Entry("a label value starting with a dash", labels("team", "-a"), valueRule),
		Entry("a 64-character label value", labels("team", strings.Repeat("v", 64)), "spec.secret.labels.team"),
		Entry("a label key with a space", labels("my team", "a"), keyRule),
		Entry("a 64-character label name", labels(strings.Repeat("n", 64), "a"), keyRule),
		Entry("an upper-case prefix", labels("Example.com/team", "a"), keyRule),
		Entry("a 254-character prefix", labels(strings.Repeat("p", 254)+"/n", "a"), keyRule),
		Entry("two slashes", labels("a/b/c", "a"), keyRule),
		Entry("an empty label key", labels("", "a"), keyRule),
		Entry("the operator's managed-by label", labels("app.kubernetes.io/managed-by", "me"), "are the operator's own"),
		Entry("a label of the operator's domain", labels("tokens.nomad-operator.dev/credentials", "true"), "are the operator's own"),
		Entry("65 labels", func(t *v1alpha1.NomadToken) {
			t.Spec.Secret.Labels = map[string]string{}
			for i := range 65 {
				t.Spec.Secret.Labels[strings.Repeat("k", i+1)[:min(i+1, 63)]+"-"+string(rune('a'+i%26))] = "v"
			}
		}, "spec.secret.labels"),
		Entry("annotation values are free", annotations("note", "data science, with: anything / at all"), ""),
		Entry("an annotation key with a space", annotations("my note", "x"), "each annotation key is an optional DNS-subdomain prefix"),
		Entry("an annotation of the operator's domain", annotations("tokens.nomad-operator.dev/token-id", "x"), "annotation keys under tokens.nomad-operator.dev/ are the operator's own"),
		Entry("annotations over 256 KiB", annotations("a", strings.Repeat("x", 200*1024), "b", strings.Repeat("y", 60*1024)), "annotations (keys and values) must total at most 256 KiB"),
		Entry("annotations of 256 KiB", annotations("a", strings.Repeat("x", 256*1024-1)), ""),
		Entry("16 restart targets", targets(16), ""),
		Entry("17 restart targets", targets(17), "spec.rotation.restartTargets: Too many: 17: must have at most 16 items"),
		Entry("a 7-day gracePeriod", grace(168*time.Hour), ""),
		Entry("a gracePeriod over 7 days", grace(169*time.Hour), "gracePeriod must be at most 168h (7 days)"),
		Entry("waitForConsumers in seconds", both(grace(time.Second), wait(2*time.Second, 30*time.Second)), ""),
		Entry("waitForConsumers with the Rotate strategy", both(wait(time.Minute, time.Hour), func(t *v1alpha1.NomadToken) { t.Spec.Rotation.Strategy = v1alpha1.RotationRotate }), "waitForConsumers needs strategy Overlap"),
		Entry("unusedFor longer than maxGracePeriod", wait(2*time.Hour, time.Hour), "unusedFor must not be longer than maxGracePeriod"),
		Entry("a zero unusedFor", wait(0, time.Hour), "unusedFor must be a positive duration"),
		Entry("a maxGracePeriod over 7 days", wait(time.Minute, 169*time.Hour), "maxGracePeriod must be at most 168h"),
		Entry("a maxGracePeriod shorter than the default gracePeriod", wait(time.Minute, 5*time.Minute), "maxGracePeriod must not be shorter than gracePeriod"),
		Entry("a maxGracePeriod shorter than gracePeriod", both(grace(2*time.Hour), wait(time.Minute, time.Hour)), "maxGracePeriod must not be shorter than gracePeriod"),
		Entry("previousKey and template keys beside key", secretKeys("", "token.previous", "NOMAD_PAT", "nomad.yaml"), ""),
		Entry("previousKey equal to the default key", secretKeys("", "token"), "previousKey must differ from key"),
		Entry("previousKey equal to key", secretKeys("pat", "pat"), "previousKey must differ from key"),
		Entry("a template key equal to key", secretKeys("pat", "", "pat"), "template.data must not set key"),
		Entry("a template key equal to the default key", secretKeys("", "", "token"), "template.data must not set key"),
		Entry("a template key equal to previousKey", secretKeys("", "old", "old"), "template.data must not set previousKey"),
		Entry("a template key that is no data key", secretKeys("", "", "a b"), "each template data key is a Secret data key"),
	)
})
