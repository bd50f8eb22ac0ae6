"""Pure numerics (numpy and scipy only): exact posterior, heterogeneity, effect sizes."""
