package harness

import (
	"bytes"
	"fmt"
	"os"
	"regexp"
)

// PATPattern matches a raw NOMAD PAT: "nomad_pat_" and 43 base64url characters (nomad-pat-api.md §6).
var PATPattern = regexp.MustCompile(`nomad_pat_[A-Za-z0-9_-]{43}`)

// Leak is where a secret showed up. It never carries the secret itself.
type Leak struct {
	Path string
	Line int    // 1-based
	What string // "a raw PAT" or "secret #N" (N indexes the secrets passed to ScanFile)
}

func (l Leak) String() string { return fmt.Sprintf("%s:%d: %s", l.Path, l.Line, l.What) }

// ScanFile reports every line of the file that holds a raw PAT or one of secrets (empty ones are
// ignored), e.g. the bot password.
func ScanFile(path string, secrets ...string) ([]Leak, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var leaks []Leak
	for i, line := range bytes.Split(b, []byte("\n")) {
		if PATPattern.Match(line) {
			leaks = append(leaks, Leak{Path: path, Line: i + 1, What: "a raw PAT"})
		}
		for j, s := range secrets {
			if s != "" && bytes.Contains(line, []byte(s)) {
				leaks = append(leaks, Leak{Path: path, Line: i + 1, What: fmt.Sprintf("secret #%d", j)})
			}
		}
	}
	return leaks, nil
}

// Redact replaces every raw PAT in s, for printing logs and failures.
func Redact(s string) string {
	return PATPattern.ReplaceAllString(s, "nomad_pat_<redacted>")
}

// Describe says what a raw token looks like without showing it: "<53 bytes, redacted>".
func Describe(raw []byte) string {
	return fmt.Sprintf("<%d bytes, redacted>", len(raw))
}
