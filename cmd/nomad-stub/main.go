// Command nomad-stub serves the NOMAD stand-in (package test/nomadstub) on a real port, for
// `make demo`, the e2e suite and manual poking with curl. It is a test tool, never a NOMAD.
//
//	nomad-stub --listen 127.0.0.1:0 --addr-file /tmp/nomad.addr --user bot:bot-password \
//	  --client ci:ci-secret:service-account-ci --rotate-refresh-tokens --authorize-user bot
//
// Besides NOMAD's API it serves NOMAD's Keycloak realm at {addr}/keycloak/auth/realms/{realm}.
// The clock is real time plus an offset that POST /_stub/clock/advance?by=720h moves; the other
// admin routes are documented in the nomadstub package (admin.go).
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nomad-operator/nomad-token-operator/test/nomadstub"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "nomad-stub:", err)
		os.Exit(1)
	}
}

// config is the parsed command line.
type config struct {
	listen          string
	users           []userFlag
	basePath        string
	maxLifetimeDays *int // nil: never-expiring tokens allowed
	maxActive       int
	accessTokenTTL  time.Duration
	disablePats     bool
	disableAuthPats bool
	legacyList      bool
	addrFile        string
	realm           string
	clients         []nomadstub.RealmClient
	rotateRefresh   bool
	authorizeUser   string
}

type userFlag struct{ name, password string }

// usersValue is the repeatable --user name:password flag. The first --user replaces the default.
type usersValue struct {
	users []userFlag
	set   bool
}

func (u *usersValue) String() string {
	names := make([]string, len(u.users))
	for i, x := range u.users {
		names[i] = x.name
	}
	return strings.Join(names, ",")
}

func (u *usersValue) Set(v string) error {
	name, password, ok := strings.Cut(v, ":")
	if !ok || name == "" {
		return errors.New("want name:password")
	}
	if !u.set {
		u.users, u.set = nil, true
	}
	u.users = append(u.users, userFlag{name, password})
	return nil
}

// clientsValue is the repeatable --client=ID:SECRET:SERVICEACCOUNTUSER flag: a realm client
// besides the built-in nomad_public. SECRET "" makes a public client; a service-account user
// (created if missing) enables client_credentials and needs a secret. Direct grants stay off.
type clientsValue struct{ clients []nomadstub.RealmClient }

func (c *clientsValue) String() string {
	ids := make([]string, len(c.clients))
	for i, x := range c.clients {
		ids[i] = x.ID
	}
	return strings.Join(ids, ",")
}

func (c *clientsValue) Set(v string) error {
	parts := strings.SplitN(v, ":", 3)
	for len(parts) < 3 {
		parts = append(parts, "")
	}
	rc := nomadstub.RealmClient{ID: parts[0], Secret: parts[1], ServiceAccountUser: parts[2]}
	switch {
	case rc.ID == "":
		return errors.New("want ID:SECRET:SERVICEACCOUNTUSER")
	case rc.ID == nomadstub.DefaultRealmClient:
		return errors.New(nomadstub.DefaultRealmClient + " is built in (NOMAD's own client)")
	case rc.ServiceAccountUser != "" && rc.Secret == "":
		return errors.New("a service account needs a confidential client (a SECRET)")
	}
	c.clients = append(c.clients, rc)
	return nil
}

// lifetimeValue is --max-lifetime-days: a positive number of days, or "none" (also "0") for
// NOMAD's pat_max_lifetime: null, which allows never-expiring tokens.
type lifetimeValue struct{ days *int }

func (l *lifetimeValue) String() string {
	if l.days == nil {
		return "none"
	}
	return strconv.Itoa(*l.days)
}

func (l *lifetimeValue) Set(v string) error {
	if strings.EqualFold(v, "none") || v == "0" {
		l.days = nil
		return nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return errors.New(`want a positive number of days, or "none"`)
	}
	l.days = &n
	return nil
}

// parseFlags turns the command line into a config; usage and errors go to out.
func parseFlags(args []string, out io.Writer) (config, error) {
	fs := flag.NewFlagSet("nomad-stub", flag.ContinueOnError)
	fs.SetOutput(out)
	c := config{}
	users := &usersValue{users: []userFlag{{"bot", "bot-password"}}}
	lifetime := &lifetimeValue{days: intPtr(nomadstub.DefaultMaxLifetimeDays)}
	clients := &clientsValue{}
	fs.StringVar(&c.listen, "listen", "127.0.0.1:8000", "address to listen on (port 0 picks a free port)")
	fs.Var(users, "user", "Keycloak account as name:password; repeatable (default bot:bot-password)")
	fs.StringVar(&c.basePath, "base-path", nomadstub.DefaultBasePath, `API base path; routes are {base}/v1/...; "/" for the root`)
	fs.Var(lifetime, "max-lifetime-days", `pat_max_lifetime in days; "none" or 0 allows never-expiring tokens`)
	fs.IntVar(&c.maxActive, "max-active", nomadstub.DefaultMaxActivePerUser, "pat_max_active_per_user")
	fs.DurationVar(&c.accessTokenTTL, "access-token-ttl", nomadstub.DefaultAccessTokenTTL, "lifetime of access tokens from /auth/token")
	fs.BoolVar(&c.disablePats, "disable-pats", false, "do not serve {base}/v1/pats (the documented prefix)")
	fs.BoolVar(&c.disableAuthPats, "disable-auth-pats", false, "do not serve {base}/v1/auth/pats (the published-source prefix)")
	fs.BoolVar(&c.legacyList, "legacy-list", false, "answer the list endpoint with V-A's bare JSON array")
	fs.StringVar(&c.addrFile, "addr-file", "", `write the actual "http://host:port" to this file once listening`)
	fs.StringVar(&c.realm, "realm", nomadstub.DefaultRealm, "Keycloak realm name; its issuer is {addr}/keycloak/auth/realms/{realm}")
	fs.Var(clients, "client", "realm client as ID:SECRET:SERVICEACCOUNTUSER (SECRET empty: public; the user enables client_credentials); repeatable")
	fs.BoolVar(&c.rotateRefresh, "rotate-refresh-tokens", false, `Keycloak's "Revoke Refresh Token": a used refresh token is refused afterwards`)
	fs.StringVar(&c.authorizeUser, "authorize-user", "", "the user the realm's authorize endpoint signs in (it has no login form)")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if c.maxActive < 1 {
		return config{}, errors.New("--max-active must be at least 1")
	}
	if c.accessTokenTTL < time.Second {
		return config{}, errors.New("--access-token-ttl must be at least 1s")
	}
	if c.realm == "" || strings.Contains(c.realm, "/") {
		return config{}, errors.New("--realm must be a non-empty name without /")
	}
	c.users, c.maxLifetimeDays, c.clients = users.users, lifetime.days, clients.clients
	return c, nil
}

func intPtr(v int) *int { return &v }

func (c config) options(clk *nomadstub.OffsetClock) nomadstub.Options {
	base := c.basePath
	if base == "" {
		base = "/"
	}
	return nomadstub.Options{
		BasePath:         base,
		Clock:            clk,
		MaxLifetimeDays:  c.maxLifetimeDays,
		MaxActivePerUser: c.maxActive,
		AccessTokenTTL:   c.accessTokenTTL,
		DisablePats:      c.disablePats,
		DisableAuthPats:  c.disableAuthPats,
		LegacyList:       c.legacyList,
		Realm:            c.realm,
	}
}

// run serves until ctx ends, then shuts down gracefully.
func run(ctx context.Context, args []string, stderr io.Writer) error {
	c, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	logger := log.New(stderr, "nomad-stub: ", log.LstdFlags|log.Lmicroseconds)
	srv := nomadstub.New(c.options(nomadstub.NewOffsetClock()))
	names := make([]string, len(c.users))
	for i, u := range c.users {
		srv.AddUser(u.name, u.password)
		names[i] = u.name
	}
	for _, rc := range c.clients {
		if err := srv.AddClient(rc); err != nil {
			return err
		}
	}
	srv.SetRefreshTokenRotation(c.rotateRefresh)
	srv.SetAuthorizeUser(c.authorizeUser)

	ln, err := net.Listen("tcp", c.listen)
	if err != nil {
		return err
	}
	addr := serverURL(ln.Addr())
	if c.addrFile != "" {
		if err := writeFileAtomic(c.addrFile, addr); err != nil {
			_ = ln.Close()
			return err
		}
		defer os.Remove(c.addrFile)
	}
	logger.Printf("serving at %s (API root %s; issuer %s; users %s; clients %s; max lifetime %s days; max active %d; access tokens %s)",
		addr, srv.APIRoot(addr), srv.IssuerURL(addr), strings.Join(names, ","), (&clientsValue{c.clients}).String(),
		(&lifetimeValue{c.maxLifetimeDays}).String(), c.maxActive, c.accessTokenTTL)

	hs := &http.Server{Handler: logRequests(logger, srv), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	logger.Printf("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// serverURL is the address clients should use; an unspecified listen IP becomes loopback.
func serverURL(a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok {
		return "http://" + a.String()
	}
	host := tcp.IP.String()
	if tcp.IP == nil || tcp.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, strconv.Itoa(tcp.Port))
}

// writeFileAtomic makes a polling script see either no file or the whole address.
func writeFileAtomic(path, content string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".nomad-stub-addr-*")
	if err != nil {
		return err
	}
	if _, err := tmp.WriteString(content); err != nil {
		_ = tmp.Close()
		_ = os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		_ = os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// logRequests logs one line per request: method, path (ids included, query and body never) and
// status. Headers are never logged: the Authorization header carries access tokens and PATs.
func logRequests(logger *log.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		status := strconv.Itoa(rec.status)
		switch {
		case rec.hijacked:
			status = "dropped"
		case rec.status == 0:
			status = "200"
		}
		logger.Printf("%s %s %s %s", r.Method, r.URL.Path, status, time.Since(start).Round(time.Microsecond))
	})
}

// statusRecorder remembers the status; it passes Hijack through so injected LoseResponse faults
// still drop the connection behind the logging wrapper.
type statusRecorder struct {
	http.ResponseWriter
	status   int
	hijacked bool
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, rw, err := http.NewResponseController(s.ResponseWriter).Hijack()
	if err == nil {
		s.hijacked = true
	}
	return conn, rw, err
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
