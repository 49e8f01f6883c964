package main

import (
	"fmt"
	"strconv"
	"strings"
)

// containerMemoryLimitEnv carries the container's memory limit in bytes: the Deployment sets it from
// the downward API (resourceFieldRef limits.memory, divisor 1).
const containerMemoryLimitEnv = "CONTAINER_MEMORY_LIMIT"

// memoryLimitShare is the share of the container's limit the Go runtime aims to stay under. The rest
// is for what the runtime's limit does not count or cannot return at once (memory mapped by the
// kernel for the process, freed pages not yet handed back), so that the collector works harder
// before the kernel's OOM killer acts, not after.
const memoryLimitShare = 0.9

// goMemoryLimit is the soft memory limit to give the Go runtime, from the environment getenv reads:
// 90% of the container's limit, or 0 for none. An explicit GOMEMLIMIT wins (the runtime has already
// read it), and a missing or unreadable limit sets none, which leaves the runtime as it was.
//
// Why not GOMEMLIMIT straight from the downward API: resourceFieldRef gives a whole number of its
// divisor, and Kubernetes allows only powers (1, 1Ki, 1Mi, ...) as divisors for memory, so it can
// say 100% of the limit but never 90%; at 100% the collector would start working hard only when
// the OOM killer is about to act anyway.
func goMemoryLimit(getenv func(string) string) (int64, error) {
	if getenv("GOMEMLIMIT") != "" {
		return 0, nil
	}
	v := strings.TrimSpace(getenv(containerMemoryLimitEnv))
	if v == "" {
		return 0, nil
	}
	limit, err := strconv.ParseInt(v, 10, 64)
	if err != nil || limit <= 0 {
		return 0, fmt.Errorf("$%s must be the container's memory limit in bytes, not %q", containerMemoryLimitEnv, v)
	}
	return int64(float64(limit) * memoryLimitShare), nil
}
