package nomadstub

import "time"

// Record is a test's view of one stored PAT. Description is "" when NOMAD would send null.
// ExpiresAt is NOMAD's expired_at (nil = never expires).
type Record struct {
	ID, Name, Description string
	Scopes                []string
	Revoked               bool
	CreatedAt             time.Time
	ExpiresAt             *time.Time
	LastUsedAt            *time.Time
	RevokedAt             *time.Time
}

func (p *patRecord) record() Record {
	cp := func(t *time.Time) *time.Time {
		if t == nil {
			return nil
		}
		v := *t
		return &v
	}
	rec := Record{
		ID: p.id, Name: p.name, Scopes: append([]string{}, p.scopes...), Revoked: p.revoked,
		CreatedAt: p.createdAt, ExpiresAt: cp(p.expiredAt), LastUsedAt: cp(p.lastUsedAt), RevokedAt: cp(p.revokedAt),
	}
	if p.description != nil {
		rec.Description = *p.description
	}
	return rec
}

// LoginCount is how often the password grant was tried for one username, and how often it passed.
type LoginCount struct {
	Attempts, Succeeded int
}

// Logins returns the password grants for username since the start or the last ResetCalls: the
// requests that reached the password check, whatever their outcome (a fault injected for "login"
// answers before it, and a 422 never names a user). Usernames the stand-in does not know count too.
func (s *Server) Logins(username string) LoginCount {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logins[username]
}

// countLogin records a password grant for username. Caller holds s.mu.
func (s *Server) countLogin(username string, ok bool) {
	c := s.logins[username]
	c.Attempts++
	if ok {
		c.Succeeded++
	}
	s.logins[username] = c
}

// PATs returns every PAT of the user (revoked and expired included), newest first. Unknown users
// have none.
func (s *Server) PATs(username string) []Record {
	return s.userRecords(username, false)
}

// ActivePATs returns the user's PATs that can authenticate right now, newest first.
func (s *Server) ActivePATs(username string) []Record {
	return s.userRecords(username, true)
}

func (s *Server) userRecords(username string, activeOnly bool) []Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.st.usersByName[username]
	if u == nil {
		return nil
	}
	now := s.clock.Now()
	var out []Record
	for _, p := range s.st.userPATs(u.id) {
		if !activeOnly || p.activeAt(now) {
			out = append(out, p.record())
		}
	}
	return out
}

// Authenticates reports whether rawToken is an active PAT right now. Unlike a real request it
// leaves last_used_at alone, so tests can look without disturbing what they look at.
func (s *Server) Authenticates(rawToken string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.st.byDigest[digestOf(rawToken)]
	return p != nil && p.activeAt(s.clock.Now())
}

// RevokePAT revokes a PAT out of band, as an admin would, whoever owns it. It reports false for an
// unknown id; revoking a revoked PAT is true and changes nothing.
func (s *Server) RevokePAT(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.st.byID(id)
	if p == nil {
		return false
	}
	p.revoke(s.clock.Now())
	return true
}

// PrunePAT deletes a PAT document, as NOMAD's TTL index or admin prune eventually does for
// revoked and expired tokens; afterwards GET, revoke and rotate answer 404 for it. It reports
// false for an unknown id.
func (s *Server) PrunePAT(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.st.byID(id)
	if p == nil {
		return false
	}
	delete(s.st.pats, p.id)
	delete(s.st.byDigest, p.digest)
	return true
}
