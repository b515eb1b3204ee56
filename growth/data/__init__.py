"""The dataset format every part of the platform reads: its schema, validation, IO and adapters."""
