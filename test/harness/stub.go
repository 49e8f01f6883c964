package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nomad-operator/nomad-token-operator/test/nomadstub"
)

// Stand-in defaults (cmd/nomad-stub).
const (
	DefaultStubUser     = "bot"
	DefaultStubPassword = "bot-password"
	DefaultStubBasePath = "/nomad-oasis/api"
)

// StubOptions says how to run the NOMAD stand-in binary.
type StubOptions struct {
	// Bin is the path of the nomad-stub binary.
	Bin string
	// Dir receives nomad-stub.log and the address file.
	Dir string
	// User and Password are its one Keycloak account (default bot / bot-password).
	User, Password string
	// BasePath is the API base path (default /nomad-oasis/api).
	BasePath string
	// Args are further flags, e.g. --max-active=3.
	Args []string
	// StartTimeout bounds the wait until it answers (default 20 s).
	StartTimeout time.Duration
}

// Stub is a running stand-in.
type Stub struct {
	*Process
	// Addr is "http://127.0.0.1:<port>".
	Addr string
	// APIURL is NOMAD's API root, what NomadConnection.spec.url takes: Addr + BasePath.
	APIURL         string
	User, Password string
}

// StartStub starts the stand-in on a free loopback port and waits until it answers.
func StartStub(ctx context.Context, o StubOptions) (*Stub, error) {
	if o.User == "" {
		o.User, o.Password = DefaultStubUser, DefaultStubPassword
	}
	if o.BasePath == "" {
		o.BasePath = DefaultStubBasePath
	}
	if o.StartTimeout == 0 {
		o.StartTimeout = 20 * time.Second
	}
	addrFile := filepath.Join(o.Dir, "nomad-stub.addr")
	_ = os.Remove(addrFile)
	args := append([]string{
		"--listen=127.0.0.1:0",
		"--addr-file=" + addrFile,
		"--user=" + o.User + ":" + o.Password,
		"--base-path=" + o.BasePath,
	}, o.Args...)
	p, err := StartProcess("nomad-stub", filepath.Join(o.Dir, "nomad-stub.log"), o.Bin, args...)
	if err != nil {
		return nil, err
	}
	s := &Stub{Process: p, User: o.User, Password: o.Password}
	if err := s.awaitAddr(ctx, addrFile, o.StartTimeout); err != nil {
		_ = p.Stop(0)
		return nil, err
	}
	s.APIURL = s.Addr + "/" + strings.Trim(o.BasePath, "/")
	return s, nil
}

// awaitAddr waits for the address file (written atomically once listening) and a first answer.
func (s *Stub) awaitAddr(ctx context.Context, addrFile string, timeout time.Duration) error {
	return poll(ctx, timeout, s.Process, func() (bool, error) {
		if s.Addr == "" {
			b, err := os.ReadFile(addrFile)
			if err != nil || !strings.HasPrefix(string(b), "http://") {
				return false, nil
			}
			s.Addr = strings.TrimSpace(string(b))
		}
		_, err := s.State(ctx)
		return err == nil, nil
	})
}

// The stand-in's state, as its binary serves it at GET /_stub/state.
type (
	StubState = nomadstub.State
	StubUser  = nomadstub.UserState
	StubPAT   = nomadstub.PATState
)

// ParseStubTime reads a datetime of the stand-in's state (created_at, revoked_at, ...): UTC, with or
// without a fraction, as NOMAD writes them.
func ParseStubTime(s string) (time.Time, error) {
	return time.Parse(time.RFC3339Nano, s)
}

// State reads the stand-in's whole store.
func (s *Stub) State(ctx context.Context) (*StubState, error) {
	var st StubState
	if err := s.admin(ctx, http.MethodGet, "state", nil, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// Authenticates asks the stand-in whether raw is an active PAT right now (no side effects).
func (s *Stub) Authenticates(ctx context.Context, raw []byte) (bool, error) {
	var out struct {
		Active bool `json:"active"`
	}
	if err := s.admin(ctx, http.MethodPost, "authenticates", raw, &out); err != nil {
		return false, err
	}
	return out.Active, nil
}

// AddUser adds a Keycloak account to the stand-in (POST /_stub/users), e.g. one bot per spec, so that
// the PATs of one spec never count among another's. It returns the account's NOMAD user id.
func (s *Stub) AddUser(ctx context.Context, name, password string) (string, error) {
	var out struct {
		UserID string `json:"user_id"`
	}
	q := url.Values{"username": {name}, "password": {password}}
	if err := s.admin(ctx, http.MethodPost, "users?"+q.Encode(), nil, &out); err != nil {
		return "", err
	}
	return out.UserID, nil
}

// RevokePAT revokes a PAT out of band, as its owner could in NOMAD's UI (POST /_stub/revoke); the
// operator is not told. A PAT the stand-in does not know is an error.
func (s *Stub) RevokePAT(ctx context.Context, id string) error {
	return s.admin(ctx, http.MethodPost, "revoke?"+url.Values{"id": {id}}.Encode(), nil, nil)
}

// Calls reads the request counts per operation (GET /_stub/calls): login, create, list, get,
// revoke, rotate, openapi. They are counted over all accounts since the stand-in started.
func (s *Stub) Calls(ctx context.Context) (map[string]int, error) {
	out := map[string]int{}
	if err := s.admin(ctx, http.MethodGet, "calls", nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// Issuer is the issuer URL of the stand-in's Keycloak realm, what a NomadConnection's
// spec.credentials.oidc.issuerURL takes.
func (s *Stub) Issuer(ctx context.Context) (string, error) {
	var rs nomadstub.RealmState
	if err := s.admin(ctx, http.MethodGet, "realm", nil, &rs); err != nil {
		return "", err
	}
	return rs.Issuer, nil
}

// IssueRefreshToken mints a refresh token of the realm for user at client nomad_public, as if the
// user had signed in in a browser (POST /_stub/realm/refresh-tokens); offline gives an offline token.
func (s *Stub) IssueRefreshToken(ctx context.Context, user string, offline bool) (string, error) {
	var out struct {
		RefreshToken string `json:"refresh_token"`
	}
	q := url.Values{"username": {user}, "offline": {fmt.Sprint(offline)}}
	if err := s.admin(ctx, http.MethodPost, "realm/refresh-tokens?"+q.Encode(), nil, &out); err != nil {
		return "", err
	}
	return out.RefreshToken, nil
}

// RevokeSessions signs the user out of the realm (POST /_stub/realm/revoke-sessions): every refresh
// token of the user is refused from then on.
func (s *Stub) RevokeSessions(ctx context.Context, user string) error {
	return s.admin(ctx, http.MethodPost, "realm/revoke-sessions?"+url.Values{"username": {user}}.Encode(), nil, nil)
}

// Admin calls another admin route, e.g. Admin(ctx, "POST", "clock/advance?by=1h", nil, nil).
func (s *Stub) Admin(ctx context.Context, method, route string, body []byte, out any) error {
	return s.admin(ctx, method, route, body, out)
}

func (s *Stub) admin(ctx context.Context, method, route string, body []byte, out any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.Addr+"/_stub/"+route, rd)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("nomad-stub %s /_stub/%s: %d %s", method, route, resp.StatusCode, Redact(strings.TrimSpace(string(b))))
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	return json.Unmarshal(b, out)
}

// poll calls check every 100 ms until it says done, it fails, the timeout passes, ctx ends or p exits.
func poll(ctx context.Context, timeout time.Duration, p *Process, check func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, err := check()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-p.Done():
			_, werr := p.Exited()
			return fmt.Errorf("%s exited while starting (%v); last log lines:\n%s", p.Name, werr, p.Tail(20))
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("%s did not come up within %s; last log lines:\n%s", p.Name, timeout, p.Tail(20))
			}
			return ctx.Err()
		case <-tick.C:
		}
	}
}
