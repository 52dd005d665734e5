"""Realtime: the WebSocket door (Channels consumers under daphne) onto the events bus."""
