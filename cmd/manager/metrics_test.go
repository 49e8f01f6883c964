package main

import "testing"

func TestMetricsOptions(t *testing.T) {
	tests := []struct {
		name            string
		secure          bool
		certDir         string
		wantFilter      bool
		wantCertDir     string
		wantSecureServe bool
	}{
		{"secure: HTTPS behind the API server's authn/authz", true, "", true, "", true},
		{"secure with a mounted certificate", true, "/certs", true, "/certs", true},
		{"plain HTTP: no filter, and no certificate even if one is named", false, "/certs", false, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := metricsOptions(":8443", tt.secure, tt.certDir)
			if o.BindAddress != ":8443" || o.SecureServing != tt.wantSecureServe || (o.FilterProvider != nil) != tt.wantFilter || o.CertDir != tt.wantCertDir {
				t.Errorf("metricsOptions = %+v", o)
			}
		})
	}
}
