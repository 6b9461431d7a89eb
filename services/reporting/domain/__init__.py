"""Pure rules of reporting: how each event projects onto facts, and how figures are assembled."""
