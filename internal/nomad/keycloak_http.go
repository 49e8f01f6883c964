package nomad

import (
	"context"
	"io"
	"net/http"
	"sync"
	"time"

	"golang.org/x/oauth2"
)

// Requests to the realm (discovery and the token endpoint) are not NOMAD requests: they go to
// Keycloak, often another host, so they neither wait for NOMAD's rate limiter nor take the guard's
// slots, and their failures do not open NOMAD's circuit breaker. They do use the connection's own
// transport (its CA bundle, its proxy) and never follow redirects, and the Observer sees each as a
// "login" request, so that request metrics still show sign-ins.

// keycloakExchange records the answer of one exchange with the realm, so that a failed grant can
// be classified by status without parsing oauth2's error strings.
type keycloakExchange struct {
	status int // 0 until an answer arrived
	header http.Header
}

// keycloakContext returns ctx bounded by RequestTimeout and carrying, for oauth2, an *http.Client
// that records the exchange's answer in rec. Call cancel once the exchange is over.
func (c *HTTPClient) keycloakContext(ctx context.Context, rec *keycloakExchange) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	return context.WithValue(ctx, oauth2.HTTPClient, c.keycloakHTTPClient(rec)), cancel
}

// keycloakHTTPClient is the connection's own *http.Client (transport, redirect policy, timeout),
// recording the answer in rec and reporting it to the Observer.
func (c *HTTPClient) keycloakHTTPClient(rec *keycloakExchange) *http.Client {
	base := c.hc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	return &http.Client{
		Transport:     &keycloakTransport{c: c, base: base, rec: rec},
		CheckRedirect: c.hc.CheckRedirect,
		Jar:           c.hc.Jar,
		Timeout:       c.hc.Timeout,
	}
}

// keycloakTransport sends a request to the realm with the client's User-Agent, records its
// answer and reports it to the Observer once the body is read and closed.
type keycloakTransport struct {
	c    *HTTPClient
	base http.RoundTripper
	rec  *keycloakExchange
}

func (t *keycloakTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context()) // a RoundTripper must not change the caller's request
	req.Header.Set("User-Agent", t.c.userAgent)
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", "application/json")
	}
	start := t.c.latency.Now()
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		t.report(0, start)
		return nil, err
	}
	t.rec.status, t.rec.header = resp.StatusCode, resp.Header
	resp.Body = &reportingBody{ReadCloser: resp.Body, done: func() { t.report(resp.StatusCode, start) }}
	return resp, nil
}

func (t *keycloakTransport) report(status int, start time.Time) {
	if t.c.observer != nil {
		t.c.observer.Request(opLogin, status, t.c.latency.Since(start))
	}
}

// reportingBody calls done once, when the body is closed: "took" then includes reading the answer,
// as it does for NOMAD requests.
type reportingBody struct {
	io.ReadCloser
	once sync.Once
	done func()
}

func (b *reportingBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.done)
	return err
}
