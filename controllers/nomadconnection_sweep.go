package controllers

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/internal/nomad"
)

// SweepMode is what the connection check does with orphaned PATs: active PATs of its bot account that
// carry this operator's marker but that no NomadToken accounts for.
type SweepMode string

const (
	// SweepDryRun lists them in status.orphanedPATs (the default: listing is harmless).
	SweepDryRun SweepMode = "dry-run"
	// SweepRevoke revokes them.
	SweepRevoke SweepMode = "revoke"
	// SweepOff does neither.
	SweepOff SweepMode = "off"
)

const (
	// orphanMinAge keeps the sweep away from a PAT whose issuance is still settling: every write that
	// makes a PAT known to a NomadToken lands within seconds of its creation, but the cache the sweep
	// reads may lag behind.
	orphanMinAge = time.Hour
	// maxListedOrphans bounds status.orphanedPATs.
	maxListedOrphans = 50
	// operatorMarker starts the marker every PAT minted by this operator carries in its description.
	operatorMarker = "[nomad-token-operator "
)

// accountedPATs is everything NomadTokens and connections say about PATs they account for.
type accountedPATs struct {
	ids map[string]bool // current, previous, queued and retained PATs
	// markers are the marker prefixes of NomadTokens with an issuance in flight: any PAT of theirs may
	// be the one being settled (one from NOMAD's rotate endpoint carries an older marker of the token).
	markers []string
}

// addHeldBy accounts for the PATs the Secrets name (AnnotationTokenID).
func (a accountedPATs) addHeldBy(secrets []corev1.Secret) {
	for _, s := range secrets {
		if id := s.Annotations[v1alpha1.AnnotationTokenID]; id != "" {
			a.ids[id] = true
		}
	}
}

func (a accountedPATs) holds(p nomad.PAT) bool {
	if a.ids[p.ID] {
		return true
	}
	for _, m := range a.markers {
		if strings.Contains(p.Description, m) {
			return true
		}
	}
	return false
}

// The retained Secrets are listed live, by label.
// +kubebuilder:rbac:groups="",resources=secrets,verbs=list

// accounted collects, in every namespace the operator serves (a bot account may serve connections in
// several), the PATs some NomadToken or connection accounts for.
func (r *NomadConnectionReconciler) accounted(ctx context.Context) (accountedPATs, error) {
	a := accountedPATs{ids: map[string]bool{}}
	var tokens v1alpha1.NomadTokenList
	if err := r.List(ctx, &tokens); err != nil {
		return a, err
	}
	secretNames := map[string]bool{}
	for _, t := range tokens.Items {
		secretNames[t.Namespace+"/"+t.EffectiveSecretName()] = true
		st := t.Status
		a.ids[st.TokenID], a.ids[st.PreviousTokenID] = true, true
		for _, ref := range st.RevokePending {
			a.ids[ref.ID] = true
		}
		if st.PendingIssuance != nil {
			a.markers = append(a.markers, markerPrefix(&t))
		}
	}
	conns, err := r.connections(ctx, r, "")
	if err != nil {
		return a, err
	}
	for _, c := range conns {
		for _, p := range c.ConnectionStatus().RetainedPATs {
			a.ids[p.ID] = true
		}
	}
	// A PAT is also known by the Secret that holds it, for as long as that exists. A retained one
	// survives the connection being deleted and created again; it is released from the operator's
	// label, so it is read live, by its own. The operator's own Secrets (from the cache, which holds
	// them all) survive a restore from backup that brings NomadTokens back without their status
	// (Velero does not restore status): consumers use that PAT, and the restored token adopts it.
	for _, ns := range namespacesOrAll(r.Namespaces) {
		var retained corev1.SecretList
		if err := r.APIReader.List(ctx, &retained, client.InNamespace(ns), client.MatchingLabels{v1alpha1.LabelRetained: "true"}); err != nil {
			return a, err
		}
		a.addHeldBy(retained.Items)
	}
	var managed corev1.SecretList
	if err := r.List(ctx, &managed, client.MatchingLabels{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue}); err != nil {
		return a, err
	}
	// Only a Secret some NomadToken names counts (its own, or one it will adopt after a restore): a
	// label anyone who can write Secrets can set must not shield an orphan from the sweep.
	a.addHeldBy(slices.DeleteFunc(managed.Items, func(s corev1.Secret) bool { return !secretNames[s.Namespace+"/"+s.Name] }))
	return a, nil
}

// namespacesOrAll is what a live list goes through: each confined namespace, or (nil) one list of
// all namespaces, which only a cluster-wide grant allows.
func namespacesOrAll(namespaces []string) []string {
	if len(namespaces) == 0 {
		return []string{metav1.NamespaceAll}
	}
	return namespaces
}

// sweepOrphans finds the orphaned PATs among the connection's active ones and, with SweepRevoke,
// revokes them. A PAT kept on purpose by deletionPolicy: Retain is recorded in status.retainedPATs and
// never swept.
func (r *NomadConnectionReconciler) sweepOrphans(ctx context.Context, conn v1alpha1.Connection, nc nomad.Client, active []nomad.PAT) error {
	st := conn.ConnectionStatus()
	now := r.Clock.Now()
	st.RetainedPATs = stillAlive(st.RetainedPATs, now)
	st.AbandonedPATs = stillAbandoned(st.AbandonedPATs, now)
	if r.Sweep == SweepOff {
		st.OrphanedPATs, st.OrphanedPATCount = nil, nil
		return nil
	}
	candidates := slices.DeleteFunc(slices.Clone(active), func(p nomad.PAT) bool {
		return !strings.Contains(p.Description, operatorMarker) || now.Sub(p.CreatedAt) < orphanMinAge
	})
	var known accountedPATs
	if len(candidates) > 0 { // only then is it worth reading what every NomadToken accounts for
		var err error
		if known, err = r.accounted(ctx); err != nil {
			return err
		}
		for _, p := range st.RetainedPATs { // this connection's, as they are now
			known.ids[p.ID] = true
		}
	}
	var orphans []v1alpha1.OrphanedPAT
	for _, p := range candidates {
		if known.holds(p) {
			continue
		}
		// Two phases: a PAT is revoked only if the check before this one found it orphaned too, so a
		// moment in which the caches disagree (a Retain'd token gone, its record not yet seen) can
		// never cost a PAT, and every orphan is listed for one interval before it goes.
		if r.Sweep == SweepRevoke && slices.ContainsFunc(st.OrphanedPATs, func(o v1alpha1.OrphanedPAT) bool { return o.ID == p.ID }) {
			if err := nc.Revoke(ctx, p.ID); err != nil {
				return err
			}
			r.pats().Revoked(metricsConnection(conn), 1)
			log.FromContext(ctx).Info("revoked orphaned PAT", "tokenID", p.ID)
			r.event(conn, corev1.EventTypeNormal, v1alpha1.EventOrphanRevoked, "Sweep",
				fmt.Sprintf("Revoked PAT %s (%q): it carries this operator's marker but no NomadToken accounts for it", p.ID, p.Name))
			continue
		}
		orphans = append(orphans, v1alpha1.OrphanedPAT{ID: p.ID, Name: p.Name, CreatedAt: metav1.NewTime(p.CreatedAt.UTC().Truncate(time.Second))})
	}
	if len(orphans) > 0 && (st.OrphanedPATCount == nil || int(*st.OrphanedPATCount) != len(orphans)) {
		r.event(conn, corev1.EventTypeWarning, v1alpha1.EventOrphansFound, "Sweep", fmt.Sprintf(
			"%d active PATs of the bot account carry this operator's marker but no NomadToken accounts for them (status.orphanedPATs); revoke them in NOMAD, or run the manager with --orphan-sweep=revoke",
			len(orphans)))
	}
	st.OrphanedPATCount = nil
	if len(orphans) > 0 {
		st.OrphanedPATCount = ptr.To(int32(len(orphans)))
	}
	st.OrphanedPATs = orphans[:min(len(orphans), maxListedOrphans)]
	return nil
}

// stillAlive drops the retained PATs that have expired.
func stillAlive(retained []v1alpha1.RetainedPAT, now time.Time) []v1alpha1.RetainedPAT {
	var left []v1alpha1.RetainedPAT
	for _, p := range retained {
		if p.ExpiresAt == nil || now.Before(p.ExpiresAt.Time) {
			left = append(left, p)
		}
	}
	return left
}

// event emits an Event on conn when a recorder is set.
func (r *NomadConnectionReconciler) event(conn v1alpha1.Connection, eventType, reason, action, note string) {
	if r.Recorder != nil {
		r.Recorder.Eventf(conn, nil, eventType, reason, action, "%s", note)
	}
}
