package nomadstub

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestFaultStatusWithRetryAfter(t *testing.T) {
	h := newHarness(t)
	kc := h.botToken()
	h.srv.InjectFault(OpCreate, 2, Fault{Status: 503, RetryAfter: 1500 * time.Millisecond})
	h.srv.InjectFault(OpCreate, 1, Fault{Status: 429, Detail: "slow down"})

	for range 2 {
		r := h.do(http.MethodPost, h.v1("/pats"), kc, patBody("p", []string{"uploads:read"}, 1))
		expectDetail(t, r, 503, "Injected fault")
		if got := r.header.Get("Retry-After"); got != "2" {
			t.Fatalf("Retry-After = %q, want whole seconds rounded up", got)
		}
	}
	r := h.do(http.MethodPost, h.v1("/pats"), kc, patBody("p", []string{"uploads:read"}, 1))
	expectDetail(t, r, 429, "slow down")
	if r.header.Get("Retry-After") != "" {
		t.Fatal("Retry-After without RetryAfter")
	}
	expectStatus(t, h.do(http.MethodPost, h.v1("/pats"), kc, patBody("p", []string{"uploads:read"}, 1)), http.StatusCreated)
	if n := len(h.srv.PATs(botUser)); n != 1 {
		t.Fatalf("faulted creates stored PATs: %d", n)
	}
	if got := h.srv.Calls()[OpCreate]; got != 4 {
		t.Fatalf("create calls = %d, want 4 (faults count)", got)
	}
}

func TestFaultReplacesAuthentication(t *testing.T) {
	h := newHarness(t)
	h.srv.InjectFault(OpList, 1, Fault{Status: 502})
	expectStatus(t, h.do(http.MethodGet, h.v1("/pats"), "", nil), 502) // no credentials, still the fault
	expectStatus(t, h.do(http.MethodGet, h.v1("/pats"), "", nil), 401)
}

func TestFaultOnLogin(t *testing.T) {
	h := newHarness(t)
	h.srv.InjectFault(OpLogin, 1, Fault{Status: 500})
	r := h.do(http.MethodPost, h.v1("/auth/token"), "", nil)
	expectStatus(t, r, 500)
	h.botToken()
}

// TestLoseResponseStillCreates is the orphan scenario of §11.4: the PAT exists, the client never
// learns its secret or id.
func TestLoseResponseStillCreates(t *testing.T) {
	h := newHarness(t)
	kc := h.botToken()
	h.srv.InjectFault(OpCreate, 1, Fault{LoseResponse: true})
	raw, _ := json.Marshal(patBody("orphan", []string{"uploads:read"}, 30))
	req, _ := http.NewRequest(http.MethodPost, h.v1("/pats"), bytes.NewReader(raw))
	req.Header.Set("Authorization", "Bearer "+kc)
	req.Header.Set("Content-Type", "application/json")
	resp, err := h.client.Do(req)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("got a response (%d), want a dropped connection", resp.StatusCode)
	}
	pats := h.srv.PATs(botUser)
	if len(pats) != 1 || pats[0].Name != "orphan" || pats[0].Revoked {
		t.Fatalf("the create must have happened: %+v", pats)
	}
	if h.srv.Calls()[OpCreate] != 1 {
		t.Fatalf("calls = %v", h.srv.Calls())
	}
	h.createPAT(kc, patBody("next", []string{"uploads:read"}, 30)) // the fault was used up
}

func TestLoseResponseOnRevokeStillRevokes(t *testing.T) {
	h := newHarness(t)
	kc := h.botToken()
	pat, raw := h.createPAT(kc, patBody("p", []string{"uploads:read"}, 30))
	h.srv.InjectFault(OpRevoke, 1, Fault{LoseResponse: true})
	req, _ := http.NewRequest(http.MethodDelete, h.v1("/pats/"+pat["id"].(string)), nil)
	req.Header.Set("Authorization", "Bearer "+kc)
	// A fresh transport: net/http retries idempotent requests on a reused connection that died.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	if resp, err := client.Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("want a dropped connection")
	}
	if h.srv.Authenticates(raw) {
		t.Fatal("revoke did not happen")
	}
}

func TestFaultDelay(t *testing.T) {
	h := newHarness(t)
	h.srv.InjectFault(OpOpenAPI, 1, Fault{Delay: 50 * time.Millisecond})
	start := time.Now()
	expectStatus(t, h.do(http.MethodGet, h.v1("/openapi.json"), "", nil), http.StatusOK)
	if el := time.Since(start); el < 50*time.Millisecond {
		t.Fatalf("answered after %v, want >= 50ms", el)
	}

	// A client that gives up ends the delay early.
	h.srv.InjectFault(OpOpenAPI, 1, Fault{Delay: time.Minute, Status: 503})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, h.v1("/openapi.json"), nil)
	_, err := h.client.Do(req)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the client's deadline", err)
	}
}

func TestFaultForeverUntilCleared(t *testing.T) {
	h := newHarness(t)
	h.srv.InjectFault(OpList, -1, Fault{Status: 503})
	h.srv.InjectFault(OpGet, 0, Fault{Status: 503}) // times 0 is a no-op
	for range 3 {
		expectStatus(t, h.do(http.MethodGet, h.v1("/pats"), "", nil), 503)
	}
	expectStatus(t, h.do(http.MethodGet, h.v1("/pats/x"), "", nil), 401)
	h.srv.ClearFaults()
	expectStatus(t, h.do(http.MethodGet, h.v1("/pats"), "", nil), 401)
}

// TestFaultHang: a hanging NOMAD accepts the request and never answers; nothing happens until the
// client gives up or the hang is released, which drops the connection.
func TestFaultHang(t *testing.T) {
	h := newHarness(t)
	kc := h.botToken()
	h.srv.InjectFault(OpCreate, -1, Fault{Hang: true})
	post := func(ctx context.Context) error {
		raw, _ := json.Marshal(patBody("p", []string{"uploads:read"}, 30))
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, h.v1("/pats"), bytes.NewReader(raw))
		req.Header.Set("Authorization", "Bearer "+kc)
		req.Header.Set("Content-Type", "application/json")
		resp, err := h.client.Do(req)
		if err == nil {
			resp.Body.Close()
			return errors.New("answered " + resp.Status)
		}
		return err
	}

	// Released: every held request loses its connection, without an answer.
	held := make(chan error, 2)
	for range 2 {
		go func() { held <- post(context.Background()) }()
	}
	waitInFlight(t, h.srv, OpCreate, 2)
	h.srv.ReleaseHangs()
	for range 2 {
		if err := <-held; err == nil || strings.Contains(err.Error(), "answered") {
			t.Fatalf("a released hang gave %v, want a dropped connection", err)
		}
	}

	// The fault stays: the next request hangs too, until its client gives up.
	ctx, cancel := context.WithCancel(context.Background())
	gaveUp := make(chan error, 1)
	go func() { gaveUp <- post(ctx) }()
	waitInFlight(t, h.srv, OpCreate, 1)
	cancel()
	if err := <-gaveUp; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want the client's cancellation", err)
	}
	waitInFlight(t, h.srv, OpCreate, 0)

	// ClearFaults releases a held request and the fault with it.
	go func() { held <- post(context.Background()) }()
	waitInFlight(t, h.srv, OpCreate, 1)
	h.srv.ClearFaults()
	if err := <-held; err == nil || strings.Contains(err.Error(), "answered") {
		t.Fatalf("a cleared hang gave %v, want a dropped connection", err)
	}
	if n := len(h.srv.PATs(botUser)); n != 0 {
		t.Fatalf("a hung create stored %d PATs, want none", n)
	}
	h.createPAT(kc, patBody("next", []string{"uploads:read"}, 30))
}

// waitInFlight waits until op has n requests in flight (no timing is asserted: only that it happens).
func waitInFlight(t *testing.T, s *Server, op string, n int) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); s.InFlight()[op] != n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s in flight = %d, want %d", op, s.InFlight()[op], n)
		}
	}
}
