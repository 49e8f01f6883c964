package nomadstub

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
)

// FastAPI's exact detail strings shared by several handlers.
const (
	detailNotFound          = "Not Found"
	detailMethodNotAllowed  = "Method Not Allowed"
	detailAuthRequired      = "Authentication required."
	detailInvalidKeycloak   = "Could not validate credentials. The given token is invalid."
	detailBadLogin          = "Incorrect username or password"
	detailTokenNotFound     = "Token not found or does not belong to the user."
	detailCannotRotate      = "Cannot rotate an expired/revoked token."
	detailPageOutOfRange    = "Page out of range requested."
	detailInjectedFault     = "Injected fault"
	detailUnexpectedFailure = "Unexpected exception while handling your request"
	detailUnknownUser       = "You are logged in with an unknown user"
)

// writeJSON writes v compactly, as orjson/JSONResponse do, without Go's HTML escaping of <, > and &
// (Python never escapes them, and names or search strings may contain them).
func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	body := bytes.TrimRight(buf.Bytes(), "\n")
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// writeDetail is FastAPI's HTTPException body: {"detail": "<msg>"}.
func writeDetail(w http.ResponseWriter, status int, detail string) {
	writeJSON(w, status, map[string]any{"detail": detail})
}

// writeUnauthorized adds the challenge header NOMAD sends with every 401 on bearer-protected routes.
func writeUnauthorized(w http.ResponseWriter, detail, scheme string) {
	w.Header().Set("WWW-Authenticate", scheme)
	writeDetail(w, http.StatusUnauthorized, detail)
}

// validationError is one entry of FastAPI's 422 list (pydantic's ErrorDetails minus "url").
type validationError struct {
	Type  string         `json:"type"`
	Loc   []any          `json:"loc"`
	Msg   string         `json:"msg"`
	Input any            `json:"input"`
	Ctx   map[string]any `json:"ctx,omitempty"`
}

// writeValidation answers 422 {"detail": [...]}.
func writeValidation(w http.ResponseWriter, errs []validationError) {
	writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"detail": errs})
}

// writeServerError mimics NOMAD's catch-all exception handler, which answers 500 with an object
// detail (the only endpoint-independent non-string detail, see the contract's edge case 16).
func writeServerError(w http.ResponseWriter, exception, class string) {
	writeJSON(w, http.StatusInternalServerError, map[string]any{"detail": map[string]any{
		"reason":              detailUnexpectedFailure,
		"exception":           exception,
		"exception_class":     class,
		"exception_traceback": "Traceback (most recent call last):\n  (nomadstub)\n" + class + ": " + exception + "\n",
	}})
}

func missingField(loc []any, input any) validationError {
	return validationError{Type: "missing", Loc: loc, Msg: "Field required", Input: input}
}

func loc(parts ...any) []any { return parts }
