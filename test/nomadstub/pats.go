package nomadstub

import (
	"math/big"
	"net/http"
	"strconv"
	"time"
)

// patJSON is NOMAD's PATResponse, fields in its declaration order.
type patJSON struct {
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	Scopes      []string `json:"scopes"`
	Description *string  `json:"description"`
	Revoked     bool     `json:"revoked"`
	CreatedAt   string   `json:"created_at"`
	ExpiredAt   *string  `json:"expired_at"`
	LastUsedAt  *string  `json:"last_used_at"`
}

// patCreationJSON is PATCreationResponse, the only place a raw token ever appears.
type patCreationJSON struct {
	PAT      patJSON `json:"pat"`
	RawToken string  `json:"raw_token"`
}

// toJSON renders a stored record; format picks V-B/C ("Z") or V-A (naive) datetimes.
func (p *patRecord) toJSON(format func(time.Time) string) patJSON {
	opt := func(t *time.Time) *string {
		if t == nil {
			return nil
		}
		s := format(*t)
		return &s
	}
	scopes := append([]string{}, p.scopes...)
	return patJSON{
		ID: p.id, Name: p.name, Scopes: scopes, Description: p.description, Revoked: p.revoked,
		CreatedAt: format(p.createdAt), ExpiredAt: opt(p.expiredAt), LastUsedAt: opt(p.lastUsedAt),
	}
}

// created is what createPAT hands back: the stored record, and the unrounded times that the
// create/rotate response shows (microseconds, whereas the store keeps milliseconds).
type created struct {
	rec       *patRecord
	raw       string
	createdAt time.Time
	expiredAt *time.Time
}

func (c created) toJSON() patCreationJSON {
	j := c.rec.toJSON(formatTime)
	j.CreatedAt = formatTime(responseTime(c.createdAt))
	if c.expiredAt != nil {
		e := formatTime(responseTime(*c.expiredAt))
		j.ExpiredAt = &e
	}
	return patCreationJSON{PAT: j, RawToken: c.raw}
}

// createFailure is a non-201 outcome of createPAT.
type createFailure struct {
	status int
	detail string
	// overflow marks Python's OverflowError for an expiry past year 9999 (a 500, not a 400).
	overflow bool
}

// maxDate is Python's datetime.max: an expiry beyond it raises OverflowError in NOMAD.
var maxDate = time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC)

// createPAT is V-C's PATService.create: validation 2-6, then the active-count limit (7), then the
// insert. Caller holds s.mu.
func (s *Server) createPAT(userID, name string, description *string, scopes []string, days *big.Int) (created, *createFailure) {
	if d := validateCreation(scopes, days, s.maxLifetimeDays); d != "" {
		return created{}, &createFailure{status: http.StatusBadRequest, detail: d}
	}
	now := s.clock.Now().UTC()
	if s.st.countActive(userID, now) >= s.maxActivePerUser {
		return created{}, &createFailure{status: http.StatusBadRequest,
			detail: "Maximum number of active PAT (" + strconv.Itoa(s.maxActivePerUser) + ") reached."}
	}
	var expires *time.Time
	if days != nil {
		limit := int64(maxDate.Sub(now) / (24 * time.Hour))
		if !days.IsInt64() || days.Int64() > limit {
			return created{}, &createFailure{status: http.StatusInternalServerError, overflow: true}
		}
		e := now.AddDate(0, 0, int(days.Int64()))
		expires = &e
	}
	raw := newRawToken()
	s.st.seq++
	rec := &patRecord{
		id:          s.st.newObjectID(now),
		userID:      userID,
		name:        name,
		description: description,
		scopes:      append([]string{}, scopes...),
		digest:      digestOf(raw),
		createdAt:   storedTime(now),
		seq:         s.st.seq,
	}
	if expires != nil {
		e := storedTime(*expires)
		rec.expiredAt = &e
	}
	s.st.pats[rec.id] = rec
	s.st.byDigest[rec.digest] = rec
	return created{rec: rec, raw: raw, createdAt: now, expiredAt: expires}, nil
}

func writeCreateFailure(w http.ResponseWriter, f *createFailure) {
	if f.overflow {
		writeServerError(w, "date value out of range", "OverflowError")
		return
	}
	writeDetail(w, f.status, f.detail)
}

// handleCreate is POST {pats}: body parse (pre-auth), auth, body validation, the router's
// empty-scope check, then the service (nomad-pat-api.md §4.1).
func (s *Server) handleCreate(w http.ResponseWriter, r *http.Request, _ string) {
	body, jsonErrs := readJSONBody(r)
	if len(jsonErrs) > 0 {
		writeValidation(w, jsonErrs)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.authorize(w, r, scopeTokensCreate)
	if !ok {
		return
	}
	req, errs := decodeCreateRequest(body)
	if len(errs) > 0 {
		writeValidation(w, errs)
		return
	}
	if len(req.scopes) == 0 {
		writeDetail(w, http.StatusBadRequest, detailNoScopes)
		return
	}
	res, fail := s.createPAT(c.userID, req.name, req.description, req.scopes, req.days)
	if fail != nil {
		writeCreateFailure(w, fail)
		return
	}
	writeJSON(w, http.StatusCreated, res.toJSON())
}

// handleGet is GET {pats}/{id}: revoked and expired tokens can still be read.
func (s *Server) handleGet(w http.ResponseWriter, r *http.Request, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.callersPAT(w, r, id, scopeTokensRead)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, p.toJSON(formatTime))
}

// handleRevoke is DELETE {pats}/{id}: 204 and idempotent; the document stays, flagged.
func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.callersPAT(w, r, id, scopeTokensDelete)
	if !ok {
		return
	}
	p.revoke(s.clock.Now())
	w.WriteHeader(http.StatusNoContent)
}

// handleRotate is POST {pats}/{id}/rotate with NOMAD's hazard intact: the old token is revoked
// first and create validation runs afterwards, so a failed validation leaves the user with no
// token (nomad-pat-api.md §5). At the active limit it succeeds, because the old one no longer counts.
func (s *Server) handleRotate(w http.ResponseWriter, r *http.Request, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.callersPAT(w, r, id, scopeTokensCreate, scopeTokensDelete)
	if !ok {
		return
	}
	now := s.clock.Now()
	if !old.activeAt(now) {
		writeDetail(w, http.StatusBadRequest, detailCannotRotate)
		return
	}
	// Python's timedelta.days: whole days, floored, computed before the revocation.
	var lifetime *big.Int
	if old.expiredAt != nil {
		lifetime = big.NewInt(int64(old.expiredAt.Sub(old.createdAt) / (24 * time.Hour)))
	}
	old.revoke(now)
	res, fail := s.createPAT(old.userID, old.name, old.description, old.scopes, lifetime)
	if fail != nil {
		writeCreateFailure(w, fail)
		return
	}
	writeJSON(w, http.StatusOK, res.toJSON())
}

// callersPAT authorizes the request for scopes and returns the caller's PAT with that id. It answers
// the request itself (401, 403, or 404 for a malformed, missing or foreign id) and returns false then.
func (s *Server) callersPAT(w http.ResponseWriter, r *http.Request, id string, scopes ...string) (*patRecord, bool) {
	c, ok := s.authorize(w, r, scopes...)
	if !ok {
		return nil, false
	}
	p := s.st.owned(c.userID, id)
	if p == nil {
		writeDetail(w, http.StatusNotFound, detailTokenNotFound)
		return nil, false
	}
	return p, true
}
