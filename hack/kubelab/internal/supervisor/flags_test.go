package supervisor

import (
	"errors"
	"flag"
	"io"
	"testing"
)

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    Config
		wantErr bool
	}{
		{name: "defaults", args: nil, want: Config{}},
		{name: "dir", args: []string{"--dir", "/tmp/x"}, want: Config{Dir: "/tmp/x"}},
		{name: "dir with equals", args: []string{"--dir=/tmp/x"}, want: Config{Dir: "/tmp/x"}},
		{name: "controller manager", args: []string{"--controller-manager"}, want: Config{ControllerManager: true}},
		{name: "both", args: []string{"--controller-manager", "--dir", "d"}, want: Config{Dir: "d", ControllerManager: true}},
		{name: "feature gates", args: []string{"--feature-gates=ShardedListAndWatch=true"}, want: Config{FeatureGates: "ShardedListAndWatch=true"}},
		{name: "several feature gates", args: []string{"--feature-gates", "ShardedListAndWatch=true,WatchList=false"}, want: Config{FeatureGates: "ShardedListAndWatch=true,WatchList=false"}},
		{name: "feature gate without a value", args: []string{"--feature-gates=ShardedListAndWatch"}, wantErr: true},
		{name: "feature gate with a bad value", args: []string{"--feature-gates=ShardedListAndWatch=yes"}, wantErr: true},
		{name: "feature gates with an empty pair", args: []string{"--feature-gates=A=true,"}, wantErr: true},
		{name: "unknown flag", args: []string{"--nope"}, wantErr: true},
		{name: "positional argument", args: []string{"apiserverr"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseFlags(tt.args, io.Discard)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseFlags(%q) error = %v, want error %t", tt.args, err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("ParseFlags(%q) = %+v, want %+v", tt.args, got, tt.want)
			}
		})
	}
}

func TestParseFlagsHelp(t *testing.T) {
	_, err := ParseFlags([]string{"-h"}, io.Discard)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("ParseFlags(-h) error = %v, want flag.ErrHelp", err)
	}
}
