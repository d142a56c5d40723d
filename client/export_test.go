package client

// NoRefresh turns off refreshing the token before it expires, so that a
// test sees the hub refuse it (4001) and the client recover.
func NoRefresh(cfg *Config) { cfg.noRefresh = true }
