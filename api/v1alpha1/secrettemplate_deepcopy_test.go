package v1alpha1

import "testing"

// The deepcopy of SecretTemplate is written by hand; a copy must share no map with the original.
func TestSecretTemplateDeepCopy(t *testing.T) {
	in := &NomadToken{Spec: NomadTokenSpec{Secret: SecretTemplate{Name: "s",
		Labels: map[string]LabelValue{"team": "a"}, Annotations: map[string]string{"note": "x"}}}}
	out := in.DeepCopy()
	out.Spec.Secret.Labels["team"], out.Spec.Secret.Annotations["note"] = "b", "y"
	if in.Spec.Secret.Labels["team"] != "a" || in.Spec.Secret.Annotations["note"] != "x" || out.Spec.Secret.Name != "s" {
		t.Fatalf("the copy shares its maps with the original: %+v", in.Spec.Secret)
	}
	if (&SecretTemplate{}).DeepCopy().Labels != nil || (*SecretTemplate)(nil).DeepCopy() != nil {
		t.Fatal("nil stays nil")
	}
}
