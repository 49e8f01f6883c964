package controllers

import (
	"bytes"
	"encoding/json"
	"maps"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
)

// FieldManager is the name under which the operator writes objects; managedFields under this name
// tell which Secret labels, annotations and data keys the operator set, so it can remove them again
// when the spec drops them without touching keys other tools (GitOps trackers, reflectors) added.
const FieldManager = "nomad-token-operator"

// tokenSecretFacts is what the Secret says about the PAT besides the raw token.
type tokenSecretFacts struct {
	TokenID   string
	IssuedAt  time.Time
	ExpiresAt time.Time
}

// ownedBy reports whether s is controlled by token. Only such a Secret may ever be written.
func ownedBy(s *corev1.Secret, token *v1alpha1.NomadToken) bool {
	ref := metav1.GetControllerOf(s)
	return ref != nil && ref.UID == token.UID
}

// findRawToken returns the raw PAT in s whose fingerprint matches, preferring key. A Secret whose
// token was edited, or whose key was removed, yields ok=false.
func findRawToken(s *corev1.Secret, key, fingerprint string) (raw []byte, ok bool) {
	if s == nil || fingerprint == "" {
		return nil, false
	}
	if v, found := s.Data[key]; found && tokenFingerprint(v) == fingerprint {
		return v, true
	}
	for _, v := range s.Data {
		if tokenFingerprint(v) == fingerprint {
			return v, true
		}
	}
	return nil, false
}

// desiredSecretMeta are the labels and annotations the Secret of token must carry.
func desiredSecretMeta(token *v1alpha1.NomadToken, facts tokenSecretFacts) (labels, annotations map[string]string) {
	labels = maps.Clone(token.Spec.Secret.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[v1alpha1.LabelManagedBy] = v1alpha1.ManagedByValue
	annotations = maps.Clone(token.Spec.Secret.Annotations)
	if annotations == nil {
		annotations = map[string]string{}
	}
	annotations[v1alpha1.AnnotationTokenID] = facts.TokenID
	annotations[v1alpha1.AnnotationIssuedAt] = facts.IssuedAt.UTC().Format(time.RFC3339)
	annotations[v1alpha1.AnnotationExpiresAt] = facts.ExpiresAt.UTC().Format(time.RFC3339)
	return labels, annotations
}

// secretContent is what the token's Secret is rendered from.
type secretContent struct {
	// raw is the current PAT's raw token, kept under spec.secret.key; facts are its annotations.
	raw   []byte
	facts tokenSecretFacts
	// apiRoot is the API root of the connection that minted the PAT (.URL of the templates); "" when
	// that connection could not be read, and then a template that uses .URL does not render.
	apiRoot string
	// previous is the PAT an Overlap rotation replaced, kept under spec.secret.previousKey until it is
	// revoked; nil when none is kept.
	previous *previousToken
}

// secretShape is what the Secret of a token must carry, besides its type and owner.
type secretShape struct {
	labels, annotations map[string]string
	data                map[string][]byte
}

// desiredSecret is the shape of token's Secret holding c: the raw token under key, the replaced one
// under previousKey with its id and revoke time, and the rendered template keys. It fails only when
// a template does not render (a *templateError).
func desiredSecret(token *v1alpha1.NomadToken, c secretContent) (secretShape, error) {
	data, err := renderTemplateData(token, templateInput{token: string(c.raw), tokenID: c.facts.TokenID, apiRoot: c.apiRoot,
		expiresAt: c.facts.ExpiresAt, scopes: token.Spec.Scopes})
	if err != nil {
		return secretShape{}, err
	}
	if data == nil {
		data = map[string][]byte{}
	}
	labels, annotations := desiredSecretMeta(token, c.facts)
	data[token.EffectiveSecretKey()] = c.raw
	if p, key := c.previous, token.Spec.Secret.PreviousKey; p != nil && key != "" {
		data[key] = p.raw
		annotations[v1alpha1.AnnotationPreviousTokenID] = p.id
		annotations[v1alpha1.AnnotationPreviousRevokeBy] = p.revokeBy.UTC().Format(time.RFC3339)
	}
	return secretShape{labels: labels, annotations: annotations, data: data}, nil
}

// renderSecret returns live (or a new Secret when live is nil) changed to carry want. Keys the
// operator set earlier and no longer wants are removed; keys set by anyone else are kept.
func renderSecret(live *corev1.Secret, token *v1alpha1.NomadToken, want secretShape) *corev1.Secret {
	var s *corev1.Secret
	if live == nil {
		s = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: token.Namespace, Name: token.EffectiveSecretName()}}
	} else {
		s = live.DeepCopy()
	}
	owned := fieldsOwnedBy(s, FieldManager)
	s.Labels = withoutStale(s.Labels, want.labels, owned.labels)
	s.Annotations = withoutStale(s.Annotations, want.annotations, owned.annotations)
	s.Data = withoutStale(s.Data, want.data, owned.data)
	maps.Copy(s.Labels, want.labels)
	maps.Copy(s.Annotations, want.annotations)
	maps.Copy(s.Data, want.data)
	s.Type = corev1.SecretTypeOpaque
	setControllerRef(s, token)
	return s
}

// secretInSync reports whether live already is what renderSecret would produce, so the steady state
// makes no write.
func secretInSync(live *corev1.Secret, token *v1alpha1.NomadToken, want secretShape) bool {
	if live == nil || live.Type != corev1.SecretTypeOpaque || !ownedBy(live, token) {
		return false
	}
	if !subset(want.labels, live.Labels) || !subset(want.annotations, live.Annotations) {
		return false
	}
	for k, v := range want.data {
		if have, ok := live.Data[k]; !ok || !bytes.Equal(have, v) {
			return false
		}
	}
	owned := fieldsOwnedBy(live, FieldManager)
	return len(withoutStale(live.Labels, want.labels, owned.labels)) == len(live.Labels) &&
		len(withoutStale(live.Annotations, want.annotations, owned.annotations)) == len(live.Annotations) &&
		len(withoutStale(live.Data, want.data, owned.data)) == len(live.Data)
}

func setControllerRef(s *corev1.Secret, token *v1alpha1.NomadToken) {
	ref := metav1.OwnerReference{
		APIVersion:         v1alpha1.GroupVersion.String(),
		Kind:               "NomadToken",
		Name:               token.Name,
		UID:                token.UID,
		Controller:         ptr.To(true),
		BlockOwnerDeletion: ptr.To(true),
	}
	for i, existing := range s.OwnerReferences {
		if existing.UID == token.UID {
			s.OwnerReferences[i] = ref
			return
		}
	}
	s.OwnerReferences = append(s.OwnerReferences, ref)
}

func subset(want, have map[string]string) bool {
	for k, v := range want {
		if hv, ok := have[k]; !ok || hv != v {
			return false
		}
	}
	return true
}

// withoutStale returns a copy of m without the keys we own that are no longer wanted: labels,
// annotations, and data keys (an old key, a template key or previousKey removed from the spec, the
// previous token once it is revoked).
func withoutStale[V any](m map[string]V, want map[string]V, owned map[string]bool) map[string]V {
	out := map[string]V{}
	for k, v := range m {
		if _, wanted := want[k]; owned[k] && !wanted {
			continue
		}
		out[k] = v
	}
	return out
}

// ownedFields are the label, annotation and data keys a field manager set on an object.
type ownedFields struct {
	labels, annotations, data map[string]bool
}

// fieldsOwnedBy reads managedFields. Without them (stripped by someone) nothing counts as ours, so
// stale keys are kept rather than risking the removal of someone else's.
func fieldsOwnedBy(s *corev1.Secret, manager string) ownedFields {
	out := ownedFields{labels: map[string]bool{}, annotations: map[string]bool{}, data: map[string]bool{}}
	for _, mf := range s.ManagedFields {
		if mf.Manager != manager || mf.FieldsV1 == nil {
			continue
		}
		var fields map[string]json.RawMessage
		if json.Unmarshal(mf.FieldsV1.Raw, &fields) != nil {
			continue
		}
		var meta map[string]json.RawMessage
		_ = json.Unmarshal(fields["f:metadata"], &meta)
		addFieldKeys(out.labels, meta["f:labels"])
		addFieldKeys(out.annotations, meta["f:annotations"])
		addFieldKeys(out.data, fields["f:data"])
	}
	return out
}

func addFieldKeys(into map[string]bool, raw json.RawMessage) {
	var keys map[string]json.RawMessage
	if len(raw) == 0 || json.Unmarshal(raw, &keys) != nil {
		return
	}
	for k := range keys {
		if len(k) > 2 && k[:2] == "f:" {
			into[k[2:]] = true
		}
	}
}
