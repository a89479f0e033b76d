package testutil

import (
	"fmt"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestOriginsConfig(t *testing.T) {
	var cfg struct {
		Interval string
		Origins  []struct{ Name, URL, Mode string }
	}
	if err := yaml.Unmarshal([]byte(OriginsConfig(3, "250ms")), &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Interval != "250ms" || len(cfg.Origins) != 3 {
		t.Fatalf("interval %q and %d origins, want 250ms and 3", cfg.Interval, len(cfg.Origins))
	}
	for i, o := range cfg.Origins {
		if o.Name != fmt.Sprintf("o%d", i) || o.URL != fmt.Sprintf("http://127.0.0.1:9/%d", i) || o.Mode != "simple" {
			t.Errorf("origins[%d] = %+v, want o%d at http://127.0.0.1:9/%d, mode simple", i, o, i, i)
		}
	}
}
