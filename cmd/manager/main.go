// Command manager runs the nomad-token-operator controllers.
package main

import (
	"flag"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/controllers"
	"github.com/nomad-operator/nomad-token-operator/internal/connection"
)

func main() {
	var (
		metricsAddr     string
		metricsSecure   bool
		metricsCertDir  string
		probeAddr       string
		pprofAddr       string
		checkInterval   time.Duration
		userErrorRetry  time.Duration
		syncPeriod      time.Duration
		lastUsed        time.Duration
		orphanSweep     string
		clusterNS       string
		patLimit        int
		patWarning      float64
		watchNamespaces string
		stallTimeout    time.Duration
		allowedURLs     string
	)
	flag.StringVar(&metricsAddr, "metrics-bind-address", ":8443", "Address of the metrics endpoint; 0 disables it.")
	flag.BoolVar(&metricsSecure, "metrics-secure", true,
		"Serve metrics over HTTPS, to clients the API server authenticates (TokenReview) and authorizes (SubjectAccessReview: get on the non-resource URL /metrics, e.g. the metrics-reader ClusterRole); false serves plain HTTP to anyone who can reach the port.")
	flag.StringVar(&metricsCertDir, "metrics-cert-dir", "",
		"Directory with tls.crt and tls.key for the metrics endpoint (e.g. a cert-manager Certificate's Secret, mounted); empty: a self-signed certificate generated at start.")
	flag.StringVar(&probeAddr, "health-probe-bind-address", ":8081", "Address of the health and readiness probes; 0 disables them.")
	flag.StringVar(&pprofAddr, "pprof-bind-address", "", "Address of the net/http/pprof endpoints (/debug/pprof/), e.g. 127.0.0.1:6060; empty or 0 disables them. Never expose it beyond the pod.")
	flag.DurationVar(&checkInterval, "verification-interval", controllers.DefaultVerificationInterval,
		"How often each NomadConnection is checked and its tokens verified against NOMAD's list of active PATs (one list call per connection); also how often a NomadToken's restart targets are read again for their opt-in.")
	flag.DurationVar(&userErrorRetry, "user-error-retry", controllers.DefaultUserErrorRetry,
		"How long to wait before asking NOMAD again after an error only a person can fix.")
	flag.DurationVar(&syncPeriod, "sync-period", 10*time.Hour,
		"How often every object is reconciled again even without changes (a Ready token costs nothing then).")
	flag.DurationVar(&lastUsed, "last-used-granularity", controllers.DefaultLastUsedGranularity,
		"Precision of status.lastUsedAt: a PAT in constant use costs one status write per this period.")
	flag.StringVar(&orphanSweep, "orphan-sweep", string(controllers.SweepDryRun),
		"What each connection check does with active PATs of its bot account that carry this operator's marker but belong to no NomadToken: dry-run (list them in the connection's status.orphanedPATs), revoke, or off.")
	flag.StringVar(&clusterNS, "cluster-resource-namespace", "",
		"Namespace of the credentials and CA Secrets of every ClusterNomadConnection (default: the namespace the operator runs in, from $POD_NAMESPACE or the service account; nomad-operator-system outside a pod).")
	flag.IntVar(&patLimit, "nomad-pat-limit", controllers.DefaultPATLimit,
		"NOMAD's cap on a user's active PATs (NOMAD's default is 100); connections report NearPATLimit against it.")
	flag.Float64Var(&patWarning, "pat-limit-warning-ratio", controllers.DefaultPATLimitWarning,
		"Share of --nomad-pat-limit at which a connection's NearPATLimit condition turns True (0 < ratio <= 1).")
	flag.StringVar(&watchNamespaces, "watch-namespaces", "",
		"Comma-separated namespaces the operator is confined to (install with config/namespaced, which grants a Role in each); empty: the whole cluster. Confined, ClusterNomadConnections are not served.")
	flag.StringVar(&allowedURLs, "allowed-nomad-urls", "",
		"Comma-separated addresses a namespaced NomadConnection's spec.url and OIDC issuer URL may name: URL prefixes (https://nomad.example.org/nomad-oasis: that scheme, host and port, that path or below) or hosts (nomad.example.org, nomad.example.org:8443: any path, http or https, that port or the scheme's default); others get Ready=False, reason URLNotAllowed, and are never called. Empty: any address. ClusterNomadConnections are not restricted.")
	flag.DurationVar(&stallTimeout, "liveness-stall-timeout", DefaultStallTimeout,
		"/healthz fails when reconciles are running but none has finished for this long (a wedged manager, which the kubelet then restarts); 0: /healthz only answers.")
	var conc concurrency
	conc.bind(flag.CommandLine)
	var election leaderElection
	election.bind(flag.CommandLine)
	clockOffset := bindTestingClock(flag.CommandLine)
	opts := zap.Options{}
	opts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&opts)))
	log := ctrl.Log.WithName("setup")
	if limit, err := goMemoryLimit(os.Getenv); err != nil {
		log.Error(err, "no Go memory limit set")
	} else if limit > 0 {
		debug.SetMemoryLimit(limit)
		log.Info("Go memory limit set to 90% of the container's", "bytes", limit)
	}
	switch controllers.SweepMode(orphanSweep) {
	case controllers.SweepDryRun, controllers.SweepRevoke, controllers.SweepOff:
	default:
		log.Error(nil, "--orphan-sweep must be dry-run, revoke or off", "value", orphanSweep)
		os.Exit(2)
	}
	namespaces, err := parseWatchNamespaces(watchNamespaces)
	if err != nil {
		log.Error(err, "--watch-namespaces must be a comma-separated list of namespace names", "value", watchNamespaces)
		os.Exit(2)
	}
	allowed, err := connection.ParseURLAllowlist(allowedURLs)
	if err != nil {
		log.Error(err, "--allowed-nomad-urls must be a comma-separated list of URL prefixes or hosts", "value", allowedURLs)
		os.Exit(2)
	}
	if patLimit < 1 || patWarning <= 0 || patWarning > 1 {
		log.Error(nil, "--nomad-pat-limit must be at least 1 and --pat-limit-warning-ratio in (0, 1]", "limit", patLimit, "ratio", patWarning)
		os.Exit(2)
	}
	if err := conc.validate(); err != nil {
		log.Error(err, "invalid concurrency flags")
		os.Exit(2)
	}
	if err := validateStallTimeout(stallTimeout, conc.requestTimeout); err != nil {
		log.Error(err, "invalid liveness flag")
		os.Exit(2)
	}
	if err := clockOffset.validate(); err != nil {
		log.Error(err, "invalid testing flag")
		os.Exit(2)
	}
	if *clockOffset != 0 {
		log.Info("TESTING ONLY: the operator's clock runs ahead of real time; PATs are renewed early", "offset", time.Duration(*clockOffset).String())
	}
	for _, w := range conc.warnings() {
		log.Info("concurrency flags defeat their purpose", "warning", w)
	}
	// The Lease and ClusterNomadConnections' Secrets default to the same namespace: the operator's.
	operatorNS := operatorNamespace()
	if clusterNS == "" {
		clusterNS = operatorNS
	}
	settings := controllers.Settings{
		VerificationInterval: checkInterval, UserErrorRetry: userErrorRetry, LastUsedGranularity: lastUsed,
		OrphanSweep: controllers.SweepMode(orphanSweep), WatchNamespaces: namespaces,
		ClusterResourceNamespace: clusterNS, PATLimit: patLimit, PATLimitWarning: patWarning,
		AllowedNomadURLs: allowed,
	}
	conc.settings(&settings)
	settings.Clock = clockOffset.clock()
	watchdog := newProgressWatchdog(clock.RealClock{}, stallTimeout)
	if stallTimeout > 0 {
		settings.Progress = watchdog
	}
	if len(namespaces) > 0 {
		log.Info("confined to namespaces", "namespaces", namespaces)
	}
	if allowed != nil {
		log.Info("namespaced NomadConnections may call only these addresses", "allowedNomadURLs", allowed.String())
	}

	scheme := runtime.NewScheme()
	must(clientgoscheme.AddToScheme(scheme))
	must(v1alpha1.AddToScheme(scheme))

	restCfg := ctrl.GetConfigOrDie()
	conc.applyTo(restCfg)
	mgrOpts := ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsOptions(metricsAddr, metricsSecure, metricsCertDir),
		HealthProbeBindAddress: probeAddr,
		PprofBindAddress:       pprofAddr,
		Cache:                  controllers.CacheOptions(syncPeriod, settings.WatchNamespaces),
	}
	election.applyTo(&mgrOpts, operatorNS)
	mgr, err := ctrl.NewManager(restCfg, mgrOpts)
	if err != nil {
		log.Error(err, "cannot create the manager")
		os.Exit(1)
	}
	if err := controllers.Setup(mgr, settings); err != nil {
		log.Error(err, "cannot set up the controllers")
		os.Exit(1)
	}
	addProbes(mgr, watchdog, stallTimeout > 0)
	log.Info("starting manager")
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		log.Error(err, "manager stopped with an error")
		os.Exit(1)
	}
}

// operatorNamespace is the namespace the manager runs in: $POD_NAMESPACE (the Deployment sets it
// from the downward API), else the service account's, else the default install namespace (a manager
// run outside a pod, as in development).
func operatorNamespace() string {
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		return ns
	}
	if b, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace"); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b))
	}
	return "nomad-operator-system"
}

func must(err error) {
	if err != nil {
		ctrl.Log.Error(err, "setup failed")
		os.Exit(1)
	}
}
