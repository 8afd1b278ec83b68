"""Images: the content-addressed store, pulling, building, pushing (and unpacking for the runtime)."""
