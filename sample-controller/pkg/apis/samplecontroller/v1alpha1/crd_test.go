package v1alpha1

import (
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/kubehandler/kubehandler/sample-controller/pkg/apis/samplecontroller"
)

// jsonSchema is the part of an OpenAPI v3 schema the test compares.
type jsonSchema struct {
	Type       string                `json:"type"`
	Required   []string              `json:"required"`
	Properties map[string]jsonSchema `json:"properties"`
	Items      *jsonSchema           `json:"items"`
}

type crdVersion struct {
	Name         string         `json:"name"`
	Subresources map[string]any `json:"subresources"`
	Schema       struct {
		OpenAPIV3Schema jsonSchema `json:"openAPIV3Schema"`
	} `json:"schema"`
}

type crd struct {
	Metadata struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec struct {
		Group string `json:"group"`
		Names struct {
			Kind, Plural string
		} `json:"names"`
		Versions []crdVersion `json:"versions"`
	} `json:"spec"`
}

// TestCRDMatchesTypes checks that artifacts/crd.yaml, written by hand,
// describes the Go types: the same group, version and kind, the status
// subresource, and for spec and status the same fields, with the same JSON
// types, and required exactly when the Go field has no omitempty.
func TestCRDMatchesTypes(t *testing.T) {
	data, err := os.ReadFile("../../../../artifacts/crd.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var c crd
	if err := yaml.Unmarshal(data, &c); err != nil {
		t.Fatal(err)
	}
	if c.Spec.Group != samplecontroller.GroupName || c.Metadata.Name != c.Spec.Names.Plural+"."+samplecontroller.GroupName || c.Spec.Names.Kind != "Foo" {
		t.Errorf("CRD %s: group %q, kind %q; want group %q, kind Foo", c.Metadata.Name, c.Spec.Group, c.Spec.Names.Kind, samplecontroller.GroupName)
	}
	i := slices.IndexFunc(c.Spec.Versions, func(v crdVersion) bool { return v.Name == SchemeGroupVersion.Version })
	if i < 0 {
		t.Fatalf("the CRD has no version %s", SchemeGroupVersion.Version)
	}
	v := c.Spec.Versions[i]
	if _, ok := v.Subresources["status"]; !ok {
		t.Errorf("version %s has no status subresource", v.Name)
	}
	root := v.Schema.OpenAPIV3Schema
	for field, typ := range map[string]reflect.Type{"spec": reflect.TypeFor[FooSpec](), "status": reflect.TypeFor[FooStatus]()} {
		t.Run(field, func(t *testing.T) {
			compare(t, field, typ, root.Properties[field])
		})
	}
}

// compare reports where s does not describe typ.
func compare(t *testing.T, path string, typ reflect.Type, s jsonSchema) {
	t.Helper()
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	if typ == reflect.TypeFor[metav1.Time]() {
		if s.Type != "string" {
			t.Errorf("%s: type %q, want string", path, s.Type)
		}
		return
	}
	want := map[reflect.Kind]string{
		reflect.String: "string", reflect.Int32: "integer", reflect.Int64: "integer",
		reflect.Bool: "boolean", reflect.Struct: "object", reflect.Slice: "array",
	}[typ.Kind()]
	if s.Type != want {
		t.Errorf("%s: type %q, want %q (Go %s)", path, s.Type, want, typ)
		return
	}
	switch typ.Kind() {
	case reflect.Slice:
		if s.Items == nil {
			t.Errorf("%s: an array without items", path)
			return
		}
		compare(t, path+"[]", typ.Elem(), *s.Items)
	case reflect.Struct:
		var fields, required []string
		for f := range typ.Fields() {
			name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "" || name == "-" {
				continue
			}
			fields = append(fields, name)
			if !strings.Contains(opts, "omitempty") {
				required = append(required, name)
			}
			if sub, ok := s.Properties[name]; ok {
				compare(t, path+"."+name, f.Type, sub)
			}
		}
		var props []string
		for name := range s.Properties {
			props = append(props, name)
		}
		slices.Sort(fields)
		slices.Sort(props)
		if diff := cmp.Diff(fields, props); diff != "" {
			t.Errorf("%s: fields (-Go +CRD):\n%s", path, diff)
		}
		// A field the Go type always writes must be required, except in
		// status, which the controller fills in after the Foo is created.
		// metav1.Condition's required fields are the API's convention.
		if path == "status" || strings.Contains(path, "[]") {
			return
		}
		got := slices.Clone(s.Required)
		slices.Sort(got)
		slices.Sort(required)
		if diff := cmp.Diff(required, got); diff != "" {
			t.Errorf("%s: required (-Go +CRD):\n%s", path, diff)
		}
	}
}
