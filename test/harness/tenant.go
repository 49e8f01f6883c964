package harness

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
)

// Tenant names of the suites: each tenant's credentials Secret and NomadConnection.
const (
	TenantCredentialsSecret = "nomad-bot"
	TenantConnection        = "oasis"
	// CredentialsLabel opts a Secret in as NOMAD credentials (design.md, trust model).
	CredentialsLabel = v1alpha1.LabelCredentials
)

// CreateTenant gives namespace ns a world of its own, so that the PATs of one spec never count among
// another's: a stand-in user, the namespace (unless it exists), the user's credentials Secret (opted
// in) and a NomadConnection to the stand-in. It returns the user and its password and the
// connection; it does not wait for the connection to be Ready.
func CreateTenant(ctx context.Context, c client.Client, stub *Stub, ns string) (user, password string, conn *v1alpha1.NomadConnection, err error) {
	user, password = ns+"-bot", ns+"-password"
	if _, err = stub.AddUser(ctx, user, password); err != nil {
		return "", "", nil, err
	}
	objs := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
		&corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: TenantCredentialsSecret, Labels: map[string]string{CredentialsLabel: "true"}},
			StringData: map[string]string{"username": user, "password": password},
		},
	}
	conn = &v1alpha1.NomadConnection{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: TenantConnection},
		Spec: v1alpha1.NomadConnectionSpec{
			URL:         stub.APIURL,
			Credentials: v1alpha1.Credentials{SecretRef: v1alpha1.CredentialsSecretRef{Name: TenantCredentialsSecret}},
		},
	}
	for _, obj := range append(objs, conn) {
		if err = c.Create(ctx, obj); err != nil {
			if _, isNS := obj.(*corev1.Namespace); isNS && apierrors.IsAlreadyExists(err) {
				continue
			}
			return "", "", nil, err
		}
	}
	return user, password, conn, nil
}
