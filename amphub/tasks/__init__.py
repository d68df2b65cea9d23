"""Background work that survives restarts: the persistent queue, its workers and task kinds."""
