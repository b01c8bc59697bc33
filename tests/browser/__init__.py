"""Real-browser tests (Chromium via Playwright); see conftest.py for the fixtures."""
