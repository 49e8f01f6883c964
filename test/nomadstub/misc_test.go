package nomadstub

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestOffsetClock(t *testing.T) {
	c := NewOffsetClock()
	before := time.Now()
	c.Advance(48 * time.Hour)
	c.Advance(-time.Hour)
	now := c.Now()
	if d := now.Sub(before); d < 47*time.Hour || d > 47*time.Hour+time.Minute {
		t.Fatalf("Now moved by %v, want ~47h", d)
	}
	if s := c.Since(before); s < 47*time.Hour {
		t.Fatalf("Since = %v", s)
	}
}

func TestFormatTime(t *testing.T) {
	tests := []struct {
		in   time.Time
		want string
	}{
		{time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), "2026-01-02T03:04:05Z"},
		{time.Date(2026, 1, 2, 3, 4, 5, 123000000, time.UTC), "2026-01-02T03:04:05.123000Z"},
		{time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC), "2026-01-02T03:04:05.123456Z"},
		{time.Date(2026, 1, 2, 3, 4, 5, 999, time.UTC), "2026-01-02T03:04:05Z"}, // below a microsecond
		{time.Date(2026, 1, 2, 4, 4, 5, 0, time.FixedZone("CET", 3600)), "2026-01-02T03:04:05Z"},
	}
	for _, tc := range tests {
		if got := formatTime(tc.in); got != tc.want {
			t.Errorf("formatTime(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestParseDatetime(t *testing.T) {
	want := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, in := range []string{
		"2026-01-02T03:04:05Z", "2026-01-02T03:04:05", "2026-01-02 03:04:05", "2026-01-02T04:04:05+01:00",
		"2026-01-02T03:04:05.000000Z", "2026-01-02t03:04:05z", "1767323045",
	} {
		got, err := parseDatetime(in)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseDatetime(%q) = %v, %v", in, got, err)
		}
	}
	if got, err := parseDatetime("2026-01-02"); err != nil || !got.Equal(time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("date only = %v, %v", got, err)
	}
	for _, bad := range []string{"", "yesterday", "2026-13-01", "2026-01-02T25:00:00"} {
		if _, err := parseDatetime(bad); err == nil {
			t.Errorf("parseDatetime(%q) accepted", bad)
		}
	}
}

func TestPythonReprs(t *testing.T) {
	tests := []struct{ got, want string }{
		{pyList([]string{"tokens:create", "tokens:delete"}), "['tokens:create', 'tokens:delete']"},
		{pySet([]string{"b", "a"}), "{'a', 'b'}"},
		{pyRepr("it's"), `"it's"`},
		{pyRepr(`both ' and "`), `'both \' and "'`},
		{pyRepr("back\\slash\n"), `'back\\slash\n'`},
		{pyRepr("bell\a"), `'bell\x07'`},
		{pyRepr("ümlaut"), "'ümlaut'"},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("got %s, want %s", tc.got, tc.want)
		}
	}
}

func TestValidScopesListsTheContract(t *testing.T) {
	got := ValidScopes()
	if len(got) != 37 {
		t.Fatalf("%d scopes: %v", len(got), got)
	}
	for _, s := range got {
		if strings.Contains(s, "*") || strings.HasPrefix(s, "uploads_bundle") {
			t.Fatalf("%q must not be valid", s)
		}
	}
}

func TestCanonicalObjectID(t *testing.T) {
	for in, want := range map[string]string{
		"0123456789abcdef01234567": "0123456789abcdef01234567",
		"0123456789ABCDEF01234567": "0123456789abcdef01234567",
		"0123456789abcdef0123456":  "",
		"0123456789abcdef0123456g": "",
	} {
		got, ok := canonicalObjectID(in)
		if got != want || ok != (want != "") {
			t.Errorf("canonicalObjectID(%q) = %q, %v", in, got, ok)
		}
	}
}

// TestConcurrentCreatesRespectTheLimit: handlers are atomic, so racing creates cannot exceed
// pat_max_active_per_user.
func TestConcurrentCreatesRespectTheLimit(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.MaxActivePerUser = 5 })
	kc := h.botToken()
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	for range 20 {
		wg.Go(func() {
			r := h.do(http.MethodPost, h.v1("/pats"), kc, patBody("race", []string{"uploads:read"}, 1))
			mu.Lock()
			codes[r.status]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if codes[201] != 5 || codes[400] != 15 {
		t.Fatalf("status counts = %v", codes)
	}
	ids := map[string]bool{}
	for _, p := range h.srv.PATs(botUser) {
		ids[p.ID] = true
	}
	if len(ids) != 5 {
		t.Fatalf("ids not unique: %v", ids)
	}
}

func TestNewDefaults(t *testing.T) {
	s := New(Options{})
	if s.base != "/nomad-oasis/api" || s.maxLifetimeDays != nil || s.maxActivePerUser != 100 || s.accessTokenTTL != 300*time.Second || !s.servePats || !s.serveAuthPats || s.legacyList {
		t.Fatalf("zero Options: %+v", s)
	}
	d := DefaultOptions()
	if d.MaxLifetimeDays == nil || *d.MaxLifetimeDays != 365 {
		t.Fatal("DefaultOptions must set 365 days")
	}
	// The caller's pointer is copied, not kept.
	days := 10
	s = New(Options{MaxLifetimeDays: &days})
	days = 20
	if *s.maxLifetimeDays != 10 {
		t.Fatal("Options.MaxLifetimeDays aliased")
	}
}
