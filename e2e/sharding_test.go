package e2e

import (
	"crypto/md5"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/oxcross/oxcross/internal/testutil"
)

// shardExample returns the worked example of docs/scaling.md, the
// Prometheus config of shard 0, decoded.
func shardExample(t *testing.T) map[string]any {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join("..", "docs", "scaling.md"))
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(string(doc), "```yaml\n# prometheus-shard-0.yml")
	if i < 0 {
		t.Fatal("docs/scaling.md has no ```yaml block starting with # prometheus-shard-0.yml")
	}
	block, _, ok := strings.Cut(string(doc[i+len("```yaml\n"):]), "```")
	if !ok {
		t.Fatal("docs/scaling.md has no ```yaml block starting with # prometheus-shard-0.yml")
	}
	var cfg map[string]any
	if err := yaml.Unmarshal([]byte(block), &cfg); err != nil {
		t.Fatalf("docs/scaling.md's prometheus-shard-0.yml: %v", err)
	}
	return cfg
}

// hashShard is the shard of a leaf id by Prometheus' hashmod: the MD5 sum's
// low 64 bits (big-endian) modulo the number of shards.
func hashShard(id string, shards uint64) int {
	sum := md5.Sum([]byte(id))
	return int(binary.BigEndian.Uint64(sum[8:]) % shards)
}

// TestShardedScraping runs the sharding example of docs/scaling.md: two of
// Debian's Prometheus servers with its config (TLS and basic auth left out,
// intervals shortened) ask one configserver's /sd/leaves for the same 16
// leaves, and each scrapes exactly the leaves whose id hashes to its shard.
func TestShardedScraping(t *testing.T) {
	const leaves = 16
	dir := t.TempDir()
	var conf strings.Builder
	conf.WriteString("origins:\n  - {name: o, url: 'http://127.0.0.1:9/'}\nleaves:\n")
	var ids []string
	for i := 1; i <= leaves; i++ {
		id := fmt.Sprintf("leaf-%02d", i)
		ids = append(ids, id)
		// Nothing listens there: the targets are down, which is enough
		// to see who scrapes them.
		fmt.Fprintf(&conf, "  - {id: %s, address: '127.0.0.1:9'}\n", id)
	}
	configPath := filepath.Join(dir, "config.yaml")
	testutil.WriteFile(t, configPath, conf.String())
	csAddr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	start(t, "oxcross-configserver", nil, "--web.listen-address="+csAddr, "--config.file="+configPath)
	waitHealthy(t, csAddr)

	promAddrs := make([]string, 2)
	for shard := range promAddrs {
		cfg := shardExample(t)
		global := cfg["global"].(map[string]any)
		global["scrape_interval"] = "1s"
		global["external_labels"].(map[string]any)["prometheus_shard"] = fmt.Sprint(shard)
		job := cfg["scrape_configs"].([]any)[0].(map[string]any)
		for _, k := range []string{"scheme", "tls_config", "basic_auth"} {
			delete(job, k)
		}
		sd := job["http_sd_configs"].([]any)[0].(map[string]any)
		sd["url"] = "http://" + csAddr + "/sd/leaves"
		sd["refresh_interval"] = "1s"
		delete(sd, "tls_config")
		delete(sd, "basic_auth")
		relabel := job["relabel_configs"].([]any)
		if len(relabel) != 2 || relabel[0].(map[string]any)["action"] != "hashmod" || relabel[0].(map[string]any)["modulus"] != 2 {
			t.Fatalf("docs/scaling.md's example: relabel_configs %v, want a hashmod of modulus 2 and a keep", relabel)
		}
		relabel[1].(map[string]any)["regex"] = fmt.Sprint(shard)
		out, err := yaml.Marshal(cfg)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, fmt.Sprintf("prometheus-shard-%d.yml", shard))
		testutil.WriteFile(t, path, string(out))
		promAddrs[shard] = fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
		startPrometheus(t, "--config.file="+path, "--storage.tsdb.path="+filepath.Join(dir, fmt.Sprintf("tsdb-%d", shard)),
			"--web.listen-address="+promAddrs[shard], "--log.level=warn")
	}

	// Until both have scraped their leaves once: every leaf id in one of
	// them.
	got := make([][]string, len(promAddrs))
	testutil.EventuallyReason(t, 60*time.Second, "every leaf scraped by a shard", func() string {
		n := 0
		for shard, addr := range promAddrs {
			metrics, _, err := promQuery(t, addr, `up{job="oxcross-leaf"}`)
			if err != nil {
				return err.Error()
			}
			got[shard] = nil
			for _, m := range metrics {
				got[shard] = append(got[shard], m["leaf_id"])
			}
			slices.Sort(got[shard])
			n += len(metrics)
		}
		if n < leaves {
			return fmt.Sprintf("%d of %d leaves scraped: %v", n, leaves, got)
		}
		return ""
	})
	want := make([][]string, len(promAddrs))
	for _, id := range ids {
		s := hashShard(id, uint64(len(promAddrs)))
		want[s] = append(want[s], id)
	}
	for shard := range promAddrs {
		if !slices.Equal(got[shard], want[shard]) {
			t.Errorf("shard %d scrapes %v, want %v (hashmod of the leaf id)", shard, got[shard], want[shard])
		}
		if len(got[shard]) == 0 {
			t.Errorf("shard %d scrapes no leaf", shard)
		}
	}
	t.Logf("shard 0 scrapes %d leaves, shard 1 %d, none twice", len(got[0]), len(got[1]))
}
