package gateway

// SpansEnabled reports whether g exports spans (tests).
func SpansEnabled(g *Gateway) bool { return g.spans != nil }

// RestartOnly and AppliedByReload classify every config field (tests).
var RestartOnly, AppliedByReload = restartOnly, appliedByReload
