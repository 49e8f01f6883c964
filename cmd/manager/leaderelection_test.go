package main

import (
	"flag"
	"os"
	"testing"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
)

func TestLeaderElectionOptions(t *testing.T) {
	for _, tc := range []struct {
		name       string
		args       []string
		podNS      string // $POD_NAMESPACE; "" is a manager outside a pod
		wantNS     string
		wantElects bool
	}{
		{name: "outside a pod the Lease goes to the default install namespace", wantNS: "nomad-operator-system", wantElects: true},
		{name: "in a pod the Lease goes to the pod's namespace", podNS: "ops", wantNS: "ops", wantElects: true},
		{name: "the flag names another namespace", args: []string{"--leader-election-namespace=leases"}, podNS: "ops", wantNS: "leases", wantElects: true},
		{name: "without election the namespace is still set, and harmless", args: []string{"--leader-elect=false"}, wantNS: "nomad-operator-system"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("POD_NAMESPACE", tc.podNS)
			if _, err := os.Stat("/var/run/secrets/kubernetes.io/serviceaccount/namespace"); err == nil && tc.podNS == "" {
				t.Skip("this test runs in a pod: its service account names a namespace")
			}
			var l leaderElection
			fs := flag.NewFlagSet("manager", flag.ContinueOnError)
			l.bind(fs)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			var opts ctrl.Options
			l.applyTo(&opts, operatorNamespace())
			if opts.LeaderElectionNamespace != tc.wantNS || opts.LeaderElection != tc.wantElects {
				t.Errorf("LeaderElectionNamespace, LeaderElection = %q, %v; want %q, %v", opts.LeaderElectionNamespace, opts.LeaderElection, tc.wantNS, tc.wantElects)
			}
			if opts.LeaderElectionID != leaderElectionID || !opts.LeaderElectionReleaseOnCancel {
				t.Errorf("LeaderElectionID, ReleaseOnCancel = %q, %v", opts.LeaderElectionID, opts.LeaderElectionReleaseOnCancel)
			}
			if *opts.LeaseDuration != 15*time.Second || *opts.RenewDeadline != 10*time.Second || *opts.RetryPeriod != 2*time.Second {
				t.Errorf("lease timing = %s / %s / %s; want 15s / 10s / 2s", *opts.LeaseDuration, *opts.RenewDeadline, *opts.RetryPeriod)
			}
		})
	}
}
