package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
)

// realmHTTPClient is the HTTP client login talks to the realm with: the system's CAs plus the
// connection's own (spec.caBundle, or its caSecretRef when this user may read it; otherwise a warning
// goes to warn), so that an Oasis behind a private CA works for login as it does for the operator.
// Like the operator's client, it follows no redirect: a redirected POST to the token endpoint would
// silently turn into a GET.
func realmHTTPClient(ctx context.Context, c client.Client, conn v1alpha1.Connection, secretNamespace string, warn io.Writer) (*http.Client, error) {
	spec := conn.ConnectionSpec()
	pem := []byte(spec.CABundle)
	if ref := spec.CASecretRef; ref != nil {
		s := &corev1.Secret{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: secretNamespace, Name: ref.Name}, s); err != nil {
			fmt.Fprintf(warn, "Warning: cannot read the connection's CA Secret %s/%s (%v): trusting the system's CAs only.\n",
				secretNamespace, ref.Name, safeAPIError(err))
		}
		key := ref.Key
		if key == "" {
			key = "ca.crt"
		}
		pem = s.Data[key]
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if len(pem) > 0 {
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("the connection's CA bundle holds no PEM certificate")
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}, nil
}
