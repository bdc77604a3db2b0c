package gateway

import (
	"log/slog"

	"github.com/sluice-gw/sluice/internal/config"
	"github.com/sluice-gw/sluice/internal/config/scg"
)

// load reads the config at path: a native config or a Spring Cloud Gateway
// application.yml (scg.Load). The harmless parts of a Spring file that were
// not imported are logged as warnings.
func load(path string, log *slog.Logger) (*config.Config, error) {
	cfg, warnings, err := scg.Load(path)
	for _, w := range warnings {
		log.Warn("spring property not imported", "problem", w.Error())
	}
	return cfg, err
}
