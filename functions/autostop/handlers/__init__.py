"""Lambda entry points: thin wrappers that parse, load config, call control, shape the answer."""
