package chart

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestChartEgressNetworkPolicy(t *testing.T) {
	t.Run("off by default", func(t *testing.T) {
		if hasKind(render(t, nil), "NetworkPolicy") {
			t.Error("the default values render a NetworkPolicy")
		}
	})

	objs := render(t, []string{"values-networkpolicy.yaml"})
	np := find(objs, "NetworkPolicy", releaseNamespace, releaseName+"-controller-manager")
	if np == nil {
		t.Fatal("networkPolicy.enabled rendered no NetworkPolicy")
	}
	t.Run("it selects the manager's pods and restricts only egress", func(t *testing.T) {
		deploy := find(objs, "Deployment", releaseNamespace, releaseName+"-controller-manager")
		want, _, _ := unstructured.NestedMap(deploy.Object, "spec", "selector", "matchLabels")
		got, _, _ := unstructured.NestedMap(np.Object, "spec", "podSelector", "matchLabels")
		if !reflect.DeepEqual(got, want) {
			t.Errorf("podSelector %v; want the Deployment's selector %v", got, want)
		}
		if types, _, _ := unstructured.NestedStringSlice(np.Object, "spec", "policyTypes"); !reflect.DeepEqual(types, []string{"Egress"}) {
			t.Errorf("policyTypes %v; want [Egress]: probes and metrics scrapes come in", types)
		}
	})

	egress, _, _ := unstructured.NestedSlice(np.Object, "spec", "egress")
	// rules lists each egress rule as "to" peers and ports, in a form easy to compare.
	var rules []string
	for _, r := range egress {
		rule := r.(map[string]any)
		var to, ports []string
		for _, p := range rule["to"].([]any) {
			peer := p.(map[string]any)
			switch {
			case peer["ipBlock"] != nil:
				b := peer["ipBlock"].(map[string]any)
				s := b["cidr"].(string)
				if ex, ok := b["except"].([]any); ok {
					for _, e := range ex {
						s += " except " + e.(string)
					}
				}
				to = append(to, s)
			default:
				ns, _, _ := unstructured.NestedStringMap(peer, "namespaceSelector", "matchLabels")
				pod, _, _ := unstructured.NestedStringMap(peer, "podSelector", "matchLabels")
				to = append(to, "ns "+ns["kubernetes.io/metadata.name"]+" pods "+pod["k8s-app"])
			}
		}
		for _, p := range rule["ports"].([]any) {
			port := p.(map[string]any)
			ports = append(ports, fmt.Sprintf("%s/%v", port["protocol"], port["port"]))
		}
		rules = append(rules, strings.Join(to, ",")+" : "+strings.Join(ports, ","))
	}
	for _, want := range []string{
		"ns kube-system pods kube-dns : UDP/53,TCP/53",
		"192.0.2.1/32,192.0.2.2/32 : TCP/6443",
		"203.0.113.10/32 : TCP/443",
		"198.51.100.0/24 except 198.51.100.128/25 : TCP/443,TCP/8443",
		"ns nomad-oasis pods  : TCP/8000",
	} {
		if !slices.Contains(rules, want) {
			t.Errorf("no egress rule %q; rules:\n%s", want, strings.Join(rules, "\n"))
		}
	}
	if len(rules) != 5 {
		t.Errorf("%d egress rules; want 5:\n%s", len(rules), strings.Join(rules, "\n"))
	}
}

// A NetworkPolicy that leaves out the API server or NOMAD would break the manager: refused, with
// what to set.
func TestChartRefusesAnEgressPolicyThatWouldCutTheManagerOff(t *testing.T) {
	for _, tc := range []struct {
		set  []string
		want string
	}{
		{[]string{"networkPolicy.enabled=true", "networkPolicy.egress.nomad[0].cidr=203.0.113.10/32", "networkPolicy.egress.nomad[0].ports[0]=443"},
			"needs networkPolicy.egress.apiServer.cidrs"},
		{[]string{"networkPolicy.enabled=true", "networkPolicy.egress.apiServer.cidrs[0]=192.0.2.1/32"}, "needs networkPolicy.egress.nomad"},
		{[]string{"networkPolicy.egress.apiServer.cidrs[0]=192.0.2.1"}, "cidr"},
	} {
		t.Run(strings.Join(tc.set, ","), func(t *testing.T) {
			_, err := helmTemplate(t, nil, tc.set...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("want an error naming %q, got %v", tc.want, err)
			}
		})
	}
}
