package monitoring

import (
	"fmt"

	"sigs.k8s.io/yaml"
)

// PrometheusRule is the part of a monitoring.coreos.com/v1 PrometheusRule these tests read.
type PrometheusRule struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Spec       struct {
		Groups []RuleGroup `json:"groups"`
	} `json:"spec"`
	// rawGroups is spec.groups as written, every field kept, for RuleFile.
	rawGroups any
}

// RuleGroup is one group of rules, as in a Prometheus rule file.
type RuleGroup struct {
	Name  string `json:"name"`
	Rules []Rule `json:"rules"`
}

// Rule is an alerting or recording rule.
type Rule struct {
	Alert       string            `json:"alert,omitempty"`
	Record      string            `json:"record,omitempty"`
	Expr        string            `json:"expr"`
	For         string            `json:"for,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// ParsePrometheusRule reads a PrometheusRule manifest; promtool checks the rules themselves.
func ParsePrometheusRule(data []byte) (*PrometheusRule, error) {
	var pr PrometheusRule
	var raw struct {
		Spec struct {
			Groups any `json:"groups"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(data, &pr); err != nil {
		return nil, err
	}
	if err := yaml.Unmarshal(data, &raw); err != nil {
		return nil, err
	}
	pr.rawGroups = raw.Spec.Groups
	if pr.APIVersion != "monitoring.coreos.com/v1" || pr.Kind != "PrometheusRule" {
		return nil, fmt.Errorf("not a monitoring.coreos.com/v1 PrometheusRule: %s %s", pr.APIVersion, pr.Kind)
	}
	if len(pr.Spec.Groups) == 0 {
		return nil, fmt.Errorf("PrometheusRule has no rule groups")
	}
	return &pr, nil
}

// RuleFile is spec of the PrometheusRule as a Prometheus rule file, the only form promtool reads.
func (pr *PrometheusRule) RuleFile() ([]byte, error) {
	return yaml.Marshal(map[string]any{"groups": pr.rawGroups})
}

// Expressions returns the expr of every rule.
func (pr *PrometheusRule) Expressions() []string {
	var exprs []string
	for _, g := range pr.Spec.Groups {
		for _, r := range g.Rules {
			exprs = append(exprs, r.Expr)
		}
	}
	return exprs
}
