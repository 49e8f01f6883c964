package connection

import (
	"sync"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/time/rate"
	"k8s.io/apimachinery/pkg/types"
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
	// Guard, when set, gives every client its own in-flight limit and circuit breaker
	// (nomad.GuardOptions), so that one slow or dead NOMAD holds few reconcile workers.
	Guard *nomad.GuardOptions
	// RequestTimeout bounds each request of every client; 0 means nomad.DefaultRequestTimeout.
	RequestTimeout time.Duration
	// Observer, when set, gives the client of the connection named name the observer of its
	// requests (the operator's metrics): built with the client, so every request is counted for
	// the connection it was sent for.
	Observer func(name types.NamespacedName) nomad.Observer

	mu      sync.Mutex
	clients map[string]pooled
}

type pooled struct {
	// name is the connection's namespace/name: a deleted connection reaches its reconciler by name
	// only, so the client must be found by name to be dropped.
	name        types.NamespacedName
	fingerprint string
	client      nomad.Client
}

// Get returns the pooled client of connection uid, named name, building a new one if cfg or the rate
// limit changed. A client pooled for the same name under another UID belonged to a deleted connection
// whose name was reused: it is dropped here, because the work queue merges the deletion and the
// re-creation into one request that finds the new object, so no reconcile ever sees the NotFound.
func (p *Pool) Get(name types.NamespacedName, uid string, cfg nomad.Config, rl *v1alpha1.RateLimit) (nomad.Client, error) {
	fp := fingerprint(cfg, rl, false)
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.clients[uid]; ok && c.fingerprint == fp && holds(c.client, cfg) {
		return c.client, nil
	}
	for other, c := range p.clients {
		if c.name == name && other != uid {
			delete(p.clients, other)
		}
	}
	qps, burst := qpsBurst(rl)
	cfg.Limiter = rate.NewLimiter(rate.Limit(qps), burst)
	cfg.Clock = p.Clock
	cfg.Log = p.Log
	cfg.Guard = p.Guard
	if p.Observer != nil {
		cfg.Observer = p.Observer(name)
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = p.RequestTimeout
	}
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
	p.clients[uid] = pooled{name: name, fingerprint: fp, client: c}
	return c, nil
}

// holds reports whether c started from, or itself received, the refresh token cfg was read with: a
// Secret the operator rewrote after a rotation is no new credential, and replacing the client would
// throw away the access token it just paid a refresh for.
func holds(c nomad.Client, cfg nomad.Config) bool {
	return cfg.OIDC.RefreshToken == "" || c.HoldsRefreshToken(cfg.OIDC.RefreshToken)
}

// ForgetConnection drops the client of the connection named name, whatever its UID: a NomadConnection
// has no finalizer, so its reconciler learns of the deletion from a NotFound that carries only the
// name. The client holds the bot password and an access token; it must not outlive the connection.
func (p *Pool) ForgetConnection(name types.NamespacedName) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for uid, c := range p.clients {
		if c.name == name {
			delete(p.clients, uid)
		}
	}
}

// LiveRefreshToken is the refresh token that the client pooled for connection uid sends next, if
// that client started from or received rt (a Secret's); "" when no such client is pooled, i.e. rt
// is none of the connection's: its owner wrote it. A client that moved on from the Secret's token
// holds the only one the realm still takes.
func (p *Pool) LiveRefreshToken(uid, rt string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.clients[uid]; ok && c.client.HoldsRefreshToken(rt) {
		return c.client.LiveRefreshToken()
	}
	return ""
}

// Has reports whether a client is pooled for connection uid; tests use it to prove a client is gone.
func (p *Pool) Has(uid string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.clients[uid]
	return ok
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
