package metrics

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/nomad-operator/nomad-token-operator/internal/nomad"
)

// Operations of nomadconnection_requests_total: what the client was doing, named by the client
// itself (no URL is parsed). "openapi" is the anonymous read of openapi.json that detects the PAT
// path; "other" is the 404 probe of a PAT path when openapi.json does not tell.
var Operations = []string{"login", "create", "list", "get", "revoke", "rotate", "openapi", "other"}

var (
	requestsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "nomadconnection_requests_total",
		Help: "HTTP requests sent to NOMAD by a connection's client, by operation and HTTP status class (error: no answer arrived). Requests the connection's circuit breaker, in-flight limit or rate limit held back were never sent and are not counted.",
	}, append(append([]string{}, connectionLabels...), "operation", "code_class"))

	requestDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "nomadconnection_request_duration_seconds",
		Help: "Time from sending a request to NOMAD to having read its whole answer (or given up), by operation. Waits for the connection's rate limit or a free request slot are not included.",
		// NOMAD answers PAT calls in tens of milliseconds; a login through Keycloak or a slow list
		// takes longer, and the default request timeout is 30 s.
		Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
	}, append(append([]string{}, connectionLabels...), "operation"))

	loginsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "nomadconnection_logins_total",
		Help: "Access tokens a connection's client obtained: from NOMAD's /auth/token (method Password) or the realm's token endpoint (successful sign-ins; failed ones are nomadconnection_requests_total{operation=\"login\",code_class!=\"2xx\"}).",
	}, connectionLabels)

	lastSignIn = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "nomadconnection_last_signin_timestamp_seconds",
		Help: "When the connection last signed in successfully (Unix seconds). Absent until this process signed in once.",
	}, connectionLabels)

	refreshTokenExpiry = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "nomadconnection_refresh_token_expiration_timestamp_seconds",
		Help: "When the connection's refresh token or offline session ends unless used again (Unix seconds), as Keycloak said at the last sign-in. Absent where Keycloak does not say (most offline tokens) and for other methods.",
	}, connectionLabels)
)

func init() {
	crmetrics.Registry.MustRegister(requestsTotal, requestDuration, loginsTotal, lastSignIn, refreshTokenExpiry)
}

// RequestObserver counts the requests and logins of one connection's NOMAD client; it implements
// nomad.Observer. The connection's labels are fixed when the client is built, so a request can
// only ever be counted for the connection whose client sent it.
type RequestObserver struct {
	conn Connection
}

// ObserverFor returns the observer of conn's client. It also starts conn's logins and PAT counters
// at 0, so that they exist (and increase() sees their first event) before anything happened: an
// alert on nomadtoken_pats_revoke_abandoned_total needs the series to be there.
func ObserverFor(conn Connection) *RequestObserver {
	l := conn.labels()
	for _, v := range []*prometheus.CounterVec{loginsTotal, patsIssued, patsRotated, patsRevoked, patsAbandoned} {
		v.WithLabelValues(l...)
	}
	return &RequestObserver{conn: conn}
}

// Request counts one exchange: status is the HTTP status, 0 when no answer arrived.
func (o *RequestObserver) Request(operation string, status int, took time.Duration) {
	l := o.conn.labels()
	requestsTotal.WithLabelValues(append(l, operation, codeClass(status))...).Inc()
	requestDuration.WithLabelValues(append(l, operation)...).Observe(took.Seconds())
}

// SignedIn counts one access token obtained and records when, and when the refresh token ends.
func (o *RequestObserver) SignedIn(s nomad.SignIn) {
	l := o.conn.labels()
	loginsTotal.WithLabelValues(l...).Inc()
	if !s.At.IsZero() {
		lastSignIn.WithLabelValues(l...).Set(float64(s.At.Unix()))
	}
	if s.RefreshTokenExpiresAt.IsZero() {
		refreshTokenExpiry.DeleteLabelValues(l...)
		return
	}
	refreshTokenExpiry.WithLabelValues(l...).Set(float64(s.RefreshTokenExpiresAt.Unix()))
}

// codeClass is 2xx..5xx, or "error" when there was no answer (or one outside 100..599).
func codeClass(status int) string {
	if status < 100 || status > 599 {
		return "error"
	}
	return strconv.Itoa(status/100) + "xx"
}

// ForgetConnection drops every series of a deleted connection: its requests, logins and PAT
// counters. A connection created again under the same name starts from zero, which Prometheus's
// rate() and increase() read as a counter reset. The one exception is an abandoned-PAT counter that
// counted something (abandonedBy): those PATs are still active, and the alert on the counter must
// see it after a namespace deletion took the connection away.
func ForgetConnection(conn Connection) {
	m := prometheus.Labels{"kind": conn.Kind, "namespace": conn.Namespace, "name": conn.Name}
	vecs := []interface {
		DeletePartialMatch(prometheus.Labels) int
	}{requestsTotal, requestDuration.MetricVec, loginsTotal, lastSignIn, refreshTokenExpiry, patsIssued, patsRotated, patsRevoked}
	if _, kept := abandonedBy.Load(conn); !kept {
		vecs = append(vecs, patsAbandoned)
	}
	for _, v := range vecs {
		v.DeletePartialMatch(m)
	}
}
