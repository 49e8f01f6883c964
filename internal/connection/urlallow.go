package connection

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"strconv"
	"strings"
)

// URLAllowlist is what the NOMAD URL and the OIDC issuer URL of a namespaced NomadConnection may be
// (--allowed-nomad-urls). A tenant who may write a NomadConnection chooses the address the manager
// calls from its pod; without a list that is any address the pod can reach (a blind SSRF: the
// tenant learns from the connection's status whether something answered). ClusterNomadConnections
// are written by cluster administrators and are not checked.
//
// An entry is one of:
//
//   - a URL prefix, "https://nomad.example.org/nomad-oasis": the same scheme, the same host, the same
//     port (the scheme's default when none is given), and a path equal to the entry's or below it
//     on a "/" boundary (/nomad-oasis/api, not /nomad-oasis-test);
//   - a host, "nomad.example.org", or a host and port, "nomad.example.org:8443" ("[::1]:8080" for an
//     IPv6 address): any path on that host over http or https, on that port, or without one on the
//     default port of the URL's scheme (443 for https, 80 for http).
//
// Hosts compare without case and without a trailing dot; paths compare as they are, after "." and
// ".." are resolved, so that "/nomad-oasis/../admin" is not below "/nomad-oasis". A URL with user
// info ("https://user@host") matches nothing. There are no wildcards, and a host is not resolved:
// what it resolves to is the DNS administrator's to keep, and the egress NetworkPolicy's to bound.
type URLAllowlist struct {
	entries []allowEntry
}

type allowEntry struct {
	scheme string // "" for a host entry: http and https
	host   string // lower case, no trailing dot, no brackets
	port   string // "" for a host entry without one: the URL's default
	path   string // "" for a host entry; cleaned, no trailing slash except "/" itself
}

// ParseURLAllowlist reads a comma-separated list of entries (spaces around an entry are allowed). An
// empty or blank value is no list, nil: every URL is allowed, as before the flag existed.
func ParseURLAllowlist(v string) (*URLAllowlist, error) {
	if strings.TrimSpace(v) == "" {
		return nil, nil
	}
	a := &URLAllowlist{}
	for i, part := range strings.Split(v, ",") {
		raw := strings.TrimSpace(part)
		if raw == "" {
			return nil, fmt.Errorf("entry %d is empty", i+1)
		}
		e, err := parseAllowEntry(raw)
		if err != nil {
			return nil, fmt.Errorf("entry %q: %w", raw, err)
		}
		a.entries = append(a.entries, e)
	}
	return a, nil
}

func parseAllowEntry(raw string) (allowEntry, error) {
	if !strings.Contains(raw, "://") {
		if strings.ContainsAny(raw, "/@?#") {
			return allowEntry{}, errors.New("a host (or host:port) has no path, user info, query or fragment; write a URL prefix as scheme://host/path")
		}
		u, err := url.Parse("//" + raw)
		if err != nil || u.Hostname() == "" {
			return allowEntry{}, errors.New("is no host, host:port or URL")
		}
		if err := checkPort(u.Port(), raw); err != nil {
			return allowEntry{}, err
		}
		return allowEntry{host: normalHost(u.Hostname()), port: normalPort(u.Port())}, nil
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return allowEntry{}, errors.New("is no URL")
	case u.Scheme != "http" && u.Scheme != "https":
		return allowEntry{}, errors.New("a URL prefix must start with http:// or https://")
	case u.Hostname() == "":
		return allowEntry{}, errors.New("has no host")
	case u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return allowEntry{}, errors.New("a URL prefix has no user info, query or fragment")
	}
	if err := checkPort(u.Port(), raw); err != nil {
		return allowEntry{}, err
	}
	return allowEntry{scheme: u.Scheme, host: normalHost(u.Hostname()), port: effectivePort(u), path: cleanPath(u.Path)}, nil
}

// checkPort refuses what url.Parse lets through as a port: an empty one ("host:") or one above 65535.
func checkPort(port, raw string) error {
	if strings.HasSuffix(raw, ":") {
		return errors.New("has an empty port")
	}
	if port == "" {
		return nil
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port %q is no port number", port)
	}
	return nil
}

// Allows reports whether raw is a URL the list allows. A nil list allows every URL.
func (a *URLAllowlist) Allows(raw string) bool {
	if a == nil {
		return true
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.User != nil || u.Hostname() == "" {
		return false
	}
	host, port, p := normalHost(u.Hostname()), effectivePort(u), cleanPath(u.Path)
	for _, e := range a.entries {
		if e.host != host {
			continue
		}
		if e.scheme == "" {
			if e.port == port || e.port == "" && port == defaultPort(u.Scheme) {
				return true
			}
			continue
		}
		if e.scheme == u.Scheme && e.port == port && underPath(p, e.path) {
			return true
		}
	}
	return false
}

// String lists the entries as given to ParseURLAllowlist would read them back.
func (a *URLAllowlist) String() string {
	if a == nil {
		return ""
	}
	out := make([]string, 0, len(a.entries))
	for _, e := range a.entries {
		hostport := e.host
		if strings.Contains(hostport, ":") {
			hostport = "[" + hostport + "]"
		}
		// A prefix's port is always set (the scheme's default when none was written); a host's
		// only when one was.
		if e.port != "" && (e.scheme == "" || e.port != defaultPort(e.scheme)) {
			hostport += ":" + e.port
		}
		if e.scheme == "" {
			out = append(out, hostport)
			continue
		}
		out = append(out, e.scheme+"://"+hostport+strings.TrimSuffix(e.path, "/"))
	}
	return strings.Join(out, ",")
}

// summary is String with at most n entries, and how many more there are: for a condition message.
func (a *URLAllowlist) summary(n int) string {
	all := strings.Split(a.String(), ",")
	if len(all) <= n {
		return strings.Join(all, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(all[:n], ", "), len(all)-n)
}

// normalHost is host as DNS compares it: without case, and without the trailing dot of a fully
// qualified name.
func normalHost(host string) string {
	return strings.TrimSuffix(strings.ToLower(host), ".")
}

// effectivePort is u's port, or its scheme's default.
func effectivePort(u *url.URL) string {
	if p := u.Port(); p != "" {
		return normalPort(p)
	}
	return defaultPort(u.Scheme)
}

// normalPort writes a port number as a dialer reads it: "0443" is 443.
func normalPort(p string) string {
	if n, err := strconv.Atoi(p); err == nil {
		return strconv.Itoa(n)
	}
	return p
}

func defaultPort(scheme string) string {
	if scheme == "http" {
		return "80"
	}
	return "443"
}

// cleanPath resolves "." and ".." in p (the decoded path, so %2e%2e counts as ".." too), as a
// server would before it routes the request.
func cleanPath(p string) string {
	return path.Clean("/" + p)
}

// underPath reports whether p is prefix or below it on a "/" boundary.
func underPath(p, prefix string) bool {
	return prefix == "/" || p == prefix || strings.HasPrefix(p, prefix+"/")
}
