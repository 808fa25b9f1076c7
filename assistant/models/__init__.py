"""Model artefacts dermassist builds itself: the tiny random-weight VLM (tests) and the packaged demo model."""
