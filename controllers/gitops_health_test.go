package controllers

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	lua "github.com/yuin/gopher-lua"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
)

// The two GitOps verdicts the operator's status must produce: kstatus (Flux) and the Argo CD health
// check of config/argocd/health.lua.

// argoFor is the Argo CD health status that matches a kstatus status.
var argoFor = map[status.Status]string{
	status.CurrentStatus:     "Healthy",
	status.InProgressStatus:  "Progressing",
	status.FailedStatus:      "Degraded",
	status.TerminatingStatus: "Progressing",
}

// asUnstructured turns a typed object into what GitOps tools see: JSON with apiVersion and kind.
func asUnstructured(obj client.Object) (*unstructured.Unstructured, error) {
	kind := map[string]string{
		"*v1alpha1.NomadToken":             "NomadToken",
		"*v1alpha1.NomadConnection":        "NomadConnection",
		"*v1alpha1.ClusterNomadConnection": "ClusterNomadConnection",
	}[fmt.Sprintf("%T", obj)]
	if kind == "" {
		return nil, fmt.Errorf("not a kind of this operator: %T", obj)
	}
	m, err := k8sruntime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{Object: m}
	u.SetAPIVersion(v1alpha1.GroupVersion.String())
	u.SetKind(kind)
	return u, nil
}

// kstatusOf is kstatus's verdict on obj, as Flux computes it.
func kstatusOf(obj client.Object) (*status.Result, error) {
	u, err := asUnstructured(obj)
	if err != nil {
		return nil, err
	}
	return status.Compute(u)
}

// healthLua is config/argocd/health.lua, the script docs/gitops.md installs.
func healthLua() (string, error) {
	_, here, _, _ := runtime.Caller(0)
	b, err := os.ReadFile(filepath.Join(filepath.Dir(here), "..", "config", "argocd", "health.lua"))
	return string(b), err
}

// argoHealthOf runs health.lua the way Argo CD runs a resource health script: the object as the
// global obj, a table with status and message returned, only the safe standard libraries open.
func argoHealthOf(obj client.Object) (healthStatus, message string, err error) {
	script, err := healthLua()
	if err != nil {
		return "", "", err
	}
	u, err := asUnstructured(obj)
	if err != nil {
		return "", "", err
	}
	L := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer L.Close()
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{{lua.LoadLibName, lua.OpenPackage}, {lua.BaseLibName, lua.OpenBase}, {lua.TabLibName, lua.OpenTable}, {lua.StringLibName, lua.OpenString}, {lua.MathLibName, lua.OpenMath}} {
		L.Push(L.NewFunction(lib.open))
		L.Push(lua.LString(lib.name))
		L.Call(1, 0)
	}
	L.SetGlobal("obj", toLua(L, u.Object))
	if err := L.DoString(script); err != nil {
		return "", "", err
	}
	ret, ok := L.Get(-1).(*lua.LTable)
	if !ok {
		return "", "", fmt.Errorf("health.lua returned %s, not a table", L.Get(-1).Type())
	}
	st, ok := ret.RawGetString("status").(lua.LString)
	if !ok {
		return "", "", fmt.Errorf("health.lua returned no status string")
	}
	switch st {
	case "Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown":
	default:
		return "", "", fmt.Errorf("health.lua returned status %q, which Argo CD does not know", st)
	}
	return string(st), ret.RawGetString("message").String(), nil
}

// toLua converts decoded JSON into Lua values, as Argo CD does: objects and arrays become tables
// (arrays 1-based), numbers become Lua numbers.
func toLua(L *lua.LState, v any) lua.LValue {
	switch v := v.(type) {
	case nil:
		return lua.LNil
	case bool:
		return lua.LBool(v)
	case string:
		return lua.LString(v)
	case int64:
		return lua.LNumber(v)
	case int32:
		return lua.LNumber(v)
	case int:
		return lua.LNumber(v)
	case float64:
		return lua.LNumber(v)
	case map[string]any:
		t := L.NewTable()
		for k, e := range v {
			t.RawSetString(k, toLua(L, e))
		}
		return t
	case []any:
		t := L.NewTable()
		for _, e := range v {
			t.Append(toLua(L, e))
		}
		return t
	default:
		panic(fmt.Sprintf("toLua: unexpected %T", v))
	}
}

// GitOpsVerdicts is, for the envtest suite (package controllers_test), kstatus's and Argo CD's
// verdicts on obj.
func GitOpsVerdicts(obj client.Object) (kstatus status.Status, argo string, err error) {
	res, err := kstatusOf(obj)
	if err != nil {
		return "", "", err
	}
	argo, _, err = argoHealthOf(obj)
	return res.Status, argo, err
}
