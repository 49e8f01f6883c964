package controllers

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
)

// materialFields are the spec fields a PAT is minted with. NOMAD cannot edit a PAT (there is no
// PATCH), so any change to one of them means a new PAT.
type materialFields struct {
	ConnectionKind string   `json:"connectionKind"`
	ConnectionName string   `json:"connectionName"`
	TokenName      string   `json:"tokenName"`
	Description    string   `json:"description"`
	Scopes         []string `json:"scopes"`
	ExpiresInDays  int      `json:"expiresInDays"`
}

// materialHash fingerprints the material fields; scope order does not matter to NOMAD, so neither
// does it here (a GitOps tool reordering a list must not mint a PAT).
func materialHash(t *v1alpha1.NomadToken) string {
	scopes := slices.Clone(t.Spec.Scopes)
	slices.Sort(scopes)
	kind := t.Spec.ConnectionRef.Kind
	if kind == "" {
		kind = "NomadConnection"
	}
	b, _ := json.Marshal(materialFields{
		ConnectionKind: kind,
		ConnectionName: t.Spec.ConnectionRef.Name,
		TokenName:      t.EffectiveTokenName(),
		Description:    t.Spec.Description,
		Scopes:         slices.Compact(scopes),
		ExpiresInDays:  t.EffectiveExpiresInDays(),
	})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// tokenFingerprint lets the operator notice an edited Secret without storing the token anywhere
// but the Secret. It is salted, so it differs from NOMAD's own lookup digest (plain SHA-256), and
// truncated; neither it nor the digest can be turned back into the 256-bit random token.
func tokenFingerprint(raw []byte) string {
	h := sha256.New()
	h.Write([]byte("nomad-token-operator/token-fingerprint/v1\x00"))
	h.Write(raw)
	return hex.EncodeToString(h.Sum(nil)[:16])
}
