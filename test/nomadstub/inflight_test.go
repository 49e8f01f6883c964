package nomadstub

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"
)

// TestInFlightCountsHeldCreate: a create whose answer is held counts as in flight from the moment
// its handler gets it until the answer leaves, the PAT exists during the hold, and the gauge is
// served at /_stub/inflight and in the state while the store is busy.
func TestInFlightCountsHeldCreate(t *testing.T) {
	h := newHarness(t)
	kc := h.botToken()
	h.srv.InjectFault(OpCreate, 1, Fault{Delay: 20 * time.Millisecond, Hold: 300 * time.Millisecond})
	done := make(chan response, 1)
	go func() { done <- h.do(http.MethodPost, h.v1("/pats"), kc, patBody("p", []string{"uploads:read"}, 1)) }()

	deadline := time.Now().Add(5 * time.Second)
	for h.srv.InFlight()[OpCreate] != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("in flight = %v, want one create", h.srv.InFlight())
		}
		time.Sleep(5 * time.Millisecond)
	}
	for len(h.srv.PATs(botUser)) != 1 { // the hold begins once the PAT exists
		if time.Now().After(deadline) {
			t.Fatal("the held create never happened")
		}
		time.Sleep(5 * time.Millisecond)
	}
	var gauge map[string]int
	if err := json.Unmarshal(adminDo(t, h, http.MethodGet, "inflight", "").body, &gauge); err != nil {
		t.Fatal(err)
	}
	if gauge[OpCreate] != 1 || gauge[OpList] != 0 || len(gauge) != len(allOps) {
		t.Fatalf("GET /_stub/inflight = %v", gauge)
	}
	var st State
	if err := json.Unmarshal(adminDo(t, h, http.MethodGet, "state", "").body, &st); err != nil {
		t.Fatal(err)
	}
	if st.InFlight[OpCreate] != 1 {
		t.Fatalf("state in_flight = %v", st.InFlight)
	}

	r := <-done
	expectStatus(t, r, http.StatusCreated)
	if r.json(t)["raw_token"] == nil || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("held answer lost its body or headers: %v %s", r.header, r.body)
	}
	if n := h.srv.InFlight()[OpCreate]; n != 0 {
		t.Fatalf("in flight after the answer = %d", n)
	}
}

// TestHoldClientGivesUp: a client that gives up during the hold gets nothing, the PAT stays
// created, and the request stops counting.
func TestHoldClientGivesUp(t *testing.T) {
	h := newHarness(t)
	kc := h.botToken()
	h.srv.InjectFault(OpCreate, -1, Fault{Hold: time.Minute})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	raw, _ := json.Marshal(patBody("orphan", []string{"uploads:read"}, 1))
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, h.v1("/pats"), bytes.NewReader(raw))
	req.Header.Set("Authorization", "Bearer "+kc)
	req.Header.Set("Content-Type", "application/json")
	if resp, err := h.client.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("got %d, want the client's deadline", resp.StatusCode)
	}
	if pats := h.srv.PATs(botUser); len(pats) != 1 || pats[0].Revoked {
		t.Fatalf("the create must have happened: %+v", pats)
	}
	deadline := time.Now().Add(5 * time.Second)
	for h.srv.InFlight()[OpCreate] != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("in flight = %v after the client left", h.srv.InFlight())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestAdminFaultHoldParam(t *testing.T) {
	h := newHarness(t)
	expectStatus(t, adminDo(t, h, http.MethodPost, "faults?op=get&times=-1&hold=10ms", ""), http.StatusNoContent)
	expectStatus(t, adminDo(t, h, http.MethodPost, "faults?op=get&hold=soon", ""), http.StatusBadRequest)
	start := time.Now()
	expectStatus(t, h.do(http.MethodGet, h.v1("/pats/x"), "", nil), http.StatusUnauthorized)
	if el := time.Since(start); el < 10*time.Millisecond {
		t.Fatalf("answered after %v, want the 10ms hold", el)
	}
}
