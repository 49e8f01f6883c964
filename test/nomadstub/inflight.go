package nomadstub

import "sync"

// flightGauge counts the requests each operation is serving right now, fault delays and held
// answers included. It has its own lock: handlers hold Server.mu for a whole operation, and a chaos
// test must read the gauge at once, right before it kills the client, without waiting for one.
type flightGauge struct {
	mu sync.Mutex
	n  map[string]int
}

// enter counts a request of op in flight until the returned func is called.
func (g *flightGauge) enter(op string) (leave func()) {
	g.mu.Lock()
	if g.n == nil {
		g.n = map[string]int{}
	}
	g.n[op]++
	g.mu.Unlock()
	return func() {
		g.mu.Lock()
		g.n[op]--
		g.mu.Unlock()
	}
}

// snapshot has every operation, zero or not, like Calls.
func (g *flightGauge) snapshot() map[string]int {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make(map[string]int, len(allOps))
	for _, op := range allOps {
		out[op] = g.n[op]
	}
	return out
}

// InFlight returns how many requests each operation (login, create, list, ...) is handling at this
// moment: received by its handler and not yet answered, including the time spent in an injected
// Delay or Hold. Admin routes are not operations and never count.
func (s *Server) InFlight() map[string]int { return s.inFlight.snapshot() }
