"""`make experiment`: the paper's comparison end to end (recipes, steps, report)."""
