package config

import "time"

// CORSPolicy is Spring's CorsConfiguration for the requests whose path
// matches its pattern (the key in Config.CORS).
type CORSPolicy struct {
	AllowedOrigins        []string      `yaml:"allowed_origins"`
	AllowedOriginPatterns []string      `yaml:"allowed_origin_patterns"`
	AllowedMethods        []string      `yaml:"allowed_methods"` // unset: GET, HEAD
	AllowedHeaders        []string      `yaml:"allowed_headers"`
	ExposedHeaders        []string      `yaml:"exposed_headers"`
	AllowCredentials      bool          `yaml:"allow_credentials"`
	MaxAge                time.Duration `yaml:"max_age"` // 0: no Access-Control-Max-Age

	Pos  Pos    `yaml:"-"`
	Path string `yaml:"-"` // "cors./api/**"
}

func (p *CORSPolicy) setLoc(pos Pos, path string) { p.Pos, p.Path = pos, path }

// Compression configures gzip of responses (Spring Boot's server.compression).
type Compression struct {
	Enabled bool     `yaml:"enabled"`
	MinSize int64    `yaml:"min_size,size"` // default 2KiB
	Types   []string `yaml:"types"`         // default: Spring Boot's mime-types
}
