package main

import (
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// parseWatchNamespaces reads --watch-namespaces: a comma-separated list of namespace names (spaces
// around a name are allowed). "" means the whole cluster (nil). An empty entry is refused rather
// than read as "all namespaces", and so is a name that cannot be a namespace; a repeated name counts
// once.
func parseWatchNamespaces(v string) ([]string, error) {
	if strings.TrimSpace(v) == "" {
		return nil, nil
	}
	var names []string
	for i, part := range strings.Split(v, ",") {
		name := strings.TrimSpace(part)
		if name == "" {
			return nil, fmt.Errorf("entry %d is empty", i+1)
		}
		if errs := validation.IsDNS1123Label(name); len(errs) > 0 {
			return nil, fmt.Errorf("%q is not a namespace name: %s", name, strings.Join(errs, "; "))
		}
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	return names, nil
}
