package controllers

import "testing"

func TestMarkerPrefixInFindsTheMintingTokensPrefix(t *testing.T) {
	tok := issuedToken()
	for _, tt := range []struct{ description, want string }{
		{describe("", "uid-1-0123456789ab"), "[nomad-token-operator uid-1-"},
		{describe("CI uploads", "abcdef12-0123456789ab"), "[nomad-token-operator abcdef12-"},
		{"made by a person", ""},
		{"[nomad-token-operator broken", ""},
	} {
		if got := markerPrefixIn(tt.description); got != tt.want {
			t.Errorf("markerPrefixIn(%q) = %q, want %q", tt.description, got, tt.want)
		}
	}
	if got := markerPrefixIn(describe("", "uid-1-0123456789ab")); got != markerPrefix(tok) {
		t.Errorf("the prefix read back %q differs from markerPrefix %q", got, markerPrefix(tok))
	}
}
