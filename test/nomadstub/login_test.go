package nomadstub

import (
	"bytes"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestLoginIssuesBearerToken(t *testing.T) {
	h := newHarness(t)
	r := h.postForm(url.Values{"grant_type": {"password"}, "username": {botUser}, "password": {botPass}, "client_id": {"ignored"}})
	expectStatus(t, r, http.StatusOK)
	if got := r.header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q", got)
	}
	if got := r.header.Get("Pragma"); got != "no-cache" {
		t.Errorf("Pragma = %q", got)
	}
	m := r.json(t)
	tok, _ := m["access_token"].(string)
	if tok == "" || strings.HasPrefix(tok, patPrefix) {
		t.Errorf("access_token = %q: want an opaque non-PAT bearer", tok)
	}
	if m["token_type"] != "Bearer" || m["expires_in"] != float64(300) {
		t.Errorf("token_type/expires_in = %v/%v", m["token_type"], m["expires_in"])
	}
	for _, k := range []string{"refresh_token", "scope", "id_token", "refresh_expires_in"} {
		if _, ok := m[k]; !ok {
			t.Errorf("key %q missing from the V-B/C token response", k)
		}
	}
	if h.login(botUser, botPass) == tok {
		t.Error("two logins returned the same access token")
	}
}

func TestLoginExpiresInFollowsTTL(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.AccessTokenTTL = 90 * time.Second })
	r := h.postForm(url.Values{"grant_type": {"password"}, "username": {botUser}, "password": {botPass}})
	if got := r.json(t)["expires_in"]; got != float64(90) {
		t.Fatalf("expires_in = %v, want 90", got)
	}
}

func TestLoginAcceptsMultipartForm(t *testing.T) {
	h := newHarness(t)
	expectStatus(t, h.multipartLogin(), http.StatusOK)
}

// multipartLogin logs the bot in with a multipart form, as some clients send it.
func (h *harness) multipartLogin() response {
	h.t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for k, v := range map[string]string{"grant_type": "password", "username": botUser, "password": botPass} {
		_ = mw.WriteField(k, v)
	}
	_ = mw.Close()
	return h.do(http.MethodPost, h.v1("/auth/token"), "", nil, func(req *http.Request) {
		req.Body = nopCloser{bytes.NewReader(buf.Bytes())}
		req.ContentLength = int64(buf.Len())
		req.Header.Set("Content-Type", mw.FormDataContentType())
	})
}

func TestLoginRejections(t *testing.T) {
	missing := func(field string) map[string]any {
		return map[string]any{"type": "missing", "loc": []any{"body", field}, "msg": "Field required", "input": nil}
	}
	tests := []struct {
		name       string
		form       url.Values
		json       string // sent instead of the form when set
		wantStatus int
		wantDetail string           // for 401
		wantErrs   []map[string]any // for 422, compared on type/loc/msg/input
	}{
		{
			name:       "wrong password",
			form:       url.Values{"grant_type": {"password"}, "username": {botUser}, "password": {"nope"}},
			wantStatus: 401, wantDetail: "Incorrect username or password",
		},
		{
			name:       "unknown user",
			form:       url.Values{"grant_type": {"password"}, "username": {"ghost"}, "password": {botPass}},
			wantStatus: 401, wantDetail: "Incorrect username or password",
		},
		{
			name:       "grant_type missing",
			form:       url.Values{"username": {botUser}, "password": {botPass}},
			wantStatus: 422, wantErrs: []map[string]any{missing("grant_type")},
		},
		{
			name:       "grant_type refresh_token",
			form:       url.Values{"grant_type": {"refresh_token"}, "username": {botUser}, "password": {botPass}},
			wantStatus: 422,
			wantErrs: []map[string]any{{"type": "string_pattern_mismatch", "loc": []any{"body", "grant_type"},
				"msg": "String should match pattern '^password$'", "input": "refresh_token"}},
		},
		{
			name:       "empty values count as missing",
			form:       url.Values{"grant_type": {"password"}, "username": {""}, "password": {""}},
			wantStatus: 422, wantErrs: []map[string]any{missing("username"), missing("password")},
		},
		{
			name:       "JSON body is not a form",
			json:       `{"grant_type":"password","username":"bot","password":"bot-password"}`,
			wantStatus: 422, wantErrs: []map[string]any{missing("grant_type"), missing("username"), missing("password")},
		},
		{
			name:       "bad form and bad credentials: 422 wins",
			form:       url.Values{"username": {"ghost"}, "password": {"x"}},
			wantStatus: 422, wantErrs: []map[string]any{missing("grant_type")},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			var r response
			if tc.json != "" {
				r = h.do(http.MethodPost, h.v1("/auth/token"), "", tc.json)
			} else {
				r = h.postForm(tc.form)
			}
			expectStatus(t, r, tc.wantStatus)
			if tc.wantStatus == 401 {
				expectDetail(t, r, 401, tc.wantDetail)
				if got := r.header.Get("WWW-Authenticate"); got != "Basic" {
					t.Errorf("WWW-Authenticate = %q, want Basic", got)
				}
				return
			}
			expectValidation(t, r, tc.wantErrs)
		})
	}
}

// expectValidation compares a 422 list on type, loc, msg and input.
func expectValidation(t *testing.T, r response, want []map[string]any) {
	t.Helper()
	expectStatus(t, r, http.StatusUnprocessableEntity)
	got := r.validation(t)
	if len(got) != len(want) {
		t.Fatalf("got %d errors, want %d: %s", len(got), len(want), r.body)
	}
	for i := range want {
		for _, k := range []string{"type", "loc", "msg", "input"} {
			w, ok := want[i][k]
			if !ok {
				continue
			}
			if !jsonEqual(got[i][k], w) {
				t.Errorf("error %d %s = %#v, want %#v", i, k, got[i][k], w)
			}
		}
	}
}

func TestLoginGetIsNotAllowed(t *testing.T) {
	h := newHarness(t)
	r := h.do(http.MethodGet, h.v1("/auth/token?username=bot&password=bot-password"), "", nil)
	expectDetail(t, r, http.StatusMethodNotAllowed, "Method Not Allowed")
}

func TestAccessTokenExpiresAfterTTL(t *testing.T) {
	h := newHarness(t)
	tok := h.botToken()
	list := func() response { return h.do(http.MethodGet, h.v1("/pats"), tok, nil) }
	expectStatus(t, list(), http.StatusOK)

	h.clk.Step(299 * time.Second)
	expectStatus(t, list(), http.StatusOK)

	h.clk.Step(time.Second) // exp reached: PyJWT rejects at exp
	r := list()
	expectDetail(t, r, http.StatusUnauthorized, "Could not validate credentials. The given token is invalid.")
	if got := r.header.Get("WWW-Authenticate"); got != "Bearer" {
		t.Errorf("WWW-Authenticate = %q, want Bearer", got)
	}
	expectStatus(t, h.do(http.MethodGet, h.v1("/pats"), h.botToken(), nil), http.StatusOK)
}

func TestExpireAccessTokensForcesReLogin(t *testing.T) {
	h := newHarness(t)
	old := h.botToken()
	h.srv.ExpireAccessTokens()
	expectDetail(t, h.do(http.MethodGet, h.v1("/pats"), old, nil), http.StatusUnauthorized,
		"Could not validate credentials. The given token is invalid.")
	expectStatus(t, h.do(http.MethodGet, h.v1("/pats"), h.botToken(), nil), http.StatusOK)
}

func TestAddUserTwiceKeepsIDAndChangesPassword(t *testing.T) {
	h := newHarness(t)
	id1 := h.srv.AddUser("alice", "a1")
	id2 := h.srv.AddUser("alice", "a2")
	if id1 != id2 || len(id1) != 36 {
		t.Fatalf("ids %q, %q: want one stable UUID", id1, id2)
	}
	expectStatus(t, h.postForm(url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"a1"}}), http.StatusUnauthorized)
	h.login("alice", "a2")
}

func TestSetPasswordChangesAnExistingAccountOnly(t *testing.T) {
	h := newHarness(t)
	before := h.botToken()
	if !h.srv.SetPassword(botUser, "new-password") {
		t.Fatal("SetPassword of an existing user reports false")
	}
	expectStatus(t, h.postForm(url.Values{"grant_type": {"password"}, "username": {botUser}, "password": {botPass}}), http.StatusUnauthorized)
	h.login(botUser, "new-password")
	// As in Keycloak, an access token issued before the change stays valid until it expires.
	expectStatus(t, h.do(http.MethodGet, h.v1("/pats"), before, nil), http.StatusOK)

	if h.srv.SetPassword("nobody", "pw") {
		t.Fatal("SetPassword of an unknown user reports true")
	}
	expectStatus(t, h.postForm(url.Values{"grant_type": {"password"}, "username": {"nobody"}, "password": {"pw"}}), http.StatusUnauthorized)
}

func TestLoginsAreCountedPerUsername(t *testing.T) {
	h := newHarness(t)
	h.srv.ResetCalls()
	h.srv.AddUser("alice", "a1")
	h.login("alice", "a1")
	h.login("alice", "a1")
	expectStatus(t, h.postForm(url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"wrong"}}), http.StatusUnauthorized)
	expectStatus(t, h.postForm(url.Values{"grant_type": {"password"}, "username": {"mallory"}, "password": {"x"}}), http.StatusUnauthorized)
	// A form without a password never reaches the check.
	expectStatus(t, h.postForm(url.Values{"grant_type": {"password"}, "username": {"alice"}}), http.StatusUnprocessableEntity)
	// Nor does a login answered by an injected fault.
	h.srv.InjectFault(OpLogin, 1, Fault{Status: http.StatusServiceUnavailable})
	expectStatus(t, h.postForm(url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"a1"}}), http.StatusServiceUnavailable)

	if got := h.srv.Logins("alice"); got != (LoginCount{Attempts: 3, Succeeded: 2}) {
		t.Errorf("alice: %+v, want 3 attempts, 2 passed", got)
	}
	if got := h.srv.Logins("mallory"); got != (LoginCount{Attempts: 1}) {
		t.Errorf("an unknown username: %+v, want 1 attempt, none passed", got)
	}
	if got := h.srv.Logins(botUser); got != (LoginCount{}) {
		t.Errorf("%s: %+v, want none", botUser, got)
	}
	h.srv.ResetCalls()
	if got := h.srv.Logins("alice"); got != (LoginCount{}) {
		t.Errorf("after ResetCalls: %+v, want none", got)
	}
}
