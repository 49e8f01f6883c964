package nomad

import (
	"encoding/json"
	"testing"
	"time"
)

func TestParseTime(t *testing.T) {
	want := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		name, in string
		want     time.Time
		wantErr  bool
	}{
		{name: "V-B/C with Z and microseconds", in: "2026-01-02T03:04:05.123000Z", want: want.Add(123 * time.Millisecond)},
		{name: "V-B/C with Z and no fraction", in: "2026-01-02T03:04:05Z", want: want},
		{name: "V-A naive with microseconds is UTC", in: "2026-01-02T03:04:05.123456", want: want.Add(123456 * time.Microsecond)},
		{name: "naive without fraction is UTC", in: "2026-01-02T03:04:05", want: want},
		{name: "a +02:00 offset is converted to UTC", in: "2026-01-02T05:04:05+02:00", want: want},
		{name: "a +00:00 offset", in: "2026-01-02T03:04:05.5+00:00", want: want.Add(500 * time.Millisecond)},
		{name: "a -0130 offset without colon", in: "2026-01-02T01:34:05-0130", want: want},
		{name: "a space instead of T (Python str)", in: "2026-01-02 03:04:05.000001", want: want.Add(time.Microsecond)},
		{name: "nanoseconds", in: "2026-01-02T03:04:05.000000001Z", want: want.Add(1)},
		{name: "a date only is rejected", in: "2026-01-02", wantErr: true},
		{name: "garbage is rejected", in: "yesterday", wantErr: true},
		{name: "empty is rejected", in: "", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseTime(tc.in)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("ParseTime(%q) = %v, want an error", tc.in, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseTime(%q): %v", tc.in, err)
			}
			if !got.Equal(tc.want) || got.Location() != time.UTC {
				t.Fatalf("ParseTime(%q) = %v (%v), want %v in UTC", tc.in, got, got.Location(), tc.want)
			}
		})
	}
}

func TestWirePATDecodesNullsAndNaiveTimes(t *testing.T) {
	var w wirePAT
	body := `{"id":"665f1c000000000000000001","name":"n","scopes":["uploads:read"],"description":null,"revoked":false,
		"created_at":"2026-01-02T03:04:05.123000","expired_at":null,"last_used_at":"2026-01-03T00:00:00Z"}`
	if err := json.Unmarshal([]byte(body), &w); err != nil {
		t.Fatal(err)
	}
	p := w.pat()
	if p.ExpiresAt != nil || p.Description != "" {
		t.Fatalf("null expired_at/description must decode as never-expires/empty, got %+v", p)
	}
	if p.LastUsedAt == nil || !p.LastUsedAt.Equal(time.Date(2026, 1, 3, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("last_used_at = %v", p.LastUsedAt)
	}
	if p.CreatedAt.Location() != time.UTC || p.CreatedAt.Nanosecond() != 123000000 {
		t.Fatalf("created_at = %v", p.CreatedAt)
	}
	if err := json.Unmarshal([]byte(`{"created_at":12}`), &w); err == nil {
		t.Fatal("a number is not a datetime")
	}
}

func TestFormatTimeIsUTCRFC3339(t *testing.T) {
	in := time.Date(2026, 1, 2, 5, 4, 5, 0, time.FixedZone("x", 2*3600))
	if got := formatTime(in); got != "2026-01-02T03:04:05Z" {
		t.Fatalf("formatTime = %q", got)
	}
}
