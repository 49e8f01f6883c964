package connection

import (
	"fmt"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
)

// checkURLs refuses a namespaced connection whose NOMAD URL, or the OIDC issuer its method signs in
// at, is not in r.AllowedURLs. Both are addresses its author chooses and the manager calls: NOMAD for
// the login, the PAT path detection and every PAT call; the issuer for the realm's discovery document
// and its token endpoint. The token endpoint that document names is not checked: the issuer allowed
// is an administrator's choice, and so is what it serves. A ClusterNomadConnection is an
// administrator's own object and is never refused.
func (r *Resolver) checkURLs(conn v1alpha1.Connection) error {
	if r.AllowedURLs == nil || conn.GetNamespace() == "" {
		return nil
	}
	spec := conn.ConnectionSpec()
	if !r.AllowedURLs.Allows(spec.URL) {
		return urlNotAllowed("spec.url", spec.URL, r.AllowedURLs)
	}
	c := spec.Credentials
	if c.MethodOrDefault() != v1alpha1.CredentialMethodPassword && c.OIDC != nil && !r.AllowedURLs.Allows(c.OIDC.IssuerURL) {
		return urlNotAllowed("spec.credentials.oidc.issuerURL", c.OIDC.IssuerURL, r.AllowedURLs)
	}
	return nil
}

func urlNotAllowed(field, url string, allowed *URLAllowlist) *ConfigError {
	return &ConfigError{
		Reason:   v1alpha1.ReasonURLNotAllowed,
		SpecOnly: true,
		Message: fmt.Sprintf("%s %q is not among the addresses this operator lets a namespaced NomadConnection call (%s): "+
			"use one of them, or ask the operator's administrators to allow it (--allowed-nomad-urls) or to offer it as a ClusterNomadConnection",
			field, url, allowed.summary(5)),
	}
}
