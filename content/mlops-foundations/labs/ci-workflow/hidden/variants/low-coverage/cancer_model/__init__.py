"""A small, tested training package for the breast-cancer data."""
