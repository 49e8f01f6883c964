// Command rulegroups writes the rule groups of a PrometheusRule manifest as a Prometheus rule file,
// the form promtool reads: `go run ./test/monitoring/rulegroups rules.yaml > groups.yaml`.
package main

import (
	"fmt"
	"os"

	"github.com/nomad-operator/nomad-token-operator/test/monitoring"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: rulegroups <PrometheusRule manifest>")
		os.Exit(2)
	}
	data, err := os.ReadFile(os.Args[1])
	if err == nil {
		var pr *monitoring.PrometheusRule
		if pr, err = monitoring.ParsePrometheusRule(data); err == nil {
			data, err = pr.RuleFile()
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "rulegroups: %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
	os.Stdout.Write(data)
}
