package config

import "time"

// Reload configures how a running gateway follows its config file. Its
// values are read at start; a reload does not change them.
type Reload struct {
	// Watch polls the file (modification time and size) every Interval and
	// reloads when it changed and has stayed unchanged for one interval.
	Watch    bool          `yaml:"watch"`
	Interval time.Duration `yaml:"interval"`
}

func (d *decoder) checkReload(r Reload) {
	if r.Watch {
		d.positive("reload.interval", int64(r.Interval))
	}
}
