package connection

import "github.com/nomad-operator/nomad-token-operator/internal/nomad"

// Fingerprint identifies the settings of cfg (Secrets' values included, the refresh token too)
// without keeping a secret in clear, so that a caller can tell whether they changed since NOMAD or
// its realm refused them.
func Fingerprint(cfg nomad.Config) string {
	return fingerprint(cfg, nil, true)
}
