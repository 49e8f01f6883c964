package nomadstub

import (
	"net/http"
)

// handleOpenAPI serves a minimal {base}/v1/openapi.json so a client can detect the PAT prefix.
//
// Path keys are relative to the v1 FastAPI app, exactly as NOMAD lists them: that app is created
// with root_path={base}/v1 and the auth router is included with prefix "/auth", so its document
// has "/auth/token", "/auth/pats", "/auth/pats/{pat_id}" and "/auth/pats/{pat_id}/rotate", and
// `servers` carries the root path. A deployment serving the documented form would list "/pats",
// "/pats/{pat_id}" and "/pats/{pat_id}/rotate". Only the prefixes currently enabled are listed.
func (s *Server) handleOpenAPI(w http.ResponseWriter, _ *http.Request, _ string) {
	s.mu.Lock()
	pats, authPats := s.servePats, s.serveAuthPats
	s.mu.Unlock()

	op := func(id, summary, tag string) map[string]any {
		return map[string]any{"tags": []string{tag}, "summary": summary, "operationId": id}
	}
	const patTag = "Personal Access Token (PAT) Endpoints"
	paths := map[string]any{
		"/auth/token": map[string]any{"post": op("get_token_auth_token_post", "Get an OIDC token response", "OpenID Connect Token Endpoints")},
	}
	for _, p := range enabledPrefixes(pats, authPats) {
		suffix := "_pats"
		if p == authPatsPrefix {
			suffix = "_auth_pats"
		}
		paths[p] = map[string]any{
			"post": op("create_pat_endpoint"+suffix+"_post", "Create a personal access token", patTag),
			"get":  op("list_pat_endpoint"+suffix+"_get", "List personal access tokens", patTag),
		}
		paths[p+"/{pat_id}"] = map[string]any{
			"get":    op("get_pat_endpoint"+suffix+"__pat_id__get", "Retrieve metadata for a personal access token", patTag),
			"delete": op("revoke_pat_endpoint"+suffix+"__pat_id__delete", "Revoke a personal access token", patTag),
		}
		paths[p+"/{pat_id}/rotate"] = map[string]any{
			"post": op("rotate_pat_endpoint"+suffix+"__pat_id__rotate_post", "Rotate a personal access token", patTag),
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"openapi": "3.1.0",
		"info":    map[string]any{"title": "NOMAD API", "version": "v1, NOMAD stand-in (nomadstub)"},
		"servers": []map[string]string{{"url": s.base + "/v1"}},
		"paths":   paths,
	})
}
