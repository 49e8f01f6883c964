package nomadstub

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// RefreshRefused asks the realm at issuer, as a client of nomad_public would, to refresh with
// refreshToken, and reports whether it refused (400 invalid_grant: spent, revoked or expired). Tests
// use it to prove that a rotated-away refresh token is dead. Beware: a successful answer spends the
// token at a realm that rotates them.
func RefreshRefused(issuer, refreshToken string) (bool, error) {
	form := url.Values{"grant_type": {"refresh_token"}, "client_id": {DefaultRealmClient}, "refresh_token": {refreshToken}}
	resp, err := http.Post(issuer+"/protocol/openid-connect/token", "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	switch resp.StatusCode {
	case http.StatusOK:
		return false, nil
	case http.StatusBadRequest:
		return true, nil
	}
	return false, fmt.Errorf("refresh at %s: unexpected %s", issuer, resp.Status)
}
