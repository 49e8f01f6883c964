package connection

import (
	"strings"
	"testing"
)

func TestURLAllowlistParse(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     string // the list read back; "" with err == "" means no list
		err      string // a part of the error
	}{
		{name: "unset means any URL", in: ""},
		{name: "blank means any URL", in: "  "},
		{name: "a host", in: "nomad.example.org", want: "nomad.example.org"},
		{name: "a host and port", in: "nomad.example.org:8443", want: "nomad.example.org:8443"},
		{name: "a host and port 443 is not the host alone", in: "nomad.example.org:443", want: "nomad.example.org:443"},
		{name: "an IPv6 address and port", in: "[::1]:8080", want: "[::1]:8080"},
		{name: "a URL prefix, hosts in lower case", in: "https://NOMAD.example.org/nomad-oasis/", want: "https://nomad.example.org/nomad-oasis"},
		{name: "a URL prefix with its default port written out", in: "https://nomad.example.org:443/", want: "https://nomad.example.org"},
		{name: "a URL prefix on another port", in: "http://oasis.local:8000/nomad-oasis", want: "http://oasis.local:8000/nomad-oasis"},
		{name: "several, spaces around them", in: " nomad.example.org , http://oasis.local:8000 ", want: "nomad.example.org,http://oasis.local:8000"},
		{name: "an empty entry is refused", in: "nomad.example.org,", err: "entry 2 is empty"},
		{name: "a path needs a scheme", in: "nomad.example.org/nomad-oasis", err: "write a URL prefix as scheme://host/path"},
		{name: "no other scheme", in: "ftp://nomad.example.org", err: "must start with http:// or https://"},
		{name: "no user info in a prefix", in: "https://bot@nomad.example.org", err: "no user info"},
		{name: "no user info in a host", in: "bot@nomad.example.org", err: "no path, user info"},
		{name: "no query", in: "https://nomad.example.org/?x=1", err: "no user info, query or fragment"},
		{name: "an empty port", in: "nomad.example.org:", err: "empty port"},
		{name: "a port out of range", in: "nomad.example.org:70000", err: "no port number"},
		{name: "no host", in: "https:///nomad", err: "has no host"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseURLAllowlist(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ParseURLAllowlist(%q) = %v, %v; want an error with %q", tc.in, got, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseURLAllowlist(%q): %v", tc.in, err)
			}
			if (tc.want == "") != (got == nil) || got.String() != tc.want {
				t.Fatalf("ParseURLAllowlist(%q) = %q; want %q", tc.in, got.String(), tc.want)
			}
		})
	}
}

func TestURLAllowlistAllows(t *testing.T) {
	const list = "https://allowed.example.org/nomad-oasis, nomad.example.org, oasis.local:8000, [fd00::1]:9000, http://plain.example.org:8080/"
	for _, tc := range []struct {
		name string
		url  string
		want bool
	}{
		// URL prefix entries.
		{"the prefix itself", "https://allowed.example.org/nomad-oasis", true},
		{"below the prefix", "https://allowed.example.org/nomad-oasis/api", true},
		{"below the prefix, with /v1 and a trailing slash", "https://allowed.example.org/nomad-oasis/api/v1/", true},
		{"host in upper case, and a trailing dot", "https://ALLOWED.Example.ORG./nomad-oasis/api", true},
		{"the default port written out", "https://allowed.example.org:443/nomad-oasis/api", true},
		{"the default port with a leading zero", "https://allowed.example.org:0443/nomad-oasis/api", true},
		{"another port", "https://allowed.example.org:8443/nomad-oasis/api", false},
		{"another scheme", "http://allowed.example.org/nomad-oasis/api", false},
		{"a sibling path that starts the same", "https://allowed.example.org/nomad-oasis-test/api", false},
		{"above the prefix", "https://allowed.example.org/", false},
		{"out of the prefix by ..", "https://allowed.example.org/nomad-oasis/../admin", false},
		{"out of the prefix by an encoded ..", "https://allowed.example.org/nomad-oasis/%2e%2e/admin", false},
		{"out of the prefix by encoded slashes", "https://allowed.example.org/nomad-oasis%2F..%2Fadmin", false},
		{"path case counts", "https://allowed.example.org/NOMAD-oasis/api", false},
		{"the allowed host as a subdomain of another", "https://allowed.example.org.evil.com/nomad-oasis/api", false},
		{"the allowed host as user info", "https://allowed.example.org@evil.com/nomad-oasis/api", false},
		{"user info on the allowed host", "https://bot:pw@allowed.example.org/nomad-oasis/api", false},
		{"the allowed host in the path of another", "https://evil.com/allowed.example.org/nomad-oasis", false},
		{"the allowed host in the query of another", "https://evil.com/?allowed.example.org/nomad-oasis", false},
		{"a subdomain of the allowed host", "https://x.allowed.example.org/nomad-oasis/api", false},
		// Host entries.
		{"a host: https, any path", "https://nomad.example.org/prod/api", true},
		{"a host: http too", "http://nomad.example.org/api", true},
		{"a host: the default port written out", "https://nomad.example.org:443/api", true},
		{"a host: another port", "https://nomad.example.org:6443/api", false},
		{"a host: the other scheme's default port", "http://nomad.example.org:443/api", false},
		{"a host and port: that port", "http://oasis.local:8000/api", true},
		{"a host and port: the default port", "https://oasis.local/api", false},
		{"a host and port: another port", "http://oasis.local:8001/api", false},
		{"an IPv6 host and port", "http://[fd00::1]:9000/api", true},
		{"an IPv6 host, another port", "http://[fd00::1]:9001/api", false},
		{"a host entry is no suffix", "https://evilnomad.example.org/api", false},
		// A prefix of "/" is the whole host on that scheme and port.
		{"a root prefix: any path", "http://plain.example.org:8080/anything", true},
		{"a root prefix: another port", "http://plain.example.org/anything", false},
		// Not URLs the client would call.
		{"another scheme", "ftp://nomad.example.org/api", false},
		{"no scheme", "nomad.example.org/api", false},
		{"an unparsable URL", "https://nomad.example.org:port/api", false},
		{"an address not listed", "http://169.254.169.254/latest/meta-data", false},
		{"an empty URL", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := ParseURLAllowlist(list)
			if err != nil {
				t.Fatal(err)
			}
			if got := a.Allows(tc.url); got != tc.want {
				t.Errorf("Allows(%q) = %v; want %v", tc.url, got, tc.want)
			}
		})
	}
	t.Run("no list allows any URL", func(t *testing.T) {
		var none *URLAllowlist
		if !none.Allows("http://169.254.169.254/") {
			t.Error("a nil list refused a URL")
		}
	})
}
