package harness

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
)

// NomadToken is the NomadToken the suites create: in namespace, minted through connection, one scope,
// its Secret named like it. With a renewBefore in rot the PAT lives one day, so that a renewBefore
// close to a day renews it seconds after issuance; otherwise it lives the default 30 days.
func NomadToken(namespace, name, connection string, rot v1alpha1.Rotation) *v1alpha1.NomadToken {
	tok := &v1alpha1.NomadToken{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: v1alpha1.NomadTokenSpec{
			ConnectionRef: v1alpha1.ConnectionRef{Name: connection},
			Scopes:        []string{"uploads:read"},
			Rotation:      rot,
		},
	}
	if rot.RenewBefore != nil {
		tok.Spec.ExpiresInDays = 1
	}
	return tok
}
