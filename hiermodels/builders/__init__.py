"""Model builders: each turns validated data and a spec into a NEW ``pm.Model``."""
