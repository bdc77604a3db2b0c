package gateway_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sluice-gw/sluice/internal/config/scg"
	"github.com/sluice-gw/sluice/internal/gateway"
)

// corpusLoads are the files of internal/config/scg/testdata/corpus (shaped
// like the application.yml, bootstrap.yml and .properties files of public
// Spring Cloud Gateway projects) that import and build without an error.
// The others need what the import does not do yet; each is listed with why.
var corpusLoads = []string{
	"application.properties", "bootstrap.properties", "consul-application.yml", "eureka-application.yml",
	"kubernetes-application.yml", "locator-application.yml", "locator-consul.properties", "locator-nacos-webflux-application.yml", "nacos-gateway-application.yml", "profiles-application.yml", "security-application.yml", "static-application.yml",
}

// TestSpringCorpus imports every corpus file unchanged, as `sluice validate`
// does, and checks which load: the ones in corpusLoads must, the others
// must report errors (so that a file starting to load is noticed and listed).
func TestSpringCorpus(t *testing.T) {
	files, _ := filepath.Glob("../config/scg/testdata/corpus/*")
	if len(files) == 0 {
		t.Fatal("no corpus")
	}
	loaded := 0
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			cfg, errs, _ := scg.Import(f, data, func(string) (string, bool) { return "", false })
			if len(errs) == 0 {
				if err := gateway.Validate(cfg); err != nil {
					errs = append(errs, nil)
					t.Logf("build: %v", err)
				}
			}
			want := slices.Contains(corpusLoads, name)
			if len(errs) == 0 {
				loaded++
			}
			switch {
			case want && len(errs) > 0:
				t.Errorf("does not load:\n%v", errs)
			case !want && len(errs) == 0:
				t.Errorf("loads now: add it to corpusLoads")
			case !want:
				t.Logf("does not load (expected):\n%s", strings.TrimSpace(errs.Error()))
			}
		})
	}
	t.Logf("%d of %d corpus files load unchanged", loaded, len(files))
}
