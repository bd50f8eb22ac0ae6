"""Results: summaries, prediction and saving of fitted hierarchical models."""
