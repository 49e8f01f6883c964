package main

import (
	"flag"
	"math"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"
)

// defaults are the flags as the manager starts without any.
func defaults(t *testing.T, args ...string) concurrency {
	t.Helper()
	var c concurrency
	fs := flag.NewFlagSet("manager", flag.ContinueOnError)
	c.bind(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestConcurrencyFlags(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		err  string // a part of the error; "" means valid
		warn string // a part of a warning; "" means none
	}{
		{name: "the defaults are valid and isolate connections", args: nil},
		{name: "one worker is allowed, though a slow NOMAD then holds it", args: []string{"--max-concurrent-reconciles=1"}, warn: "one slow NOMAD can hold every NomadToken worker"},
		{name: "no workers is refused", args: []string{"--max-concurrent-reconciles=0"}, err: "--max-concurrent-reconciles must be at least 1"},
		{name: "no connection workers is refused", args: []string{"--connection-max-concurrent-reconciles=0"}, err: "--connection-max-concurrent-reconciles must be at least 1"},
		{name: "a positive client rate is allowed", args: []string{"--kube-api-qps=50", "--kube-api-burst=100"}},
		{name: "a client rate of 0 is refused, client-go would make it 5", args: []string{"--kube-api-qps=0"}, err: "use a positive rate, or -1"},
		{name: "a client rate that is no number is refused", args: []string{"--kube-api-qps=NaN"}, err: "must be a number"},
		{name: "a negative burst is refused", args: []string{"--kube-api-burst=-1"}, err: "--kube-api-burst must not be negative"},
		{name: "no NOMAD slot is refused", args: []string{"--nomad-max-in-flight=0"}, err: "--nomad-max-in-flight must be at least 1"},
		{name: "as many NOMAD slots as workers is allowed with a warning", args: []string{"--nomad-max-in-flight=16"}, warn: "is not below --max-concurrent-reconciles (16)"},
		{name: "a breaker that never opens is refused", args: []string{"--nomad-breaker-failures=0"}, err: "--nomad-breaker-failures must be at least 1"},
		{name: "a breaker without cool-down is refused", args: []string{"--nomad-breaker-cooldown=0s"}, err: "--nomad-breaker-cooldown must be positive"},
		{name: "no request timeout is refused", args: []string{"--nomad-request-timeout=0s"}, err: "--nomad-request-timeout must be positive"},
		{name: "every problem is named at once", args: []string{"--max-concurrent-reconciles=0", "--nomad-max-in-flight=0"},
			err: "--max-concurrent-reconciles must be at least 1, not 0\n--nomad-max-in-flight must be at least 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := defaults(t, tc.args...)
			err := c.validate()
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("validate() = %v; want an error with %q", err, tc.err)
			}
			warnings := strings.Join(c.warnings(), "\n")
			if tc.warn == "" && warnings != "" || !strings.Contains(warnings, tc.warn) {
				t.Errorf("warnings() = %q; want %q", warnings, tc.warn)
			}
		})
	}
}

func TestConcurrencyDefaults(t *testing.T) {
	c := defaults(t)
	if c.tokenWorkers != 16 || c.connectionWorkers != 4 || c.nomadInFlight != 4 || c.breakerFailures != 3 ||
		c.breakerCooldown != 30*time.Second || c.requestTimeout != 30*time.Second || c.kubeQPS != -1 || c.kubeBurst != 0 {
		t.Errorf("defaults = %+v", c)
	}
}

func TestKubeClientRate(t *testing.T) {
	for _, tc := range []struct {
		name      string
		qps       float64
		burst     int
		wantQPS   float32
		wantBurst int
	}{
		{name: "-1 turns client-side limiting off", qps: -1, burst: 100, wantQPS: -1, wantBurst: 0},
		{name: "a rate and a burst are taken as given", qps: 50, burst: 100, wantQPS: 50, wantBurst: 100},
		{name: "burst 0 is twice the rate", qps: 50, wantQPS: 50, wantBurst: 100},
		{name: "burst 0 with a fractional rate is at least 1", qps: 0.2, wantQPS: 0.2, wantBurst: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &rest.Config{QPS: 20, Burst: 30}
			concurrency{kubeQPS: tc.qps, kubeBurst: tc.burst}.applyTo(cfg)
			if math.Abs(float64(cfg.QPS-tc.wantQPS)) > 1e-6 || cfg.Burst != tc.wantBurst {
				t.Errorf("QPS, Burst = %v, %d; want %v, %d", cfg.QPS, cfg.Burst, tc.wantQPS, tc.wantBurst)
			}
		})
	}
}
