"""Events: one publish() for every channel and worker, a stored log for replay, fan-out on the channel layer."""
