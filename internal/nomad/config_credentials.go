package nomad

import (
	"errors"
	"net"
	"net/url"
	"strings"
)

// credentials is what New keeps of a Config's sign-in settings, validated.
type credentials struct {
	method             CredentialMethod
	username, password string
	issuer, clientID   string
	secret             string
}

// String and GoString keep the password and client secret out of any accidental %v or %#v.
func (cr credentials) String() string {
	return "nomad.credentials{method:" + string(cr.method) + ", <redacted>}"
}
func (cr credentials) GoString() string { return cr.String() }

// checkCredentials validates the sign-in settings for cfg.Method.
func checkCredentials(cfg Config) (credentials, error) {
	cr := credentials{method: cfg.Method}
	switch cfg.Method {
	case "", MethodPassword:
		cr.method = MethodPassword
		if cfg.Username == "" || cfg.Password == "" {
			return cr, configError("username and password are both required")
		}
		cr.username, cr.password = cfg.Username, cfg.Password
		return cr, nil
	case MethodRefreshToken:
		if cfg.OIDC.RefreshToken == "" {
			return cr, configError("method %s needs a refresh token", cfg.Method)
		}
	case MethodClientCredentials:
		if cfg.OIDC.ClientSecret == "" {
			return cr, configError("method %s needs a client secret", cfg.Method)
		}
	default:
		return cr, configError("credentials method %q is not one of %s, %s, %s",
			cfg.Method, MethodPassword, MethodRefreshToken, MethodClientCredentials)
	}
	o := cfg.OIDC
	if strings.TrimSpace(o.IssuerURL) == "" {
		return cr, configError("method %s needs the realm's issuer URL (oidc.issuerURL)", cfg.Method)
	}
	if reason := checkIssuerLikeURL(strings.TrimSpace(o.IssuerURL)); reason != "" {
		return cr, configError("the issuer URL %s", reason)
	}
	cr.issuer = strings.TrimRight(strings.TrimSpace(o.IssuerURL), "/")
	cr.clientID = o.ClientID
	if cr.clientID == "" {
		cr.clientID = DefaultClientID
	}
	cr.secret = o.ClientSecret
	return cr, nil
}

// checkIssuerLikeURL says what is wrong with a URL that the client secret or refresh token will be
// sent to ("" if nothing): it must be https, or http only on this machine (a local Keycloak in a
// test or a port-forward), where nobody else can read the traffic; and it must carry no
// credentials, query or fragment (an issuer has none, OpenID Connect Discovery §4).
func checkIssuerLikeURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return "cannot be parsed: " + err.Error()
	}
	switch {
	case u.Host == "":
		return "has no host"
	case u.User != nil:
		return "must not contain credentials"
	case u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		return "must not contain a query or fragment"
	case u.Scheme == "https":
		return ""
	case u.Scheme == "http" && isLoopback(u.Hostname()):
		return ""
	case u.Scheme == "http":
		return "must use https (http is allowed only for localhost, 127.0.0.0/8 or ::1)"
	}
	return "must use https"
}

// isLoopback reports whether host is localhost or a loopback address.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
