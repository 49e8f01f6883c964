package fake_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/nomad-operator/nomad-token-operator/internal/nomad"
	"github.com/nomad-operator/nomad-token-operator/internal/nomad/fake"
)

func TestFunctionFieldsAnswerAndCallsAreRecorded(t *testing.T) {
	c := &fake.Client{
		CreateFunc: func(_ context.Context, req nomad.CreateRequest) (*nomad.IssuedToken, error) {
			return &nomad.IssuedToken{PAT: nomad.PAT{ID: "new", Name: req.Name}, RawToken: "raw"}, nil
		},
		RevokeFunc: func(context.Context, string) error { return nil },
		GetFunc: func(_ context.Context, id string) (*nomad.PAT, error) {
			return nil, &nomad.Error{Op: "get", Code: nomad.CodeNotFound}
		},
	}
	ctx := context.Background()
	it, err := c.Create(ctx, nomad.CreateRequest{Name: "n"})
	if err != nil || it.PAT.ID != "new" {
		t.Fatalf("create: %v, %v", it, err)
	}
	if _, err := c.Get(ctx, "old"); !nomad.IsNotFound(err) {
		t.Fatalf("get: %v", err)
	}
	if err := c.Revoke(ctx, "old"); err != nil {
		t.Fatal(err)
	}
	if got := c.Methods(); !slices.Equal(got, []string{"Create", "Get", "Revoke"}) {
		t.Fatalf("methods = %v", got)
	}
	calls := c.Calls()
	if calls[0].Request.Name != "n" || calls[1].ID != "old" || calls[2].ID != "old" {
		t.Fatalf("calls = %+v", calls)
	}
	if c.CallCount(fake.MethodRevoke) != 1 || c.CallCount(fake.MethodRotate) != 0 {
		t.Fatal("CallCount")
	}
	c.Reset()
	if len(c.Calls()) != 0 {
		t.Fatal("Reset")
	}
}

// recordingTB captures Errorf without failing the real test.
type recordingTB struct {
	testing.TB
	mu     sync.Mutex
	errors []string
}

func (r *recordingTB) Helper() {}
func (r *recordingTB) Errorf(format string, args ...any) {
	r.mu.Lock()
	r.errors = append(r.errors, format)
	r.mu.Unlock()
}

func TestUnsetFunctionFailsLoudly(t *testing.T) {
	tb := &recordingTB{TB: t}
	c := &fake.Client{TB: tb}
	ctx := context.Background()
	_, e1 := c.Create(ctx, nomad.CreateRequest{})
	_, e2 := c.Get(ctx, "x")
	_, e3 := c.List(ctx, nomad.ListOptions{})
	e4 := c.Revoke(ctx, "x")
	_, e5 := c.Rotate(ctx, "x")
	_, e6 := c.Check(ctx)
	for i, err := range []error{e1, e2, e3, e4, e5, e6} {
		var u *fake.UnexpectedCallError
		if !errors.As(err, &u) {
			t.Fatalf("call %d: got %v, want *UnexpectedCallError", i, err)
		}
	}
	if e4.Error() != "fake nomad client: unexpected call to Revoke (RevokeFunc is nil)" {
		t.Fatalf("message = %q", e4)
	}
	if len(tb.errors) != 6 {
		t.Fatalf("TB.Errorf called %d times, want 6", len(tb.errors))
	}
	if len(c.Calls()) != 6 {
		t.Fatal("unexpected calls are recorded too")
	}
}

func TestConcurrentUseIsSafe(t *testing.T) {
	c := &fake.Client{CheckFunc: func(context.Context) (nomad.PATPath, error) { return nomad.PATPathPats, nil }}
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() { _, _ = c.Check(context.Background()) })
	}
	wg.Wait()
	if c.CallCount(fake.MethodCheck) != 50 {
		t.Fatal("lost calls")
	}
}
