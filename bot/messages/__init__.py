"""Block Kit builders. Pure functions: plain data in, a dict out; no database, no network."""
