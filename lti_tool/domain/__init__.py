"""Pure rules and value objects: no I/O, no clock, no Flask, no SQLAlchemy."""
