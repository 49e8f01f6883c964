// Package fake is a hand-written nomad.Client for controller unit tests.
//
// Set the function field of every method the code under test is expected to call. A call to a
// method whose field is nil fails loudly: it returns an *UnexpectedCallError naming the method and,
// when TB is set, also marks the test failed with TB.Errorf, so that a controller which swallows or
// retries the error still cannot hide the unexpected call. It never panics: controller-runtime
// recovers panics in Reconcile and would turn them into just another retried error.
//
// Every call is recorded, in order, before the function field runs; the fake is safe for
// concurrent use. For anything beyond unit level use the stand-in server in test/nomadstub.
package fake

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nomad-operator/nomad-token-operator/internal/nomad"
)

// Method names as recorded in Call.Method.
const (
	MethodCreate = "Create"
	MethodGet    = "Get"
	MethodList   = "List"
	MethodRevoke = "Revoke"
	MethodRotate = "Rotate"
	MethodCheck  = "Check"
)

// Client is a nomad.Client whose behaviour is whatever its function fields say.
type Client struct {
	CreateFunc func(ctx context.Context, req nomad.CreateRequest) (*nomad.IssuedToken, error)
	GetFunc    func(ctx context.Context, id string) (*nomad.PAT, error)
	ListFunc   func(ctx context.Context, opts nomad.ListOptions) ([]nomad.PAT, error)
	RevokeFunc func(ctx context.Context, id string) error
	RotateFunc func(ctx context.Context, id string) (*nomad.IssuedToken, error)
	CheckFunc  func(ctx context.Context) (nomad.PATPath, error)

	// AccountID is what Account returns.
	AccountID string
	// SignedIn is what SignInState returns (reported only once At is set).
	SignedIn nomad.SignIn
	// Offset is what ClockOffset returns: NOMAD's clock ahead of the client's (always known).
	Offset time.Duration
	// RefreshTokens are the refresh tokens HoldsRefreshToken knows.
	RefreshTokens []string

	// TB, when set, is failed (Errorf) on every call to a method whose function field is nil.
	TB testing.TB

	mu    sync.Mutex
	calls []Call
}

var _ nomad.Client = &Client{}

// Call is one recorded call. Only the argument fields of the named method are set.
type Call struct {
	Method  string
	ID      string              // Get, Revoke, Rotate
	Request nomad.CreateRequest // Create
	Options nomad.ListOptions   // List
}

// UnexpectedCallError is returned for a call to a method whose function field is nil.
type UnexpectedCallError struct{ Method string }

func (e *UnexpectedCallError) Error() string {
	return "fake nomad client: unexpected call to " + e.Method + " (" + e.Method + "Func is nil)"
}

// Calls returns a copy of every call so far, in order.
func (c *Client) Calls() []Call {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Call(nil), c.calls...)
}

// Methods returns the method names of every call so far, in order, e.g. ["Get", "Create", "Revoke"].
func (c *Client) Methods() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, len(c.calls))
	for i, call := range c.calls {
		out[i] = call.Method
	}
	return out
}

// CallCount returns how often method was called.
func (c *Client) CallCount(method string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, call := range c.calls {
		if call.Method == method {
			n++
		}
	}
	return n
}

// Reset forgets the recorded calls; the function fields stay.
func (c *Client) Reset() {
	c.mu.Lock()
	c.calls = nil
	c.mu.Unlock()
}

func (c *Client) record(call Call) {
	c.mu.Lock()
	c.calls = append(c.calls, call)
	c.mu.Unlock()
}

func (c *Client) unexpected(method string) error {
	err := &UnexpectedCallError{Method: method}
	if c.TB != nil {
		c.TB.Helper()
		c.TB.Errorf("%v", err)
	}
	return err
}

// Create records the call and runs CreateFunc.
func (c *Client) Create(ctx context.Context, req nomad.CreateRequest) (*nomad.IssuedToken, error) {
	c.record(Call{Method: MethodCreate, Request: req})
	if c.CreateFunc == nil {
		return nil, c.unexpected(MethodCreate)
	}
	return c.CreateFunc(ctx, req)
}

// Get records the call and runs GetFunc.
func (c *Client) Get(ctx context.Context, id string) (*nomad.PAT, error) {
	c.record(Call{Method: MethodGet, ID: id})
	if c.GetFunc == nil {
		return nil, c.unexpected(MethodGet)
	}
	return c.GetFunc(ctx, id)
}

// List records the call and runs ListFunc.
func (c *Client) List(ctx context.Context, opts nomad.ListOptions) ([]nomad.PAT, error) {
	c.record(Call{Method: MethodList, Options: opts})
	if c.ListFunc == nil {
		return nil, c.unexpected(MethodList)
	}
	return c.ListFunc(ctx, opts)
}

// Revoke records the call and runs RevokeFunc.
func (c *Client) Revoke(ctx context.Context, id string) error {
	c.record(Call{Method: MethodRevoke, ID: id})
	if c.RevokeFunc == nil {
		return c.unexpected(MethodRevoke)
	}
	return c.RevokeFunc(ctx, id)
}

// Rotate records the call and runs RotateFunc.
func (c *Client) Rotate(ctx context.Context, id string) (*nomad.IssuedToken, error) {
	c.record(Call{Method: MethodRotate, ID: id})
	if c.RotateFunc == nil {
		return nil, c.unexpected(MethodRotate)
	}
	return c.RotateFunc(ctx, id)
}

// Check records the call and runs CheckFunc.
func (c *Client) Check(ctx context.Context) (nomad.PATPath, error) {
	c.record(Call{Method: MethodCheck})
	if c.CheckFunc == nil {
		return "", c.unexpected(MethodCheck)
	}
	return c.CheckFunc(ctx)
}

// ResolvedPATPath is "": the fake keeps no path of its own, so callers go by what CheckFunc answered.
func (c *Client) ResolvedPATPath() nomad.PATPath { return "" }

// Account returns AccountID; it is not recorded as a call (it asks NOMAD nothing).
func (c *Client) Account() string { return c.AccountID }

// ClockOffset returns Offset.
func (c *Client) ClockOffset() (time.Duration, bool) { return c.Offset, true }

// SignInState returns SignedIn, and whether it is set; it is not recorded as a call.
func (c *Client) SignInState() (nomad.SignIn, bool) { return c.SignedIn, !c.SignedIn.At.IsZero() }

// LiveRefreshToken is the last of RefreshTokens, "" when there are none.
func (c *Client) LiveRefreshToken() string {
	if len(c.RefreshTokens) == 0 {
		return ""
	}
	return c.RefreshTokens[len(c.RefreshTokens)-1]
}

// HoldsRefreshToken reports whether rt is one of RefreshTokens.
func (c *Client) HoldsRefreshToken(rt string) bool { return slices.Contains(c.RefreshTokens, rt) }
