"""Upstream providers behind one small interface: synthetic, FMP, Alpha Vantage, NewsAPI."""
