"""Bundled scenarios: JSON files beside this module, validated against schema.json."""
