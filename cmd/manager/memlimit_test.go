package main

import (
	"strings"
	"testing"
)

func TestGoMemoryLimit(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		want int64
		err  string // a part of the error; "" means none
	}{
		{name: "no limit given leaves the runtime alone", env: nil, want: 0},
		{name: "90% of a 256Mi limit", env: map[string]string{"CONTAINER_MEMORY_LIMIT": "268435456"}, want: 241591910},
		{name: "90% of a 1Gi limit", env: map[string]string{"CONTAINER_MEMORY_LIMIT": "1073741824"}, want: 966367641},
		{name: "an explicit GOMEMLIMIT wins", env: map[string]string{"GOMEMLIMIT": "100MiB", "CONTAINER_MEMORY_LIMIT": "268435456"}, want: 0},
		{name: "a unit is not bytes", env: map[string]string{"CONTAINER_MEMORY_LIMIT": "256Mi"}, err: `not "256Mi"`},
		{name: "zero is no limit", env: map[string]string{"CONTAINER_MEMORY_LIMIT": "0"}, err: "in bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := goMemoryLimit(func(k string) string { return tc.env[k] })
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("goMemoryLimit = %d, %v; want an error with %q", got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("goMemoryLimit = %d, %v; want %d", got, err, tc.want)
			}
		})
	}
}
