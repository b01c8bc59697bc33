"""Course content as code: files in, frozen dataclasses out (no Flask, no DB)."""
