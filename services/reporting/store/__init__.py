"""All SQL of reporting: fact merges, the refresh of materialised figures, and reads."""
