"""All SQL of the outreach service, one module per aggregate."""
