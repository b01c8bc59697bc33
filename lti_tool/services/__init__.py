"""Use cases: a database session, the domain rules and the ports they need."""
