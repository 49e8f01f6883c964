package main

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
)

// credentialsSecret is the Secret a connection signs in with, and the key login writes.
type credentialsSecret struct {
	key     client.ObjectKey
	dataKey string
}

func (s credentialsSecret) String() string {
	return fmt.Sprintf("Secret %s/%s (key %s)", s.key.Namespace, s.key.Name, s.dataKey)
}

// errNotLabelled: the Secret exists without the credentials label. Login does not add it: the label
// is the Secret owner's opt-in that the operator may read it as NOMAD credentials.
var errNotLabelled = errors.New("not labelled")

// checkWritable reads the Secret before the sign-in, so that a refusal comes before the browser:
// a missing Secret is fine (login creates it), one without the label or immutable is not. It returns
// the Secret, or nil when it does not exist.
func (s credentialsSecret) checkWritable(ctx context.Context, c client.Client) (*corev1.Secret, error) {
	sec := &corev1.Secret{}
	if err := c.Get(ctx, s.key, sec); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("reading Secret %s/%s: %w", s.key.Namespace, s.key.Name, err)
	}
	if sec.Labels[v1alpha1.LabelCredentials] != "true" {
		return nil, fmt.Errorf("%w: Secret %s/%s exists but lacks the label %s=true. The label is the Secret owner's "+
			"opt-in that the operator may read it as NOMAD credentials, so login does not add it; if this Secret is "+
			"meant for it, run\n  kubectl label secret -n %s %s %s=true\nand log in again",
			errNotLabelled, s.key.Namespace, s.key.Name, v1alpha1.LabelCredentials, s.key.Namespace, s.key.Name, v1alpha1.LabelCredentials)
	}
	if sec.Immutable != nil && *sec.Immutable {
		return nil, fmt.Errorf("Secret %s/%s is immutable: delete it (login then creates it) or name another one in spec.credentials.secretRef", s.key.Namespace, s.key.Name)
	}
	return sec, nil
}

// write stores the refresh token: a new labelled Opaque Secret when there is none, otherwise a merge
// patch of the one data key, with optimistic locking (a conflict reads the Secret again and checks it
// again). Error messages never contain the token.
func (s credentialsSecret) write(ctx context.Context, c client.Client, refreshToken string) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		sec, err := s.checkWritable(ctx, c)
		if err != nil {
			return err
		}
		if sec == nil {
			sec = &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Namespace: s.key.Namespace, Name: s.key.Name,
					Labels: map[string]string{v1alpha1.LabelCredentials: "true"}},
				Type: corev1.SecretTypeOpaque,
				Data: map[string][]byte{s.dataKey: []byte(refreshToken)},
			}
			if err := c.Create(ctx, sec); err != nil {
				if apierrors.IsAlreadyExists(err) {
					// Created meanwhile: read it again (and check its label) as for a conflict.
					return apierrors.NewConflict(corev1.Resource("secrets"), s.key.Name, err)
				}
				return fmt.Errorf("creating Secret %s/%s: %v", s.key.Namespace, s.key.Name, safeAPIError(err))
			}
			return nil
		}
		orig := sec.DeepCopy()
		if sec.Data == nil {
			sec.Data = map[string][]byte{}
		}
		sec.Data[s.dataKey] = []byte(refreshToken)
		if err := c.Patch(ctx, sec, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
			if apierrors.IsConflict(err) {
				return err
			}
			return fmt.Errorf("updating Secret %s/%s: %v", s.key.Namespace, s.key.Name, safeAPIError(err))
		}
		return nil
	})
}

// safeAPIError is an API error without any echo of the request body (an Invalid error may quote a
// value): the whole message for Forbidden and NotFound, which never quote it, else reason and code.
func safeAPIError(err error) error {
	var st apierrors.APIStatus
	if apierrors.IsForbidden(err) || apierrors.IsNotFound(err) {
		return err
	}
	if errors.As(err, &st) {
		return fmt.Errorf("%s (HTTP %d)", st.Status().Reason, st.Status().Code)
	}
	return err
}
