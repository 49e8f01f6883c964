package connection

import (
	"sync"

	"github.com/go-logr/logr"
	"golang.org/x/time/rate"
	"k8s.io/utils/clock"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/internal/nomad"
)

// Default rate limit of one connection, as documented on RateLimit.
const (
	DefaultQPS   = 5
	DefaultBurst = 10
)

// NewClientFunc builds a client; tests replace it to point at a fake or a stand-in.
type NewClientFunc func(nomad.Config) (nomad.Client, error)

// Pool keeps one client per connection (keyed by the connection's UID) for as long as the connection's
// settings stay the same. Reusing it is what makes N token operations cost one login.
type Pool struct {
	// NewClient builds clients; nil means nomad.New.
	NewClient NewClientFunc
	// Clock is handed to every client; nil means the real clock.
	Clock clock.PassiveClock
	// Log is handed to every client.
	Log logr.Logger

	mu      sync.Mutex
	clients map[string]pooled
}

type pooled struct {
	fingerprint string
	client      nomad.Client
}

// Get returns the pooled client of connection uid, building a new one if cfg or the rate limit changed.
func (p *Pool) Get(uid string, cfg nomad.Config, rl *v1alpha1.RateLimit) (nomad.Client, error) {
	fp := fingerprint(cfg, rl)
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.clients[uid]; ok && c.fingerprint == fp {
		return c.client, nil
	}
	qps, burst := qpsBurst(rl)
	cfg.Limiter = rate.NewLimiter(rate.Limit(qps), burst)
	cfg.Clock = p.Clock
	cfg.Log = p.Log
	newClient := p.NewClient
	if newClient == nil {
		newClient = func(c nomad.Config) (nomad.Client, error) { return nomad.New(c) }
	}
	c, err := newClient(cfg)
	if err != nil {
		return nil, err
	}
	if p.clients == nil {
		p.clients = map[string]pooled{}
	}
	p.clients[uid] = pooled{fingerprint: fp, client: c}
	return c, nil
}

// Forget drops the client of a deleted connection.
func (p *Pool) Forget(uid string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.clients, uid)
}

func qpsBurst(rl *v1alpha1.RateLimit) (int, int) {
	qps, burst := DefaultQPS, DefaultBurst
	if rl != nil && rl.QPS > 0 {
		qps = int(rl.QPS)
	}
	if rl != nil && rl.Burst > 0 {
		burst = int(rl.Burst)
	}
	return qps, burst
}
