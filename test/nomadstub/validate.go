package nomadstub

import (
	"fmt"
	"math/big"
	"sort"
	"strings"
	"unicode"
)

// validScopes is V-C's Scope.all_values() (nomad-pat-api.md §8), federation:write included. The
// legacy aliases uploads_bundle:read/write are not members: V-C rejects them at create (and so at
// rotate, which is one way the rotation hazard bites). Wildcards are never members either.
var validScopes = func() map[string]bool {
	m := map[string]bool{}
	for _, s := range []string{
		"tokens:create", "tokens:read", "tokens:delete",
		"uploads:read", "uploads:write", "uploads:publish", "uploads:process", "uploads:assign_doi",
		"uploads:export", "uploads:import",
		"datasets:read", "datasets:write", "datasets:delete", "datasets:assign_doi",
		"entries:read", "entries:write", "groups:read", "groups:write", "groups:delete",
		"actions:read", "actions:run", "north:read", "north:run", "users:read", "users:invite",
		"apps:read", "graph:read", "info:read", "materials:read", "metainfo:read", "schemas:read",
		"suggestions:read", "systems:read",
		"federation:write",
		"external_optimade:read", "external_dcat:read", "external_h5grove:read",
	} {
		m[s] = true
	}
	return m
}()

// ValidScopes lists V-C's scope names, sorted. The tokens:* names are among them (they are real
// scopes) but a PAT may not hold them.
func ValidScopes() []string {
	out := make([]string, 0, len(validScopes))
	for s := range validScopes {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

var forbiddenPATScopes = map[string]bool{scopeTokensCreate: true, scopeTokensRead: true, scopeTokensDelete: true}

// Create validation messages (nomad-pat-api.md §4.1), byte-for-byte.
const (
	detailNoScopes       = "At least one scope must be selected."
	detailAlreadyExpired = "Cannot create an already expired token."
	detailForbiddenScope = "Personal access tokens are not allowed to operate on PATs."
)

// validateCreation is V-C's validate_creation: checks 2-6 of §4.1 in that order (check 1, the
// router's empty-scope test, is repeated here as NOMAD does, which matters only for rotate; check
// 7, the active count, needs the store). days nil means "never expires". It returns the 400
// detail, or "".
func validateCreation(scopes []string, days *big.Int, maxLifetime *int) string {
	if days != nil && days.Sign() <= 0 {
		return detailAlreadyExpired
	}
	if maxLifetime != nil {
		if days == nil {
			return fmt.Sprintf("Infinite tokens are disabled. Max lifetime is %d days.", *maxLifetime)
		}
		if days.Cmp(big.NewInt(int64(*maxLifetime))) > 0 {
			return fmt.Sprintf("Requested lifetime (%s days) exceeds the maximum allowed (%d days).", days.String(), *maxLifetime)
		}
	}
	if len(scopes) == 0 {
		return detailNoScopes
	}
	var invalid []string
	seen := map[string]bool{}
	for _, s := range scopes {
		if !validScopes[s] && !seen[s] {
			invalid = append(invalid, s)
			seen[s] = true
		}
	}
	if len(invalid) > 0 {
		return "Invalid scopes: " + pySet(invalid)
	}
	for _, s := range scopes {
		if forbiddenPATScopes[s] {
			return detailForbiddenScope
		}
	}
	return ""
}

// pyList renders a Python list of strings: ['a', 'b'].
func pyList(items []string) string {
	parts := make([]string, len(items))
	for i, s := range items {
		parts[i] = pyRepr(s)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// pySet renders a Python set of strings: {'a', 'b'}. Python's order is arbitrary (hash order), so
// clients must match the message as a prefix; the stand-in sorts to stay deterministic.
func pySet(items []string) string {
	sorted := append([]string(nil), items...)
	sort.Strings(sorted)
	parts := make([]string, len(sorted))
	for i, s := range sorted {
		parts[i] = pyRepr(s)
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// pyRepr is Python's repr() of a str: single quotes unless the text holds a single quote and no
// double quote, with backslash escapes for the quote, backslashes and non-printable characters.
func pyRepr(s string) string {
	quote := byte('\'')
	if strings.Contains(s, "'") && !strings.Contains(s, `"`) {
		quote = '"'
	}
	var b strings.Builder
	b.WriteByte(quote)
	for _, r := range s {
		switch {
		case r == rune(quote) || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == unicode.ReplacementChar:
			b.WriteRune(r)
		case !unicode.IsPrint(r) && r != ' ':
			switch {
			case r < 0x100:
				fmt.Fprintf(&b, `\x%02x`, r)
			case r < 0x10000:
				fmt.Fprintf(&b, `\u%04x`, r)
			default:
				fmt.Fprintf(&b, `\U%08x`, r)
			}
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte(quote)
	return b.String()
}
