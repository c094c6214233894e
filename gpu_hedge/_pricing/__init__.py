"""Pricing layer: closed forms, autodiff Greeks (implied volatility comes next)."""
