package connection

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
)

// OptedIn reports whether a Secret opted in as NOMAD credentials or a CA bundle: its label
// LabelCredentials is exactly "true". "True", "yes" or "1" are not: labels are matched verbatim by
// selectors (kubectl get secrets -l ...=true), so the opt-in must be one value everyone can find.
func OptedIn(s metav1.Object) bool {
	return s.GetLabels()[v1alpha1.LabelCredentials] == "true"
}

// notOptedIn is the ConfigError for a Secret that lacks the opt-in. It names the Secret, the label's
// current value (label values are not secret) and the command that opts it in; never its data.
func notOptedIn(what string, s metav1.Object) *ConfigError {
	ns, name := s.GetNamespace(), s.GetName()
	found, overwrite := "it has no label "+v1alpha1.LabelCredentials, ""
	if v, ok := s.GetLabels()[v1alpha1.LabelCredentials]; ok {
		found, overwrite = fmt.Sprintf("its label %s is %q, not \"true\"", v1alpha1.LabelCredentials, v), " --overwrite"
	}
	return &ConfigError{
		Reason: v1alpha1.ReasonCredentialsNotLabelled,
		Message: fmt.Sprintf("%s Secret %s/%s is not opted in (%s): the operator reads only Secrets labelled %s=true; "+
			"if this Secret is meant for NOMAD, run: kubectl label%s secret -n %s %s %s=true",
			what, ns, name, found, v1alpha1.LabelCredentials, overwrite, ns, name, v1alpha1.LabelCredentials),
	}
}
