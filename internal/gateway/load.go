package gateway

import (
	"log/slog"
	"os"

	"github.com/sluice-gw/sluice/internal/config"
	"github.com/sluice-gw/sluice/internal/config/scg"
)

// load parses the contents data of the config at path: a native config or
// a Spring Cloud Gateway application.yml (as scg.Load does). The harmless
// parts of a Spring file that were not imported are logged as warnings.
func load(path string, data []byte, log *slog.Logger) (*config.Config, error) {
	if !scg.IsSpring(data) {
		return config.Parse(path, data)
	}
	cfg, errs, warnings := scg.Import(path, data, os.LookupEnv)
	for _, w := range warnings {
		log.Warn("spring property not imported", "problem", w.Error())
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return cfg, nil
}
