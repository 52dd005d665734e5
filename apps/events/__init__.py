"""Events: one publish() for every channel and worker, a stored log for replay, fan-out over Redis pub/sub, access notices."""
