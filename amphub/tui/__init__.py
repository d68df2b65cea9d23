"""The admin console: a Textual app that is a client of the JSON API, nothing more."""
