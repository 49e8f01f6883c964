package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
)

// probeID is a well-formed PAT id that names no PAT; the probe never reaches the lookup.
const probeID = "000000000000000000000000"

// ProbeResult is NOMAD's answer to the PAT validity probe.
type ProbeResult struct {
	Status int
	Detail string
}

// Valid means NOMAD authenticated the PAT and then refused it the tokens:read scope no PAT can hold.
func (r ProbeResult) Valid() bool {
	return r.Status == http.StatusForbidden && strings.HasPrefix(r.Detail, "Missing scopes")
}

// Invalid means NOMAD treated the PAT as no credential at all: unknown, revoked or expired.
func (r ProbeResult) Invalid() bool { return r.Status == http.StatusUnauthorized }

func (r ProbeResult) String() string { return fmt.Sprintf("%d %q", r.Status, r.Detail) }

// PATPrefix is the PAT route prefix under {api}/v1 for a NomadConnection's status.patPath.
func PATPrefix(mode v1alpha1.PATPathMode) (string, error) {
	switch mode {
	case v1alpha1.PATPathPats:
		return "/v1/pats", nil
	case v1alpha1.PATPathAuthPats:
		return "/v1/auth/pats", nil
	}
	return "", fmt.Errorf("PAT path %q is not a concrete prefix", mode)
}

// ProbePAT asks NOMAD's own API whether raw is a valid PAT, the way nomad-pat-api.md §2 describes:
// GET {api}/v1/{pats}/<id> with the PAT as bearer answers 403 "Missing scopes" for a valid PAT
// and 401 for an invalid one. apiURL is the API root, as in NomadConnection.spec.url.
func ProbePAT(ctx context.Context, apiURL string, mode v1alpha1.PATPathMode, raw []byte) (ProbeResult, error) {
	prefix, err := PATPrefix(mode)
	if err != nil {
		return ProbeResult{}, err
	}
	root := strings.TrimSuffix(strings.TrimRight(apiURL, "/"), "/v1")
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, root+prefix+"/"+probeID, nil)
	if err != nil {
		return ProbeResult{}, err
	}
	req.Header.Set("Authorization", "Bearer "+string(raw))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return ProbeResult{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return ProbeResult{}, err
	}
	var d struct {
		Detail any `json:"detail"`
	}
	res := ProbeResult{Status: resp.StatusCode}
	if json.Unmarshal(body, &d) == nil {
		if s, ok := d.Detail.(string); ok {
			res.Detail = s
		} else if d.Detail != nil {
			res.Detail = fmt.Sprint(d.Detail)
		}
	}
	res.Detail = Redact(res.Detail)
	return res, nil
}
