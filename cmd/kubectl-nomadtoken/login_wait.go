package main

// After the refresh token is stored: asking the connection to sign in now, and waiting until it has.

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
)

// requestSignIn sets the connection's sign-in annotation to a fresh value, which makes the operator
// check it now, signing in with the refresh token just stored, and echo the value once that worked.
func requestSignIn(ctx context.Context, c client.Client, conn v1alpha1.Connection) (string, error) {
	request, err := randomState()
	if err != nil {
		return "", err
	}
	patch := fmt.Appendf(nil, `{"metadata":{"annotations":{%q:%q}}}`, v1alpha1.AnnotationSignIn, request)
	if err := c.Patch(ctx, conn, client.RawPatch(types.MergePatchType, patch)); err != nil {
		return "", safeAPIError(err)
	}
	return request, nil
}

// connReady: Ready=True for the connection's current spec.
func connReady(c v1alpha1.Connection) bool {
	st := c.ConnectionStatus()
	return st.ObservedGeneration >= c.GetGeneration() && meta.IsStatusConditionTrue(st.Conditions, v1alpha1.ConditionReady)
}

// signedInSince: the operator reports a sign-in at or after t (status times have second precision).
func signedInSince(c v1alpha1.Connection, t time.Time) bool {
	st := c.ConnectionStatus()
	if st.Credentials != nil && st.Credentials.LastSignInTime != nil && !st.Credentials.LastSignInTime.Time.Before(t.Truncate(time.Second)) {
		return true
	}
	r := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionReady)
	return r != nil && !r.LastTransitionTime.Time.Before(t.Truncate(time.Second))
}

// waitConnection waits until the connection shows it works with the new refresh token: Ready, and
// status.credentials.signInRequest echoing request (the sign-in annotation login set). Without a
// request (the annotation could not be set), Ready is enough for a connection that was not Ready
// before the write; one that was shows only the old sign-in, so it waits for a sign-in since the
// write. If none comes before the timeout but it is still Ready, that is success too (fresh false):
// the operator keeps its access token until it ends. At timeout without Ready, the error carries the
// Ready condition.
func waitConnection(ctx context.Context, c client.WithWatch, ref connRef, timeout time.Duration, readyBefore bool,
	writtenAt time.Time, request string) (v1alpha1.Connection, bool, error) {
	done := func(conn v1alpha1.Connection) bool {
		if request != "" {
			creds := conn.ConnectionStatus().Credentials
			return connReady(conn) && creds != nil && creds.SignInRequest == request
		}
		return connReady(conn) && (!readyBefore || signedInSince(conn, writtenAt))
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last v1alpha1.Connection
	for {
		conn := ref.newObject()
		if err := c.Get(ctx, ref.key, conn); err != nil {
			if ctx.Err() != nil {
				return connTimedOut(ref, timeout, last)
			}
			return nil, false, err
		}
		last = conn
		if done(conn) {
			return conn, true, nil
		}
		opts := []client.ListOption{
			client.MatchingFieldsSelector{Selector: fields.OneTermEqualSelector("metadata.name", ref.key.Name)},
			&client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: conn.GetResourceVersion(), AllowWatchBookmarks: true}},
		}
		if !ref.cluster {
			opts = append(opts, client.InNamespace(ref.key.Namespace))
		}
		w, err := c.Watch(ctx, ref.newList(), opts...)
		if err != nil {
			if ctx.Err() != nil {
				return connTimedOut(ref, timeout, last)
			}
			return nil, false, err
		}
		got, err := followConnection(ctx, w, ref, done, &last)
		w.Stop()
		switch {
		case got != nil:
			return got, true, nil
		case err != nil:
			return last, false, err
		case ctx.Err() != nil:
			return connTimedOut(ref, timeout, last)
		}
		// The server ended the watch: read and watch again.
	}
}

func followConnection(ctx context.Context, w watch.Interface, ref connRef, done func(v1alpha1.Connection) bool,
	last *v1alpha1.Connection) (v1alpha1.Connection, error) {
	for {
		select {
		case <-ctx.Done():
			return nil, nil
		case ev, ok := <-w.ResultChan():
			if !ok {
				return nil, nil
			}
			conn, isConn := ev.Object.(v1alpha1.Connection)
			if !isConn || conn.GetName() != ref.key.Name || conn.GetNamespace() != ref.key.Namespace {
				if ev.Type == watch.Error {
					return nil, nil
				}
				continue
			}
			switch ev.Type {
			case watch.Deleted:
				return nil, fmt.Errorf("%s was deleted", ref)
			case watch.Added, watch.Modified:
				*last = conn
				if done(conn) {
					return conn, nil
				}
			}
		}
	}
}

// connTimedOut: still Ready (with the old sign-in) is success; otherwise the Ready condition says why.
func connTimedOut(ref connRef, timeout time.Duration, last v1alpha1.Connection) (v1alpha1.Connection, bool, error) {
	if last != nil && connReady(last) {
		return last, false, nil
	}
	state := "no status yet"
	if last != nil {
		if r := meta.FindStatusCondition(last.ConnectionStatus().Conditions, v1alpha1.ConditionReady); r != nil {
			state = fmt.Sprintf("Ready=%s (%s): %s", r.Status, r.Reason, r.Message)
		}
	}
	return last, false, fmt.Errorf("%w after %s waiting for %s to be Ready (the refresh token is stored); %s",
		errTimedOut, timeout, ref, state)
}
