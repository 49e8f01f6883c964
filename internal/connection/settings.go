package connection

import "github.com/nomad-operator/nomad-token-operator/internal/nomad"

// Fingerprint identifies the settings of cfg (Secrets' values included) without keeping the password
// in clear, so that a caller can tell whether they changed since NOMAD refused them.
func Fingerprint(cfg nomad.Config) string {
	return fingerprint(cfg, nil)
}
