// Package harness runs the real programs of this project side by side for the e2e suite and
// `make demo`: a kube-apiserver and etcd (controller-runtime's envtest), the NOMAD stand-in binary
// and the manager binary, each in its own process group with its output in a log file.
//
// Nothing it starts may outlive the program that started it. Every process is stopped with SIGTERM
// and, after a timeout, SIGKILL to its whole group; and a small reaper process (see reaper.go)
// kills whatever is still registered if this program dies without cleaning up (a test timeout, a
// panic, kill -9).
//
// Raw PATs are secrets even here: helpers that print anything pass it through Redact, and ScanFile
// reports where a leak is, never what it is.
package harness
