package nomadstub

import (
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"time"
)

// Fault replaces or disturbs the handling of a request, to exercise a client's error paths.
type Fault struct {
	Status       int           // answer with this status (e.g. 503, 429) instead of handling the request
	RetryAfter   time.Duration // sets Retry-After (whole seconds, rounded up) when > 0
	Detail       string        // detail for Status; default "Injected fault"
	LoseResponse bool          // perform the operation fully (e.g. create the PAT), then drop the connection without any answer
	Delay        time.Duration // sleep (real time) before answering; ends early if the client gives up
	// Hold performs the operation (after Delay), then keeps its answer this long (real time) before
	// sending it: a slow way back, the moment when a create has happened and its caller does not yet
	// hold the raw token. A client that gives up meanwhile gets nothing; the operation stays done.
	Hold time.Duration
	// Hang accepts the request and never answers it: a NOMAD that stopped answering. Nothing is
	// performed; the request stays open until the client gives up, or ReleaseHangs (or ClearFaults)
	// lets go, which drops the connection without a byte. Other fields are ignored.
	Hang bool
}

type faultEntry struct {
	fault     Fault
	remaining int // < 0: until ClearFaults
}

// InjectFault makes the next `times` requests for op get f. Faults for one op queue up in the order
// injected. times < 0 means every request until ClearFaults; times == 0 does nothing.
func (s *Server) InjectFault(op string, times int, f Fault) {
	if times == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[op] = append(s.faults[op], &faultEntry{fault: f, remaining: times})
}

// ClearFaults removes every pending fault and releases the requests a Hang fault holds.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = map[string][]*faultEntry{}
	s.releaseHangsLocked()
}

// ReleaseHangs drops the connection of every request a Hang fault holds now; Hang faults still
// pending keep catching new requests. Call it before closing an httptest.Server, whose Close waits
// for the requests in flight.
func (s *Server) ReleaseHangs() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.releaseHangsLocked()
}

func (s *Server) releaseHangsLocked() {
	if s.hangs != nil {
		close(s.hangs)
	}
	s.hangs = make(chan struct{})
}

// hangRelease is the channel the requests held by a Hang fault now wait on.
func (s *Server) hangRelease() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hangs == nil {
		s.hangs = make(chan struct{})
	}
	return s.hangs
}

// Calls returns how many requests reached each operation's handler, whatever their outcome
// (faults, 401s and 422s included; 404/405/307 from routing are not operations). Every operation
// is present, zero or not.
func (s *Server) Calls() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(allOps))
	for _, op := range allOps {
		out[op] = s.calls[op]
	}
	return out
}

// ResetCalls zeroes the call counts, the per-user login counts (Logins) and the realm's grant
// counts (Grants, GrantFailures) included.
func (s *Server) ResetCalls() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = map[string]int{}
	s.logins = map[string]LoginCount{}
	s.realm.grants = map[string]int{}
	s.realm.grantFailures = map[string]int{}
}

// takeFault counts the call and pops the next fault for op, if any.
func (s *Server) takeFault(op string) (Fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[op]++
	q := s.faults[op]
	if len(q) == 0 {
		return Fault{}, false
	}
	e := q[0]
	if e.remaining > 0 {
		e.remaining--
		if e.remaining == 0 {
			s.faults[op] = q[1:]
		}
	}
	return e.fault, true
}

// serveOp runs one operation's handler, applying an injected fault first.
func (s *Server) serveOp(w http.ResponseWriter, r *http.Request, op string, h opHandler, id string) {
	defer s.inFlight.enter(op)()
	s.logRequest(r, op)
	f, ok := s.takeFault(op)
	if !ok {
		h(w, r, id)
		return
	}
	if f.Hang {
		// net/http notices a client that hangs up only once the request body has been read.
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-s.hangRelease():
			dropConnection(w)
		case <-r.Context().Done():
		}
		return
	}
	if f.Delay > 0 {
		t := time.NewTimer(f.Delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	switch {
	case f.LoseResponse:
		// The operation really happens (a PAT is created, revoked, rotated...); only the answer
		// is lost, which is what makes a lost create response dangerous.
		h(httptest.NewRecorder(), r, id)
		dropConnection(w)
	case f.Status != 0:
		if f.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(f.RetryAfter.Seconds()))))
		}
		detail := f.Detail
		if detail == "" {
			detail = detailInjectedFault
		}
		writeDetail(w, f.Status, detail)
	case f.Hold > 0:
		rec := httptest.NewRecorder()
		h(rec, r, id)
		t := time.NewTimer(f.Hold)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	default:
		h(w, r, id)
	}
}

// dropConnection closes the client connection without writing a byte. Hijacking works for HTTP/1
// (httptest.NewServer, the binary); elsewhere ErrAbortHandler makes net/http abort the response.
func dropConnection(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	_ = conn.Close()
}
