// Package monitoring reads the operator's monitoring files, config/prometheus/rules.yaml (a
// PrometheusRule) and config/grafana/nomad-token-operator.json (a Grafana dashboard), for the tests
// that check them: the metric names their PromQL uses, and the names a real scrape exposes.
//
// PromQL is read with a small lexer of its own rather than Prometheus's parser, whose module would
// pull newer versions of the Kubernetes and Prometheus client libraries into this one.
package monitoring
