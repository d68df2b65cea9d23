"""The HTML pages: server-rendered, a client of the same API functions and permission check."""
