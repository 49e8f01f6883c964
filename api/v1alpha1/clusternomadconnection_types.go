package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// AllowedNamespaces says which namespaces' NomadTokens may use a ClusterNomadConnection: those named,
// and those whose labels match the selector. Both empty means none.
type AllowedNamespaces struct {
	// names of namespaces allowed.
	// +listType=set
	// +optional
	Names []string `json:"names,omitempty"`
	// selector allows the namespaces whose labels match it. An empty selector ({}) matches every
	// namespace; leave it out to match none.
	// +optional
	Selector *metav1.LabelSelector `json:"selector,omitempty"`
}

// ClusterNomadConnectionSpec is a NomadConnectionSpec that NomadTokens of several namespaces may use.
type ClusterNomadConnectionSpec struct {
	NomadConnectionSpec `json:",inline"`
	// allowedNamespaces are the namespaces whose NomadTokens may use this connection; empty means none.
	// +optional
	AllowedNamespaces AllowedNamespaces `json:"allowedNamespaces,omitempty"`
	// namespacePolicies give some of the allowed namespaces ceilings of their own, on top of
	// spec.policy: a NomadToken keeps within spec.policy and within the first entry whose namespaces
	// match its own. An entry's maxTokens counts the live PATs of the namespaces it is the first match of.
	// +kubebuilder:validation:MaxItems=64
	// +listType=atomic
	// +optional
	NamespacePolicies []NamespacePolicy `json:"namespacePolicies,omitempty"`
}

// NamespacePolicy is a ceiling for the NomadTokens of some namespaces.
type NamespacePolicy struct {
	// namespaces the policy applies to, by name and/or label selector (as allowedNamespaces).
	Namespaces AllowedNamespaces `json:"namespaces"`
	// policy is their ceiling.
	Policy ConnectionPolicy `json:"policy"`
}

// ClusterNomadConnection is a NOMAD deployment and bot account that a platform team shares with the
// namespaces it names. Its credentials (and CA) Secret lives in the operator's namespace (the
// manager's --cluster-resource-namespace), which tenants cannot read.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=cnomadconn,categories=nomad
// +kubebuilder:printcolumn:name="URL",type=string,JSONPath=`.spec.url`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Active",type=integer,JSONPath=`.status.activeTokens`
// +kubebuilder:printcolumn:name="Tokens",type=integer,JSONPath=`.status.nomadTokens`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ClusterNomadConnection struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   ClusterNomadConnectionSpec `json:"spec"`
	Status NomadConnectionStatus      `json:"status,omitempty"`
}

// ClusterNomadConnectionList is a list of ClusterNomadConnections.
//
// +kubebuilder:object:root=true
type ClusterNomadConnectionList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ClusterNomadConnection `json:"items"`
}

func init() {
	SchemeBuilder.Register(&ClusterNomadConnection{}, &ClusterNomadConnectionList{})
}
