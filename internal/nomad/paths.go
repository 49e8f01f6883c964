package nomad

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
)

// prefix is where each PATPath's routes live below the API root.
func (p PATPath) prefix() string {
	if p == PATPathAuthPats {
		return "/v1/auth/pats"
	}
	return "/v1/pats"
}

// pathResolver remembers the PAT path. For Auto it is detected on first use and forgotten when a
// PAT route answers the framework's 404, so that a NOMAD upgrade that moves the routes heals itself.
type pathResolver struct {
	mode PATPath
	// sem serialises detection (one at a time, the others then find the result) while letting a
	// waiting caller give up with its context, which a sync.Mutex would not.
	sem chan struct{}

	mu       sync.Mutex
	resolved PATPath
}

func newPathResolver(mode PATPath) *pathResolver {
	p := &pathResolver{mode: mode, sem: make(chan struct{}, 1)}
	if mode != PATPathAuto {
		p.resolved = mode
	}
	return p
}

func (p *pathResolver) get() PATPath {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.resolved
}

func (p *pathResolver) set(v PATPath) {
	p.mu.Lock()
	p.resolved = v
	p.mu.Unlock()
}

// forget drops a detected path that turned out wrong; it is a no-op for a configured path and when
// another caller already re-detected.
func (p *pathResolver) forget(wrong PATPath) {
	p.mu.Lock()
	if p.mode == PATPathAuto && p.resolved == wrong {
		p.resolved = ""
	}
	p.mu.Unlock()
}

// ResolvedPATPath is the PAT path in use: the configured one, or the detected one for Auto, or ""
// while Auto has not detected anything yet.
func (c *HTTPClient) ResolvedPATPath() PATPath { return c.paths.get() }

// patPath returns the PAT path, detecting it first if needed.
func (c *HTTPClient) patPath(ctx context.Context) (PATPath, error) {
	if p := c.paths.get(); p != "" {
		return p, nil
	}
	select {
	case c.paths.sem <- struct{}{}:
	case <-ctx.Done():
		return "", c.transportError(ctx, opDetect, ctx.Err())
	}
	defer func() { <-c.paths.sem }()
	if p := c.paths.get(); p != "" { // detected by whoever held sem before us
		return p, nil
	}
	p, how, err := c.detectPATPath(ctx)
	if err != nil {
		return "", err
	}
	c.log.Info("detected NOMAD PAT path", "patPath", p, "via", how)
	c.paths.set(p)
	return p, nil
}

// onPATs runs fn against the PAT routes. If they answer the framework's 404 and the path was
// detected rather than configured, the path is detected once more and fn retried if it moved.
// Retrying is safe for every operation: a 404 from routing means NOMAD did nothing.
func (c *HTTPClient) onPATs(ctx context.Context, fn func(prefix string) error) error {
	p, err := c.patPath(ctx)
	if err != nil {
		return err
	}
	err = fn(p.prefix())
	if CodeOf(err) != CodePathNotFound || c.paths.mode != PATPathAuto {
		return err
	}
	c.log.Info("NOMAD PAT path answered 404 Not Found; detecting it again", "patPath", p)
	c.paths.forget(p)
	p2, derr := c.patPath(ctx)
	if derr != nil {
		return derr
	}
	if p2 == p {
		return err
	}
	return fn(p2.prefix())
}

// detectPATPath asks openapi.json first (anonymous, no side effect), then probes each prefix with a
// page_size=0 list, which costs NOMAD a count query and nothing else.
func (c *HTTPClient) detectPATPath(ctx context.Context) (PATPath, string, error) {
	if p := c.pathFromOpenAPI(ctx); p != "" {
		return p, "openapi", nil
	}
	for _, p := range []PATPath{PATPathPats, PATPathAuthPats} {
		err := c.probePATPath(ctx, p)
		switch CodeOf(err) {
		case "":
			return p, "probe", nil
		case CodePathNotFound:
			continue
		default:
			return "", "", err
		}
	}
	return "", "", c.newError(opDetect, CodePathNotFound, http.StatusNotFound,
		"neither "+c.root+"/v1/pats nor "+c.root+"/v1/auth/pats exists; is this a NOMAD API root with personal access tokens?")
}

// probePATPath returns nil when the route exists. A 400 or 422 also proves it exists (routing
// happens before validation); 401 and 403 are returned because no operation could succeed anyway.
func (c *HTTPClient) probePATPath(ctx context.Context, p PATPath) error {
	_, err := c.call(ctx, request{
		op:     opDetect,
		method: http.MethodGet,
		path:   p.prefix(),
		query:  url.Values{"page_size": {"0"}},
	})
	switch CodeOf(err) {
	case CodeBadRequest:
		return nil
	case CodePathNotFound:
		c.log.V(1).Info("NOMAD PAT path probe answered 404 Not Found", "patPath", p)
	}
	return err
}

// openAPIPath is NOMAD's OpenAPI document, below the API root.
const openAPIPath = "/v1/openapi.json"

// pathFromOpenAPI returns the PAT path listed in {root}/v1/openapi.json, or "" when the document is
// unavailable, unreadable or lists neither. The documented /pats wins when both are listed.
func (c *HTTPClient) pathFromOpenAPI(ctx context.Context) PATPath {
	rep, err := c.roundTrip(ctx, request{op: opDetect, method: http.MethodGet, path: openAPIPath})
	if err != nil || !rep.ok() {
		c.log.V(1).Info("NOMAD openapi.json unavailable; probing the PAT path instead")
		return ""
	}
	var doc struct {
		Paths map[string]json.RawMessage `json:"paths"`
	}
	if json.Unmarshal(rep.body, &doc) != nil {
		return ""
	}
	var pats, authPats bool
	for k := range doc.Paths {
		// The sub-application's own paths are relative to /api/v1; tolerate a document generated
		// with a prefix such as /v1, /api/v1 or /nomad-oasis/api/v1 included.
		if i := strings.Index(k, "/v1/"); i >= 0 {
			k = k[i+len("/v1"):]
		}
		switch k {
		case "/pats":
			pats = true
		case "/auth/pats":
			authPats = true
		}
	}
	switch {
	case pats:
		return PATPathPats
	case authPats:
		return PATPathAuthPats
	}
	return ""
}
