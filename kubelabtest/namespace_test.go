package kubelabtest

import "testing"

func TestNamespacePrefix(t *testing.T) {
	tests := []struct {
		name, testName, want string
	}{
		{name: "plain", testName: "TestFoo", want: "testfoo-"},
		{name: "subtest", testName: "TestFoo/bar_baz", want: "testfoo-bar-baz-"},
		{name: "runs of symbols", testName: "TestFoo/#01:::x", want: "testfoo-01-x-"},
		{name: "leading symbols", testName: "__x", want: "x-"},
		{name: "nothing usable", testName: "///", want: "test-"},
		{name: "long", testName: "TestAVeryLongNameThatGoesOnAndOnAndOnBeyondForty", want: "testaverylongnamethatgoesonandonandonbey-"},
		{name: "cut at a dash", testName: "TestAVeryLongNameThatGoesOnAndOnAndOnBe/yond", want: "testaverylongnamethatgoesonandonandonbe-"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := namespacePrefix(tt.testName); got != tt.want {
				t.Errorf("namespacePrefix(%q) = %q, want %q", tt.testName, got, tt.want)
			}
		})
	}
}

func TestDecodeManifest(t *testing.T) {
	objs, err := decodeManifest([]byte("---\n" + widgetCRD + "\n---\n# nothing\n---\n" + widgetCRD))
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 2 {
		t.Fatalf("decoded %d objects, want 2", len(objs))
	}
	gvrs := servedResources(objs[0])
	if len(gvrs) != 1 || gvrs[0].String() != "kubelab.example.com/v1, Resource=widgets" {
		t.Errorf("served resources: %v", gvrs)
	}

	objs, err = decodeManifest([]byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"}}`))
	if err != nil || len(objs) != 1 || objs[0].GetName() != "x" {
		t.Errorf("JSON: %v, %v", objs, err)
	}
}
