package nomadstub

import (
	"bytes"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"
)

// maxLoggedRequests bounds the request log of a long-running stand-in (the binary); the oldest
// entries are dropped beyond it.
const maxLoggedRequests = 1 << 16

// Request is one request that reached an operation's handler (as Calls counts them: faults, 401s
// and 422s included; routing 404/405/307 and admin routes not).
type Request struct {
	// At is when the handler received it, in real time (time.Now), whatever the stand-in's own
	// clock says: a client's rate limiter runs in real time, and an OffsetClock or FakeClock must
	// not distort the spacing of requests.
	At time.Time
	// Op is the operation: OpLogin, OpCreate, OpList, OpGet, OpRevoke, OpRotate, OpOpenAPI or
	// OpRealmToken.
	Op string
	// User is the username the request acted as: the login form's username (known or not), or the
	// owner of its bearer credential (an access token, also one dropped by ExpireAccessTokens or
	// expired, or a PAT). At the realm's token endpoint: the password grant's username, the owner
	// of a refresh token or code, or the client's service-account user. "" for an anonymous
	// request or an unknown credential.
	User string
}

// requestLog is the log behind Requests. It has its own lock: handlers hold Server.mu for a whole
// operation, and recording happens before the handler runs.
type requestLog struct {
	mu      sync.Mutex
	entries []Request
}

func (l *requestLog) add(r Request) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.entries) >= maxLoggedRequests {
		l.entries = append(l.entries[:0], l.entries[len(l.entries)-maxLoggedRequests/2:]...)
	}
	l.entries = append(l.entries, r)
}

// RequestLog returns every logged request, oldest first (by arrival time).
func (s *Server) RequestLog() []Request {
	s.requests.mu.Lock()
	out := append([]Request(nil), s.requests.entries...)
	s.requests.mu.Unlock()
	// Concurrent requests may be appended in a slightly different order than they arrived.
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	return out
}

// Requests returns the logged requests made as user (a username; "" gives the anonymous ones,
// such as openapi.json), oldest first. The log is never reset by ResetCalls; filter by At instead.
func (s *Server) Requests(user string) []Request {
	var out []Request
	for _, r := range s.RequestLog() {
		if r.User == user {
			out = append(out, r)
		}
	}
	return out
}

// logRequest records r for op, before any fault or handler runs, so that faulted and refused
// requests count too.
func (s *Server) logRequest(r *http.Request, op string) {
	at := time.Now()
	s.requests.add(Request{At: at, Op: op, User: s.requestUser(r, op)})
}

// requestUser says whom a request acts as, without side effects: no last_used_at update, and the
// login body is read and put back for the handler.
func (s *Server) requestUser(r *http.Request, op string) string {
	switch op {
	case OpLogin:
		return peekForm(r)["username"]
	case OpRealmToken:
		return s.realmRequestUser(r, peekForm(r))
	}
	token, fromHeader := bearerCredential(r)
	if token == "" {
		return ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var userID string
	if strings.HasPrefix(token, patPrefix) {
		if !fromHeader {
			return ""
		}
		if p := s.st.byDigest[digestOf(token)]; p != nil {
			userID = p.userID
		}
	} else if looksLikeJWT(token) {
		var ac accessClaims
		if _, _, _, err := splitJWT(token, &ac); err == nil {
			userID = s.realm.issuedTo[ac.Jti]
		}
	} else {
		userID = s.st.issuedTo[token]
	}
	if u := s.st.usersByID[userID]; u != nil {
		return u.name
	}
	return ""
}

// peekForm reads the form from a copy of the body and restores the body for the handler.
func peekForm(r *http.Request) map[string]string {
	if r.Body == nil {
		return map[string]string{}
	}
	buf, err := io.ReadAll(io.LimitReader(r.Body, maxFormBytes+1))
	rest := r.Body
	r.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(buf), rest), rest}
	if err != nil {
		return map[string]string{}
	}
	peek := r.Clone(r.Context())
	peek.Body = io.NopCloser(bytes.NewReader(buf))
	peek.Form, peek.PostForm, peek.MultipartForm = nil, nil, nil
	return readForm(peek)
}
