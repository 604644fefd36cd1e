// @testbed/replay: Record a TCP session through a proxy, replay the server side and fail on the first divergence
