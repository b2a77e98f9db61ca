"""One module per family of `/ft` verbs; each registers its handlers with @handles."""
