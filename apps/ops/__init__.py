"""Operations: health checks, worker liveness, and (later) metrics, cluster registry, backups."""
