package main

import (
	"flag"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
)

// leaderElectionID names the Lease; every replica of one install must use the same.
const leaderElectionID = "nomad-token-operator.tokens.nomad-operator.dev"

// leaderElection is how replicas agree on the one that acts.
type leaderElection struct {
	enabled       bool
	namespace     string
	leaseDuration time.Duration
	renewDeadline time.Duration
	retryPeriod   time.Duration
}

func (l *leaderElection) bind(fs *flag.FlagSet) {
	fs.BoolVar(&l.enabled, "leader-elect", true,
		"Elect a leader, so that only one replica acts at a time (two would mint two PATs for one token). Use --leader-elect=false only for a manager that is surely alone.")
	fs.StringVar(&l.namespace, "leader-election-namespace", "",
		"Namespace of the leader-election Lease (default: the namespace the operator runs in, as for --cluster-resource-namespace; nomad-operator-system outside a pod).")
	fs.DurationVar(&l.leaseDuration, "leader-election-lease-duration", 15*time.Second,
		"How long a replica that stopped renewing (crashed) keeps the lease before another one takes over.")
	fs.DurationVar(&l.renewDeadline, "leader-election-renew-deadline", 10*time.Second,
		"How long the leader keeps trying to renew the lease before it gives up leading.")
	fs.DurationVar(&l.retryPeriod, "leader-election-retry-period", 2*time.Second,
		"How often replicas try to acquire or renew the lease.")
}

// applyTo sets the leader-election options of opts. The Lease goes to operatorNS unless
// --leader-election-namespace names another: left empty, controller-runtime would look for the
// pod's namespace itself and, outside a pod (`go run ./cmd/manager`), refuse to start with "unable to
// find leader election namespace".
func (l leaderElection) applyTo(opts *ctrl.Options, operatorNS string) {
	opts.LeaderElection = l.enabled
	opts.LeaderElectionID = leaderElectionID
	opts.LeaderElectionNamespace = l.namespace
	if opts.LeaderElectionNamespace == "" {
		opts.LeaderElectionNamespace = operatorNS
	}
	opts.LeaseDuration = &l.leaseDuration
	opts.RenewDeadline = &l.renewDeadline
	opts.RetryPeriod = &l.retryPeriod
	// On a clean shutdown the lease is handed back at once, so the next replica need not wait for it
	// to expire. Safe: the manager exits right after its controllers stopped.
	opts.LeaderElectionReleaseOnCancel = true
}
