"""MarketDataService: quotes, daily history and news, cache-aside over upstream providers."""
