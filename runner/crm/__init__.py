"""CRM-specific parts of the project."""
