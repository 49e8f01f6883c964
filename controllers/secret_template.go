package controllers

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
)

// spec.secret.template.data renders extra Secret keys from the PAT: a client configuration, or one
// environment variable per key. The templates are the user's, run inside the operator, so they get
// nothing but the PAT's own facts and a few pure string functions: no environment, files, network
// or clock (text/template alone has none of these; sprig's env and the like are left out on
// purpose), and a bounded output.

// maxRenderedBytes bounds one rendered value. A template may loop ({{ range 100000000 }}), and its
// output lives in the operator's memory before the API server's 1 MiB Secret limit could refuse it.
const maxRenderedBytes = 64 << 10

// templateFuncs are the functions a template may call, besides text/template's builtins. Their names
// and argument order follow sprig's, so that templates written for Helm read the same.
var templateFuncs = template.FuncMap{
	"b64enc": func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) },
	"quote":  strconv.Quote,
	"join":   func(sep string, items []string) string { return strings.Join(items, sep) },
	"upper":  strings.ToUpper,
	"lower":  strings.ToLower,
	"trim":   strings.TrimSpace,
	"toJson": func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	},
}

// templateInput is what a template renders from: the PAT the Secret holds, and where it is used.
type templateInput struct {
	token     string
	tokenID   string
	apiRoot   string // "" when the connection could not be read: .URL then fails to render
	expiresAt time.Time
	scopes    []string
}

// data is the template's dot. A map, not a struct, so that missingkey=error names a misspelt field
// ("map has no entry for key") and an unknown API root is a missing key, not an empty URL.
func (in templateInput) data() map[string]any {
	d := map[string]any{
		"Token":     in.token,
		"TokenID":   in.tokenID,
		"ExpiresAt": in.expiresAt.UTC().Format(time.RFC3339),
		"Scopes":    slices.Clone(in.scopes),
	}
	if in.apiRoot != "" {
		d["URL"] = in.apiRoot
	}
	return d
}

// templateError is a template that does not parse or execute; its message names the key, and never
// holds the raw token.
type templateError struct {
	key     string
	message string
}

func (e *templateError) Error() string {
	return fmt.Sprintf("spec.secret.template.data[%q]: %s", e.key, e.message)
}

// renderTemplateData renders every key of spec.secret.template.data with in. Keys go in sorted order,
// so the first failure named is the same on every reconcile. A key equal to spec.secret.key or
// previousKey is refused: admission refuses it already, and the raw token must never be overwritten.
func renderTemplateData(token *v1alpha1.NomadToken, in templateInput) (map[string][]byte, error) {
	tmpl := token.Spec.Secret.Template
	if tmpl == nil || len(tmpl.Data) == 0 {
		return nil, nil
	}
	out := make(map[string][]byte, len(tmpl.Data))
	for _, key := range slices.Sorted(maps.Keys(tmpl.Data)) {
		if key == token.EffectiveSecretKey() || key == token.Spec.Secret.PreviousKey {
			return nil, &templateError{key, "must differ from spec.secret.key and spec.secret.previousKey"}
		}
		v, err := renderOne(key, tmpl.Data[key], in.data())
		if err != nil {
			return nil, &templateError{key, scrubToken(err.Error(), in.token)}
		}
		out[key] = v
	}
	return out, nil
}

func renderOne(key, text string, data map[string]any) ([]byte, error) {
	t, err := template.New(key).Option("missingkey=error").Funcs(templateFuncs).Parse(text)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := t.Execute(&limitedBuffer{buf: &buf, left: maxRenderedBytes}, data); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

var errRenderedTooLarge = fmt.Errorf("renders more than %d KiB", maxRenderedBytes>>10)

// limitedBuffer fails a write past its limit, which stops the template's execution.
type limitedBuffer struct {
	buf  *bytes.Buffer
	left int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if len(p) > b.left {
		return 0, errRenderedTooLarge
	}
	b.left -= len(p)
	return b.buf.Write(p)
}

// scrubToken cuts raw (as written, or base64-encoded) from msg: an execution error may quote a value
// it worked on.
func scrubToken(msg, raw string) string {
	return withoutRawToken(errors.New(msg), raw).Error()
}

// dryTemplateInput is the data set a template is checked with before any NOMAD call: the real facts
// where they are known, a placeholder token shaped like a PAT, and an API root even when the
// connection cannot be read (that is reported as such, not as a broken template).
func dryTemplateInput(o *observed) templateInput {
	token := o.token
	root := o.apiRoots[token.Spec.ConnectionRef.Key()]
	if root == "" {
		root = "https://nomad.example.org/nomad-oasis/api"
	}
	id := token.Status.TokenID
	if id == "" {
		id = "000000000000000000000000"
	}
	return templateInput{token: dryRunPlaceholder, tokenID: id, apiRoot: root,
		expiresAt: o.now.AddDate(0, 0, token.EffectiveExpiresInDays()), scopes: token.Spec.Scopes}
}

// secretTemplateRefusal says why spec.secret.template cannot shape the Secret, checked purely with
// the dry data set: nil when it renders. Such a spec is refused like a policy violation: no PAT is
// minted for a Secret that could not be written, and a person must fix it.
func secretTemplateRefusal(o *observed) *failure {
	_, err := renderTemplateData(o.token, dryTemplateInput(o))
	var te *templateError
	if !errors.As(err, &te) {
		return nil
	}
	return &failure{reason: v1alpha1.ReasonSecretTemplateInvalid,
		message: te.Error() + "; fix spec.secret.template.data (the Secret is not rewritten meanwhile)"}
}

// refusal is why minting is refused before NOMAD is asked: the platform's rules (o.refused, as
// observed), else a spec.secret.template that does not render.
func (o *observed) refusal() *failure {
	if o.refused != nil {
		return o.refused
	}
	return secretTemplateRefusal(o)
}
