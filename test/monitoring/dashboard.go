package monitoring

import (
	"encoding/json"
	"fmt"
	"regexp"
)

// labelValuesQuery is Grafana's label_values(metric_or_selector, label) variable query.
var labelValuesQuery = regexp.MustCompile(`^\s*label_values\((.*),\s*[A-Za-z_][A-Za-z0-9_]*\s*\)\s*$`)

// DashboardExpressions returns the PromQL of a Grafana dashboard: every panel target's expr (rows
// and nested panels included) and the selector of every label_values variable query.
func DashboardExpressions(data []byte) ([]string, error) {
	var dash map[string]any
	if err := json.Unmarshal(data, &dash); err != nil {
		return nil, err
	}
	if _, ok := dash["panels"].([]any); !ok {
		return nil, fmt.Errorf("not a Grafana dashboard: no panels")
	}
	var exprs []string
	var walkPanels func(panels []any)
	walkPanels = func(panels []any) {
		for _, p := range panels {
			panel, _ := p.(map[string]any)
			targets, _ := panel["targets"].([]any)
			for _, t := range targets {
				if target, ok := t.(map[string]any); ok {
					if e, ok := target["expr"].(string); ok && e != "" {
						exprs = append(exprs, e)
					}
				}
			}
			if nested, ok := panel["panels"].([]any); ok {
				walkPanels(nested)
			}
		}
	}
	walkPanels(dash["panels"].([]any))
	templating, _ := dash["templating"].(map[string]any)
	vars, _ := templating["list"].([]any)
	for _, v := range vars {
		variable, _ := v.(map[string]any)
		if variable["type"] != "query" {
			continue
		}
		q := variable["query"]
		if obj, ok := q.(map[string]any); ok { // newer Grafana: {"query": "...", "refId": ...}
			q = obj["query"]
		}
		s, _ := q.(string)
		m := labelValuesQuery.FindStringSubmatch(s)
		if m == nil {
			return nil, fmt.Errorf("variable %v: only label_values(<selector>, <label>) queries are understood, not %q", variable["name"], s)
		}
		exprs = append(exprs, m[1])
	}
	return exprs, nil
}
