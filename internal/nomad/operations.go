package nomad

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
)

// wirePAT is NOMAD's PATResponse as sent (nomad-pat-api.md §3).
type wirePAT struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Description *string   `json:"description"`
	Scopes      []string  `json:"scopes"`
	Revoked     bool      `json:"revoked"`
	CreatedAt   *wireTime `json:"created_at"`
	ExpiredAt   *wireTime `json:"expired_at"`
	LastUsedAt  *wireTime `json:"last_used_at"`
}

// unusable says why a decoded PAT cannot be handed to the controllers, or "". NOMAD always sends
// both fields: without an id a PAT can be neither tracked nor revoked, and without created_at its
// issuance would date from year 1, so that it looked due for renewal at once.
func (w *wirePAT) unusable() string {
	switch {
	case w.ID == "":
		return "a PAT without id"
	case w.CreatedAt == nil || w.CreatedAt.IsZero():
		return "a PAT without created_at"
	}
	return ""
}

func (w *wirePAT) pat() PAT {
	p := PAT{
		ID:         w.ID,
		Name:       w.Name,
		Scopes:     w.Scopes,
		Revoked:    w.Revoked,
		ExpiresAt:  w.ExpiredAt.ptr(),
		LastUsedAt: w.LastUsedAt.ptr(),
	}
	if w.Description != nil {
		p.Description = *w.Description
	}
	if w.CreatedAt != nil {
		p.CreatedAt = w.CreatedAt.Time
	}
	return p
}

// createBody is POST {pats}'s JSON. ExpiresInDays has no omitempty on purpose: an omitted key means
// 30 days to NOMAD, so "never expires" must be an explicit null.
type createBody struct {
	Metadata struct {
		Name        string   `json:"name"`
		Scopes      []string `json:"scopes"`
		Description string   `json:"description,omitempty"`
	} `json:"metadata"`
	ExpiresInDays *int `json:"expires_in_days"`
}

// creationReply is PATCreationResponse, the only answer that ever carries the raw token.
type creationReply struct {
	PAT      *wirePAT `json:"pat"`
	RawToken string   `json:"raw_token"`
}

// Create mints a PAT (nomad-pat-api.md §4.1).
func (c *HTTPClient) Create(ctx context.Context, req CreateRequest) (*IssuedToken, error) {
	var b createBody
	b.Metadata.Name = req.Name
	b.Metadata.Scopes = req.Scopes
	if b.Metadata.Scopes == nil {
		// null would be a 422 about types; [] gets NOMAD's own "At least one scope" message.
		b.Metadata.Scopes = []string{}
	}
	b.Metadata.Description = req.Description
	b.ExpiresInDays = req.ExpiresInDays
	body, err := json.Marshal(b)
	if err != nil {
		return nil, c.newError(opCreate, CodeBadRequest, 0, "cannot encode request: "+err.Error())
	}
	var out *IssuedToken
	err = c.onPATs(ctx, func(prefix string) error {
		rep, err := c.call(ctx, request{
			op: opCreate, method: http.MethodPost, path: prefix, body: body, contentType: "application/json",
		})
		if err != nil {
			return err
		}
		out, err = c.issued(opCreate, rep)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Get inspects one PAT (nomad-pat-api.md §4.3).
func (c *HTTPClient) Get(ctx context.Context, id string) (*PAT, error) {
	if err := c.checkID(opGet, id); err != nil {
		return nil, err
	}
	var out *PAT
	err := c.onPATs(ctx, func(prefix string) error {
		rep, err := c.call(ctx, request{op: opGet, method: http.MethodGet, path: prefix + "/" + url.PathEscape(id)})
		if err != nil {
			return err
		}
		var w wirePAT
		if err := json.Unmarshal(rep.body, &w); err != nil {
			return c.badAnswer(opGet, rep, "not a PAT: "+err.Error())
		}
		if why := w.unusable(); why != "" {
			return c.badAnswer(opGet, rep, why)
		}
		p := w.pat()
		out = &p
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Revoke revokes a PAT (nomad-pat-api.md §4.4). NOMAD answers 204 for an already revoked PAT and
// 404 once it has been pruned; both mean the PAT can no longer authenticate, which is all a caller
// of Revoke wants. A framework 404 (wrong path) is not success and is returned.
func (c *HTTPClient) Revoke(ctx context.Context, id string) error {
	if err := c.checkID(opRevoke, id); err != nil {
		return err
	}
	err := c.onPATs(ctx, func(prefix string) error {
		_, err := c.call(ctx, request{op: opRevoke, method: http.MethodDelete, path: prefix + "/" + url.PathEscape(id)})
		return err
	})
	if IsNotFound(err) {
		return nil
	}
	return err
}

// Rotate calls NOMAD's rotate endpoint (nomad-pat-api.md §4.5, §5): the old PAT is revoked before the
// new one is validated, so any 400 here may have left the user with no token at all.
func (c *HTTPClient) Rotate(ctx context.Context, id string) (*IssuedToken, error) {
	if err := c.checkID(opRotate, id); err != nil {
		return nil, err
	}
	var out *IssuedToken
	err := c.onPATs(ctx, func(prefix string) error {
		rep, err := c.call(ctx, request{
			op: opRotate, method: http.MethodPost, path: prefix + "/" + url.PathEscape(id) + "/rotate",
		})
		if err != nil {
			return err
		}
		out, err = c.issued(opRotate, rep)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Check logs in and resolves the PAT path. A configured path is probed too, so that a wrong
// patPath shows up as the connection's readiness rather than as every token's failure.
func (c *HTTPClient) Check(ctx context.Context) (PATPath, error) {
	if _, err := c.tokens.get(ctx); err != nil {
		return "", err
	}
	if c.paths.mode == PATPathAuto {
		return c.patPath(ctx)
	}
	err := c.probePATPath(ctx, c.paths.mode)
	if CodeOf(err) == CodePathNotFound {
		return "", c.newError(opDetect, CodePathNotFound, http.StatusNotFound, fmt.Sprintf(
			"%s%s answered 404 Not Found: patPath %s does not match this NOMAD; use Auto",
			c.root, c.paths.mode.prefix(), c.paths.mode))
	}
	if err != nil {
		return "", err
	}
	return c.paths.mode, nil
}

// issued decodes a PATCreationResponse. Any problem is transient: NOMAD may well have created the
// PAT, and the controllers find and revoke such orphans by listing.
func (c *HTTPClient) issued(op string, rep *reply) (*IssuedToken, error) {
	var cr creationReply
	if err := json.Unmarshal(rep.body, &cr); err != nil {
		// The error from encoding/json names types and offsets only, never the input.
		return nil, c.badAnswer(op, rep, "not a PAT creation response: "+err.Error())
	}
	if cr.PAT == nil || cr.RawToken == "" {
		return nil, c.badAnswer(op, rep, "PAT creation response without pat or raw_token")
	}
	if why := cr.PAT.unusable(); why != "" {
		return nil, c.badAnswer(op, rep, "PAT creation response with "+why)
	}
	return &IssuedToken{PAT: cr.PAT.pat(), RawToken: cr.RawToken}, nil
}

func (c *HTTPClient) checkID(op, id string) error {
	if id == "" {
		return c.newError(op, CodeBadRequest, 0, "empty PAT id")
	}
	return nil
}
