"""Model packages (format 2) and the registry of their versions and stages."""
