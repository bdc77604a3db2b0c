package gateway

// SpansEnabled reports whether g exports spans (tests).
func SpansEnabled(g *Gateway) bool { return g.spans != nil }
