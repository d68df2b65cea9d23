"""Git LFS: the batch API, object transfer, locks and the content-addressed store."""
