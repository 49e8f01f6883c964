package main

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseWatchNamespaces(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []string
		err      string // a part of the error; "" means none
	}{
		{name: "unset means the whole cluster", in: "", want: nil},
		{name: "blank means the whole cluster", in: "  ", want: nil},
		{name: "one namespace", in: "team-a", want: []string{"team-a"}},
		{name: "a list, in its order", in: "team-b,team-a", want: []string{"team-b", "team-a"}},
		{name: "spaces around names", in: " team-a , team-b ", want: []string{"team-a", "team-b"}},
		{name: "a repeated name counts once", in: "team-a,team-b,team-a", want: []string{"team-a", "team-b"}},
		{name: "an empty entry is refused", in: "team-a,,team-b", err: "entry 2 is empty"},
		{name: "a trailing comma is refused", in: "team-a,", err: "entry 2 is empty"},
		{name: "upper case is no namespace", in: "Team-A", err: `"Team-A" is not a namespace name`},
		{name: "a dot is no namespace", in: "team.a", err: `"team.a" is not a namespace name`},
		{name: "a leading dash is no namespace", in: "-team", err: `"-team" is not a namespace name`},
		{name: "64 characters are too long", in: strings.Repeat("a", 64), err: "is not a namespace name"},
		{name: "a space inside is no namespace", in: "team a", err: `"team a" is not a namespace name`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseWatchNamespaces(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("parseWatchNamespaces(%q) = %v, %v; want an error with %q", tc.in, got, err, tc.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("parseWatchNamespaces(%q) = %#v, %v; want %#v", tc.in, got, err, tc.want)
			}
		})
	}
}
