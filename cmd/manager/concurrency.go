package main

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"time"

	"k8s.io/client-go/rest"

	"github.com/nomad-operator/nomad-token-operator/controllers"
	"github.com/nomad-operator/nomad-token-operator/internal/nomad"
)

// concurrency is what the manager does at once: its workers, its Kubernetes client's rate, and how
// much of it one NOMAD may hold (docs/performance.md says why the defaults are what they are).
type concurrency struct {
	tokenWorkers      int
	connectionWorkers int
	kubeQPS           float64
	kubeBurst         int
	nomadInFlight     int
	breakerFailures   int
	breakerCooldown   time.Duration
	requestTimeout    time.Duration
}

func (c *concurrency) bind(fs *flag.FlagSet) {
	fs.IntVar(&c.tokenWorkers, "max-concurrent-reconciles", controllers.DefaultMaxConcurrentReconciles,
		"NomadTokens reconciled at once (one NomadToken is never reconciled twice at once).")
	fs.IntVar(&c.connectionWorkers, "connection-max-concurrent-reconciles", controllers.DefaultConnectionMaxConcurrentReconciles,
		"NomadConnections (and, separately, ClusterNomadConnections) reconciled at once.")
	fs.Float64Var(&c.kubeQPS, "kube-api-qps", -1,
		"Requests per second the Kubernetes client may send; -1 turns client-side limiting off and leaves it to the API server's Priority and Fairness.")
	fs.IntVar(&c.kubeBurst, "kube-api-burst", 0,
		"Requests the Kubernetes client may send at once above --kube-api-qps; 0 means twice --kube-api-qps. Ignored while --kube-api-qps is -1.")
	fs.IntVar(&c.nomadInFlight, "nomad-max-in-flight", nomad.DefaultMaxInFlight,
		"Requests in flight to one NOMAD connection at most (rate-limit waits included): how many workers a slow NOMAD can hold.")
	fs.IntVar(&c.breakerFailures, "nomad-breaker-failures", nomad.DefaultBreakerFailures,
		"Consecutive failed requests (no answer, or 5xx) after which a connection's circuit breaker opens and its calls fail at once.")
	fs.DurationVar(&c.breakerCooldown, "nomad-breaker-cooldown", nomad.DefaultBreakerCooldown,
		"How long an open circuit breaker sends nothing before one probe request; doubled after each failed probe, up to 5m (or this value, if larger).")
	fs.DurationVar(&c.requestTimeout, "nomad-request-timeout", nomad.DefaultRequestTimeout,
		"How long one request to NOMAD may take, waits for a slot and the rate limit included.")
}

// validate says what is wrong with the flags, or nil.
func (c concurrency) validate() error {
	var errs []error
	if c.tokenWorkers < 1 {
		errs = append(errs, fmt.Errorf("--max-concurrent-reconciles must be at least 1, not %d", c.tokenWorkers))
	}
	if c.connectionWorkers < 1 {
		errs = append(errs, fmt.Errorf("--connection-max-concurrent-reconciles must be at least 1, not %d", c.connectionWorkers))
	}
	switch {
	case math.IsNaN(c.kubeQPS) || math.IsInf(c.kubeQPS, 0):
		errs = append(errs, fmt.Errorf("--kube-api-qps must be a number, not %v", c.kubeQPS))
	case c.kubeQPS == 0:
		// client-go would silently replace 0 by its default of 5 per second.
		errs = append(errs, errors.New("--kube-api-qps must not be 0: use a positive rate, or -1 to turn client-side limiting off"))
	}
	if c.kubeBurst < 0 {
		errs = append(errs, fmt.Errorf("--kube-api-burst must not be negative, not %d", c.kubeBurst))
	}
	if c.nomadInFlight < 1 {
		errs = append(errs, fmt.Errorf("--nomad-max-in-flight must be at least 1, not %d", c.nomadInFlight))
	}
	if c.breakerFailures < 1 {
		errs = append(errs, fmt.Errorf("--nomad-breaker-failures must be at least 1, not %d", c.breakerFailures))
	}
	if c.breakerCooldown <= 0 {
		errs = append(errs, fmt.Errorf("--nomad-breaker-cooldown must be positive, not %s", c.breakerCooldown))
	}
	if c.requestTimeout <= 0 {
		errs = append(errs, fmt.Errorf("--nomad-request-timeout must be positive, not %s", c.requestTimeout))
	}
	return errors.Join(errs...)
}

// warnings are settings that work but defeat a purpose.
func (c concurrency) warnings() []string {
	var out []string
	if c.tokenWorkers >= 1 && c.nomadInFlight >= c.tokenWorkers {
		out = append(out, fmt.Sprintf("--nomad-max-in-flight (%d) is not below --max-concurrent-reconciles (%d): one slow NOMAD can hold every NomadToken worker",
			c.nomadInFlight, c.tokenWorkers))
	}
	return out
}

// applyTo sets the Kubernetes client's rate on cfg, before the manager is built from it.
func (c concurrency) applyTo(cfg *rest.Config) {
	if c.kubeQPS < 0 {
		cfg.QPS, cfg.Burst = -1, 0
		return
	}
	cfg.QPS = float32(c.kubeQPS)
	cfg.Burst = c.kubeBurst
	if cfg.Burst == 0 {
		cfg.Burst = max(1, int(math.Ceil(2*c.kubeQPS)))
	}
}

// settings puts the controllers' part into s.
func (c concurrency) settings(s *controllers.Settings) {
	s.MaxConcurrentReconciles = c.tokenWorkers
	s.ConnectionMaxConcurrentReconciles = c.connectionWorkers
	s.NomadGuard = nomad.GuardOptions{
		MaxInFlight:     c.nomadInFlight,
		BreakerFailures: c.breakerFailures,
		BreakerCooldown: c.breakerCooldown,
	}
	s.NomadRequestTimeout = c.requestTimeout
}
