"""Git smart-HTTP over dulwich: routes, the streaming bridge, receive-pack rules, repos."""
