package main

import (
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

// metricsOptions configures the metrics endpoint as kubebuilder scaffolds it: secure by default,
// so that the operator's metrics (object names, connection health) are shown only to those the
// cluster authorizes, with no proxy sidecar. Secure means HTTPS with the API server deciding:
// the caller's bearer token is checked by a TokenReview, then get on /metrics by a
// SubjectAccessReview (the manager needs create on both, config/rbac/metrics_auth_role.yaml).
// Without certDir controller-runtime generates a self-signed certificate in memory at start.
func metricsOptions(addr string, secure bool, certDir string) metricsserver.Options {
	o := metricsserver.Options{BindAddress: addr, SecureServing: secure}
	if secure {
		o.FilterProvider = filters.WithAuthenticationAndAuthorization
		o.CertDir = certDir
	}
	return o
}
