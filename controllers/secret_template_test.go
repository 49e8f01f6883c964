package controllers

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/internal/nomad"
)

func TestRenderTemplateData(t *testing.T) {
	in := templateInput{token: testRaw, tokenID: "665f1c000000000000000001", apiRoot: testAPIRoot,
		expiresAt: time.Date(2026, 3, 31, 12, 0, 0, 500, time.UTC), scopes: []string{"uploads:read", "uploads:write"}}
	tests := []struct {
		name     string
		template string
		in       templateInput
		want     string
		wantErr  string // a part of the message; "" means it renders
	}{
		{name: "the raw token", template: "{{ .Token }}", want: testRaw},
		{name: "the PAT's id", template: "{{ .TokenID }}", want: "665f1c000000000000000001"},
		{name: "the API root", template: "{{ .URL }}", want: testAPIRoot},
		{name: "expiry in RFC 3339", template: "{{ .ExpiresAt }}", want: "2026-03-31T12:00:00Z"},
		{name: "scopes joined", template: `{{ .Scopes | join "," }}`, want: "uploads:read,uploads:write"},
		{name: "scopes ranged", template: "{{ range .Scopes }}[{{ . }}]{{ end }}", want: "[uploads:read][uploads:write]"},
		{name: "b64enc", template: "{{ .Token | b64enc }}", want: base64.StdEncoding.EncodeToString([]byte(testRaw))},
		{name: "quote", template: `{{ quote "say \"hi\"" }}`, want: `"say \"hi\""`},
		{name: "upper, lower, trim", template: `{{ upper "a" }}{{ lower "B" }}{{ trim "  c  " }}`, want: "Abc"},
		{name: "toJson of the scopes", template: "{{ toJson .Scopes }}", want: `["uploads:read","uploads:write"]`},
		{name: "a curl config", template: `header = "Authorization: Bearer {{ .Token }}"`, want: `header = "Authorization: Bearer ` + testRaw + `"`},
		{name: "a misspelt field", template: "{{ .Tokn }}", wantErr: `map has no entry for key "Tokn"`},
		{name: "no API root known", template: "{{ .URL }}", in: templateInput{token: testRaw}, wantErr: `no entry for key "URL"`},
		{name: "a parse error", template: "{{ .Token ", wantErr: "unclosed action"},
		{name: "an execution error", template: "{{ index .Scopes 5 }}", wantErr: "index out of range"},
		{name: "no environment", template: `{{ env "HOME" }}`, wantErr: `function "env" not defined`},
		{name: "no files", template: `{{ readFile "/etc/passwd" }}`, wantErr: `function "readFile" not defined`},
		{name: "bounded output", template: "{{ range 100000000 }}xxxxxxxx{{ end }}", wantErr: "renders more than 64 KiB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := withTemplate(issuedToken(), map[string]string{"OUT": tt.template})
			use := in
			if tt.in.token != "" {
				use = tt.in
			}
			got, err := renderTemplateData(tok, use)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("renders with error %v", err)
			case tt.wantErr == "" && string(got["OUT"]) != tt.want:
				t.Fatalf("rendered %q, want %q", got["OUT"], tt.want)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("error %v, want one saying %q", err, tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), `spec.secret.template.data["OUT"]`):
				t.Fatalf("error %q does not name the key", err)
			}
		})
	}
}

// TestTemplateErrorsNeverCarryTheRawToken: a parse error quotes the template's text; whatever it
// quotes, the raw token (plain or base64) is cut.
func TestTemplateErrorsNeverCarryTheRawToken(t *testing.T) {
	encoded := base64.StdEncoding.EncodeToString([]byte(testRaw))
	for _, text := range []string{"{{ " + testRaw + " }}", `{{ "` + encoded + `" | nosuch }}`, "{{ " + encoded + " }}"} {
		tok := withTemplate(issuedToken(), map[string]string{"OUT": text})
		_, err := renderTemplateData(tok, templateInput{token: testRaw})
		if err == nil {
			t.Fatalf("%q rendered", text)
		}
		if msg := asTemplateRefusal(err).Error(); strings.Contains(msg, testRaw) || strings.Contains(msg, encoded) {
			t.Fatalf("the raw token reached the message: %s", msg)
		}
	}
}

func TestTemplateKeysNeverOverwriteTheToken(t *testing.T) {
	for _, key := range []string{"token", "token.previous"} {
		tok := withTemplate(issuedToken(), map[string]string{key: "x"})
		tok.Spec.Secret.PreviousKey = "token.previous"
		var te *templateError
		if _, err := renderTemplateData(tok, templateInput{token: testRaw}); !errors.As(err, &te) || te.key != key {
			t.Fatalf("template key %q: %v, want it refused", key, err)
		}
	}
}

func TestTemplateAndPreviousKeyAreNotMaterial(t *testing.T) {
	tok := issuedToken()
	before := materialHash(tok)
	withTemplate(tok, map[string]string{"A": "{{ .Token }}"})
	tok.Spec.Secret.PreviousKey = "token.previous"
	if materialHash(tok) != before {
		t.Fatal("templates and previousKey change the Secret, never the PAT")
	}
}

// TestDecideRefusesABrokenTemplate: the plan is made before any NOMAD call, and a template that does
// not render mints nothing, whatever is owed; revoke-now still revokes.
func TestDecideRefusesABrokenTemplate(t *testing.T) {
	broken := map[string]string{"NOMAD_CLIENT_URL": "{{ .URL }", "FINE": "{{ .Token }}"}
	observe := func(tok *v1alpha1.NomadToken, now time.Time) *observed {
		// The Secret as the operator wrote it before the template broke.
		plain := tok.DeepCopy()
		plain.Spec.Secret.Template = nil
		return &observed{token: tok, secret: secretHolding(plain, []byte(testRaw), currentFacts(tok)), now: now,
			apiRoots: map[string]string{tok.Spec.ConnectionRef.Key(): testAPIRoot}}
	}
	for _, tt := range []struct {
		name       string
		token      func() *v1alpha1.NomadToken
		now        time.Time
		revokeOnly bool
	}{
		{name: "a new token", token: func() *v1alpha1.NomadToken {
			tok := issuedToken()
			tok.Status = v1alpha1.NomadTokenStatus{}
			return withTemplate(tok, broken)
		}, now: issuedAt},
		{name: "a renewal due", token: func() *v1alpha1.NomadToken { return withTemplate(issuedToken(), broken) }, now: issuedAt.AddDate(0, 0, 25)},
		{name: "nothing owed", token: func() *v1alpha1.NomadToken { return withTemplate(issuedToken(), broken) }, now: issuedAt.Add(time.Hour)},
		{name: "revoke-now", token: func() *v1alpha1.NomadToken {
			tok := withTemplate(issuedToken(), broken)
			tok.Annotations = map[string]string{v1alpha1.AnnotationRevokeNow: "leak"}
			return tok
		}, now: issuedAt.Add(time.Hour), revokeOnly: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := decide(observe(tt.token(), tt.now))
			if p.mints() || p.blocked == nil || p.blocked.reason != v1alpha1.ReasonSecretTemplateInvalid {
				t.Fatalf("plan mints=%v blocked=%+v, want blocked by SecretTemplateInvalid", p.mints(), p.blocked)
			}
			if !strings.Contains(p.blocked.message, `"NOMAD_CLIENT_URL"`) || strings.Contains(p.blocked.message, dryRunPlaceholder) {
				t.Fatalf("message %q must name the key, and no token", p.blocked.message)
			}
			if p.syncSecret {
				t.Fatal("a Secret whose template does not render is not rewritten")
			}
			if p.revokeOnly != tt.revokeOnly {
				t.Fatalf("revokeOnly = %v, want %v", p.revokeOnly, tt.revokeOnly)
			}
		})
	}
	t.Run("a connection that cannot be read is no broken template", func(t *testing.T) {
		o := observe(withTemplate(issuedToken(), map[string]string{"U": "{{ .URL }}"}), issuedAt.AddDate(0, 0, 25))
		o.apiRoots = nil
		if p := decide(o); !p.mints() {
			t.Fatalf("plan %+v: the dry check uses a placeholder URL, and minting reports the connection", p)
		}
	})
}

// TestSecretNeedsSyncWithTemplates: a template change or a new URL rewrites the Secret (no PAT is
// owed for it); the Secret as rendered is silent.
func TestSecretNeedsSyncWithTemplates(t *testing.T) {
	tok := withTemplate(issuedToken(), map[string]string{"NOMAD_CLIENT_URL": "{{ .URL }}"})
	key := currentMinter(tok).connection
	o := &observed{token: tok, now: issuedAt.Add(time.Hour), apiRoots: map[string]string{key: testAPIRoot}}
	c, _ := currentSecretContent(tok, secretHolding(issuedToken(), []byte(testRaw), currentFacts(tok)), nil, testAPIRoot)
	o.secret = renderSecret(nil, tok, desired(t, tok, c))
	if secretNeedsSync(o) || decide(o).syncSecret {
		t.Fatal("a Secret rendered from the spec needs no write")
	}
	edited := *o
	edited.token = tok.DeepCopy()
	edited.token.Spec.Secret.Template.Data["NOMAD_CLIENT_URL"] = "{{ .URL }}/"
	if p := decide(&edited); !p.syncSecret || p.mints() {
		t.Fatalf("plan %+v: a changed template rewrites the Secret and mints nothing", p)
	}
	moved := *o
	moved.apiRoots = map[string]string{key: "https://oasis.example.org/api"}
	if !secretNeedsSync(&moved) {
		t.Fatal("a connection URL that changed rewrites the Secret")
	}
	unknown := *o
	unknown.apiRoots = nil
	unknown.token = edited.token
	if secretNeedsSync(&unknown) {
		t.Fatal("without the connection's URL the Secret is left as it is, not rendered without it")
	}
}

// TestBrokenTemplateMintsNothing runs the reconciler: a template that does not parse costs no NOMAD
// call at all, is reported Stalled, and is never retried hot.
func TestBrokenTemplateMintsNothing(t *testing.T) {
	w := newCrashWorld(t, interceptor.Funcs{})
	w.update(t, func(tok *v1alpha1.NomadToken) {
		withTemplate(tok, map[string]string{"NOMAD_PAT": "{{ .Token | nosuch }}"})
	})
	w.pokeFor(t, 5*time.Minute, 10*time.Second)
	if calls := w.stub.Calls(); calls["create"] != 0 || calls["rotate"] != 0 {
		t.Fatalf("NOMAD calls %v: a broken template must mint nothing", calls)
	}
	tok := w.token(t)
	c := readyCondition(t, tok)
	if c.Status != metav1.ConditionFalse || c.Reason != v1alpha1.ReasonSecretTemplateInvalid || !strings.Contains(c.Message, `"NOMAD_PAT"`) {
		t.Fatalf("Ready = %s %s %q, want False SecretTemplateInvalid naming the key", c.Status, c.Reason, c.Message)
	}
	if stalled := findCondition(tok, v1alpha1.ConditionStalled); stalled == nil || stalled.Status != metav1.ConditionTrue {
		t.Fatal("a broken template needs a person: Stalled")
	}

	w.update(t, func(tok *v1alpha1.NomadToken) {
		tok.Generation++
		tok.Spec.Secret.Template.Data["NOMAD_PAT"] = "{{ .Token }}"
	})
	w.mustReconcile(t)
	w.assertOneActivePATInSecret(t)
	if s := w.liveSecret(t); string(s.Data["NOMAD_PAT"]) != string(s.Data["token"]) {
		t.Fatal("the fixed template renders the raw token")
	}
}

// TestTemplateChangesMakeNoNOMADCall: templates render at issuance with the connection's API root;
// editing them rewrites the Secret without asking NOMAD; a rotation renders them anew; breaking them
// later keeps the current PAT in the Secret.
func TestTemplateChangesMakeNoNOMADCall(t *testing.T) {
	w := newCrashWorld(t, interceptor.Funcs{})
	w.update(t, func(tok *v1alpha1.NomadToken) {
		withTemplate(tok, map[string]string{"NOMAD_CLIENT_URL": "{{ .URL }}", "NOMAD_CLIENT_ACCESS_TOKEN": "{{ .Token }}"})
	})
	w.mustReconcile(t)
	first := w.assertOneActivePATInSecret(t)
	root, _ := nomad.NormalizeURL(w.oasis(t).Spec.URL)
	s := w.liveSecret(t)
	if string(s.Data["NOMAD_CLIENT_URL"]) != root || string(s.Data["NOMAD_CLIENT_ACCESS_TOKEN"]) != string(s.Data["token"]) {
		t.Fatalf("rendered URL %q (want %q), token rendered: %v", s.Data["NOMAD_CLIENT_URL"], root,
			string(s.Data["NOMAD_CLIENT_ACCESS_TOKEN"]) == string(s.Data["token"]))
	}

	before := w.stub.Calls()
	w.update(t, func(tok *v1alpha1.NomadToken) {
		tok.Generation++
		tok.Spec.Secret.Template.Data["NOMAD_CLIENT_URL"] = "{{ .URL }}/v1"
		tok.Spec.Secret.Template.Data["EXPIRES"] = "{{ .ExpiresAt }}"
	})
	w.mustReconcile(t)
	if after := w.stub.Calls(); !sameCalls(before, after) {
		t.Fatalf("NOMAD calls %v -> %v: a template change is a Secret rewrite only", before, after)
	}
	s = w.liveSecret(t)
	if string(s.Data["NOMAD_CLIENT_URL"]) != root+"/v1" || string(s.Data["EXPIRES"]) != first.Status.ExpiresAt.UTC().Format(time.RFC3339) {
		t.Fatalf("after the template change: URL %q, EXPIRES %q", s.Data["NOMAD_CLIENT_URL"], s.Data["EXPIRES"])
	}
	if w.token(t).Status.TokenID != first.Status.TokenID {
		t.Fatal("a template change must not replace the PAT")
	}

	w.update(t, func(tok *v1alpha1.NomadToken) {
		tok.Annotations = map[string]string{v1alpha1.AnnotationRotate: "1"}
	})
	w.mustReconcile(t)
	rotated := w.token(t)
	s = w.liveSecret(t)
	if rotated.Status.TokenID == first.Status.TokenID || string(s.Data["NOMAD_CLIENT_ACCESS_TOKEN"]) != string(s.Data["token"]) ||
		string(s.Data["EXPIRES"]) != rotated.Status.ExpiresAt.UTC().Format(time.RFC3339) {
		t.Fatal("a rotation renders every template key with the new PAT")
	}
}

func sameCalls(a, b map[string]int) bool {
	for k, v := range b {
		if a[k] != v {
			return false
		}
	}
	return len(a) == len(b)
}

func findCondition(tok *v1alpha1.NomadToken, condType string) *metav1.Condition {
	for i := range tok.Status.Conditions {
		if tok.Status.Conditions[i].Type == condType {
			return &tok.Status.Conditions[i]
		}
	}
	return nil
}

// TestTemplateBrokenLaterKeepsThePAT: a template broken after issuance is reported (Stalled) although
// nothing is owed, the Secret is not rewritten and the current PAT keeps serving.
func TestTemplateBrokenLaterKeepsThePAT(t *testing.T) {
	w := newCrashWorld(t, interceptor.Funcs{})
	w.update(t, func(tok *v1alpha1.NomadToken) { withTemplate(tok, map[string]string{"NOMAD_PAT": "{{ .Token }}"}) })
	w.mustReconcile(t)
	first := w.assertOneActivePATInSecret(t)
	version := w.liveSecret(t).ResourceVersion
	before := w.stub.Calls()
	w.update(t, func(tok *v1alpha1.NomadToken) {
		tok.Generation++
		tok.Spec.Secret.Template.Data["NOMAD_PAT"] = "{{ .Tokn }}"
	})
	_ = w.reconcile(t)
	tok := w.token(t)
	if c := readyCondition(t, tok); c.Status != metav1.ConditionFalse || c.Reason != v1alpha1.ReasonSecretTemplateInvalid ||
		!strings.Contains(c.Message, first.Status.TokenID+" keeps working") {
		t.Fatalf("Ready = %s %s %q, want False SecretTemplateInvalid saying the PAT keeps working", c.Status, c.Reason, c.Message)
	}
	if w.liveSecret(t).ResourceVersion != version || tok.Status.TokenID != first.Status.TokenID || !w.active("bot", first.Status.TokenID) {
		t.Fatal("the Secret and its PAT stay as they were")
	}
	if after := w.stub.Calls(); !sameCalls(before, after) {
		t.Fatalf("NOMAD calls %v -> %v", before, after)
	}
}

// TestRefusedWriteMessagesCarryNoTokenValue: an admission webhook that quotes the Secret it refused
// quotes base64 data values; every value is cut whole, also one that encodes the token beyond
// recognition (b64enc, a Basic credential), as is the previous token.
func TestRefusedWriteMessagesCarryNoTokenValue(t *testing.T) {
	curlrc := []byte(`header = "Authorization: Bearer ` + testRaw + `"`)
	b64 := []byte(base64.StdEncoding.EncodeToString([]byte(testRaw)))
	basic := []byte(base64.StdEncoding.EncodeToString([]byte("bot:" + testRaw)))
	c := secretContent{raw: []byte(testRaw), previous: &previousToken{raw: []byte(oldRaw)}}
	data := map[string][]byte{"token": []byte(testRaw), "curlrc": curlrc, "token.previous": []byte(oldRaw),
		"b64": b64, "basic": basic, "replicas": []byte("1")}
	enc := func(v []byte) string { return base64.StdEncoding.EncodeToString(v) }
	quoted := "denied: " + enc(curlrc) + " " + oldRaw + " " + enc(b64) + " " + enc(basic) + " replicas=" + enc([]byte("1"))
	msg := withoutTokenValues(errors.New(quoted), c, data).Error()
	for _, leak := range []string{enc(curlrc), oldRaw, enc(b64), enc(basic)} {
		if strings.Contains(msg, leak) {
			t.Fatalf("a token value reached the message: %s", msg)
		}
	}
	if !strings.Contains(msg, "replicas="+enc([]byte("1"))) {
		t.Fatalf("a value too short to be a token is kept, so the message still reads: %s", msg)
	}
}
