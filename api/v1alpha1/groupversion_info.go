// Package v1alpha1 contains the API of nomad-token-operator: NomadConnection (how to reach a NOMAD
// deployment and log in to it) and NomadToken (a NOMAD Personal Access Token kept in a Secret).
//
// +kubebuilder:object:generate=true
// +groupName=tokens.nomad-operator.dev
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the API group and version of every kind in this package.
	GroupVersion = schema.GroupVersion{Group: "tokens.nomad-operator.dev", Version: "v1alpha1"}

	// SchemeBuilder registers the kinds of this package with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the kinds of this package to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
