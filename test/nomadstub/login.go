package nomadstub

import (
	"mime"
	"net/http"
	"strings"
)

// maxFormBytes bounds what the stand-in reads from a login form.
const maxFormBytes = 1 << 20

// handleLogin is POST {base}/v1/auth/token: OAuth2PasswordRequestFormStrict, then NOMAD's
// server-side Keycloak password grant (nomad-pat-api.md §9, V-B/C shape).
func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request, _ string) {
	form := readForm(r)
	var errs []validationError
	grant, ok := form["grant_type"]
	switch {
	case !ok:
		errs = append(errs, missingField(loc("body", "grant_type"), nil))
	case grant != "password":
		errs = append(errs, validationError{
			Type: "string_pattern_mismatch", Loc: loc("body", "grant_type"),
			Msg: "String should match pattern '^password$'", Input: grant,
			Ctx: map[string]any{"pattern": "^password$"},
		})
	}
	username, ok := form["username"]
	if !ok {
		errs = append(errs, missingField(loc("body", "username"), nil))
	}
	password, ok := form["password"]
	if !ok {
		errs = append(errs, missingField(loc("body", "password"), nil))
	}
	if len(errs) > 0 {
		writeValidation(w, errs)
		return
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	// NOMAD runs Keycloak's direct access grant with its own client: Keycloak's 401 becomes
	// NOMAD's 401, any other refusal (a 400) NOMAD's catch-all 500.
	u, kerr := s.checkPassword(s.nomadClient(), username, password)
	s.countLogin(username, kerr == nil)
	switch {
	case kerr == nil:
	case kerr.status == http.StatusUnauthorized:
		writeUnauthorized(w, detailBadLogin, "Basic")
		return
	default:
		writeKeycloakFailure(w, kerr)
		return
	}
	tok, ttl := s.issueAccessToken(u.id)
	// RFC 6749 §5.1 headers, which V-B/C add.
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, oidcToken{
		AccessToken: tok,
		TokenType:   "Bearer",
		ExpiresIn:   int(ttl.Seconds()),
		Scope:       "openid profile email",
	})
}

// oidcToken is NOMAD's OIDCToken. NOMAD has no refresh endpoint, so the stand-in hands out no
// refresh or id token: a client must re-run the password grant.
type oidcToken struct {
	AccessToken      string  `json:"access_token"`
	TokenType        string  `json:"token_type"`
	ExpiresIn        int     `json:"expires_in"`
	RefreshToken     *string `json:"refresh_token"`
	Scope            string  `json:"scope"`
	IDToken          *string `json:"id_token"`
	RefreshExpiresIn *int    `json:"refresh_expires_in"`
}

// readForm returns the last value of each non-empty form field, as Starlette's FormData.get and
// FastAPI's "empty form value = missing" rule give. Only form encodings count: a JSON body yields
// no fields at all (hence 422, not a JSON login).
func readForm(r *http.Request) map[string]string {
	out := map[string]string{}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	r.Body = http.MaxBytesReader(nil, r.Body, maxFormBytes)
	var values map[string][]string
	switch strings.ToLower(mt) {
	case "application/x-www-form-urlencoded":
		if err := r.ParseForm(); err == nil {
			values = r.PostForm
		}
	case "multipart/form-data":
		if err := r.ParseMultipartForm(maxFormBytes); err == nil && r.MultipartForm != nil {
			values = r.MultipartForm.Value
		}
	}
	for k, vs := range values {
		if len(vs) > 0 && vs[len(vs)-1] != "" {
			out[k] = vs[len(vs)-1]
		}
	}
	return out
}
